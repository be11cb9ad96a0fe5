"""MSE clip search: it finds the grid minimum of the Lp error, per group."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import quant


def _lp_error(x, cfg, ratio, norm):
    y = quant.fake_quantize(x[None].double(), cfg.replace(clip_ratio=ratio))[0]
    return float(((y - x.double()).abs() ** norm).sum())


@settings(max_examples=40, deadline=None)
@given(
    bits=st.integers(1, 8),
    symmetric=st.booleans(),
    norm=st.sampled_from([1.0, 2.0, 2.4]),
    seed=st.integers(0, 2**31 - 1),
)
def test_search_returns_the_grid_minimum(bits, symmetric, norm, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 48, generator=g) * torch.exp(torch.randn(4, 1, generator=g))
    w[:, 0] *= 4  # an outlier per row makes clipping worthwhile
    cfg = quant.QuantConfig(bits=bits, symmetric=symmetric)
    grid, max_shrink = 40, 0.75
    params = quant.mse_clip_search(w, cfg, grid=grid, max_shrink=max_shrink, norm=norm)
    ratios = [1 - i / grid for i in range(int(max_shrink * grid))]
    for row, chosen in zip(w, params.clip_ratio.reshape(-1).tolist()):
        assert min(abs(chosen - r) for r in ratios) < 1e-6
        errors = [_lp_error(row, cfg, r, norm) for r in ratios]
        assert _lp_error(row, cfg, chosen, norm) <= min(errors) * (1 + 1e-4) + 1e-12
    # the returned scales are those of the chosen ratios
    y = quant.fake_quantize(w, cfg, params=params)
    for row, out, chosen in zip(w, y, params.clip_ratio.reshape(-1).tolist()):
        ref = quant.fake_quantize(row[None], cfg.replace(clip_ratio=chosen))[0]
        assert torch.allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_search_per_group_and_per_tensor_shapes():
    w = torch.randn(6, 64)
    grouped = quant.mse_clip_search(w, quant.QuantConfig(granularity="group", group_size=16))
    assert grouped.scale.shape == grouped.clip_ratio.shape == (6, 4)
    tensor = quant.mse_clip_search(w, quant.QuantConfig(granularity="tensor"))
    assert tensor.scale.shape == (1,)


def test_search_never_worse_than_no_clipping():
    w = torch.randn(32, 256)
    cfg = quant.QuantConfig(bits=3)
    clipped = quant.rtn_quantize(w, cfg, mse_clip=True).dequantize()
    plain = quant.rtn_quantize(w, cfg).dequantize()
    err = lambda y: ((y - w).abs() ** 2.4).sum(dim=1)  # noqa: E731
    assert bool((err(clipped) <= err(plain) * (1 + 1e-5)).all())
    assert float(err(clipped).sum()) < 0.9 * float(err(plain).sum())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(grid=0), "grid"),
        (dict(max_shrink=0.0), "max_shrink"),
        (dict(max_shrink=1.5), "max_shrink"),
        (dict(norm=0), "norm"),
        (dict(norm=math.inf), "norm"),
    ],
)
def test_search_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        quant.mse_clip_search(torch.randn(2, 8), quant.QuantConfig(), **kwargs)


def test_search_rejects_non_finite():
    w = torch.randn(2, 8)
    w[1, 1] = math.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        quant.mse_clip_search(w, quant.QuantConfig())


@pytest.mark.parametrize("magnitude", [1e-16, 1e-6, 1e16, 1e18])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_chosen_ratio_does_not_depend_on_the_weight_scale(magnitude, dtype):
    # powers of ten are not exact scalings, so allow a rare one-step tie flip
    w = torch.randn(32, 256, generator=torch.Generator().manual_seed(0))
    for cfg in (quant.QuantConfig(bits=3), quant.QuantConfig(bits=3, symmetric=False)):
        base = quant.mse_clip_search(w.to(dtype), cfg).clip_ratio
        scaled = quant.mse_clip_search((w * magnitude).to(dtype), cfg).clip_ratio
        assert float((scaled != base).float().mean()) <= 2 / 32
        assert float((scaled - base).abs().max()) <= 0.011


def test_a_weight_that_requires_grad_is_searched():
    w = torch.nn.Linear(16, 8).weight
    assert w.requires_grad
    got = quant.mse_clip_search(w, quant.QuantConfig()).clip_ratio
    assert torch.equal(got, quant.mse_clip_search(w.detach(), quant.QuantConfig()).clip_ratio)
    assert quant.rtn_quantize(w, quant.QuantConfig(), mse_clip=True).codes.shape == (8, 16)
