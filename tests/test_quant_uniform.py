"""Round-to-nearest quantizer: level convention, bounds, idempotence, bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import quant

FINITE = st.floats(-1e3, 1e3, width=32, allow_nan=False, allow_subnormal=False)


@st.composite
def tensor_and_config(draw, symmetric=None, bits=None, clip_ratio=1.0):
    rows = draw(st.integers(1, 4))
    cols = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16]))
    x = draw(hnp.arrays(np.float32, (rows, cols), elements=FINITE))
    granularity = draw(st.sampled_from(quant.GRANULARITIES))
    group_size = None
    if granularity == "group":
        group_size = draw(st.sampled_from([g for g in (1, 2, 3, 4, 8) if cols % g == 0]))
    cfg = quant.QuantConfig(
        bits=draw(st.integers(1, 8)) if bits is None else bits,
        symmetric=draw(st.booleans()) if symmetric is None else symmetric,
        granularity=granularity,
        group_size=group_size,
        clip_ratio=clip_ratio,
    )
    return torch.from_numpy(x), cfg


def _scales_per_element(qt: quant.QuantizedTensor) -> torch.Tensor:
    n = qt.codes.numel() // qt.scale.numel()
    return qt.scale.reshape(-1, 1).expand(-1, n).reshape(qt.codes.shape)


@settings(max_examples=100, deadline=None)
@given(tensor_and_config(clip_ratio=1.0))
def test_codes_in_documented_range(xc):
    x, cfg = xc
    qt = quant.quantize(x, cfg)
    qmin, qmax = quant.code_range(cfg.bits, cfg.symmetric)
    assert int(qt.codes.min()) >= qmin and int(qt.codes.max()) <= qmax
    if cfg.symmetric and cfg.bits == 1:
        assert set(qt.codes.unique().tolist()) <= {-1, 1}


@settings(max_examples=100, deadline=None)
@given(tensor_and_config(clip_ratio=1.0), st.floats(0.05, 1.0))
def test_quantize_dequantize_equals_fake_quantize(xc, clip):
    x, cfg = xc
    cfg = cfg.replace(clip_ratio=clip)
    assert torch.equal(quant.quantize(x, cfg).dequantize(), quant.fake_quantize(x, cfg))


@settings(max_examples=150, deadline=None)
@given(tensor_and_config(clip_ratio=1.0))
def test_error_at_most_half_a_step(xc):
    x, cfg = xc
    assume(not (cfg.symmetric and cfg.bits == 1))  # sign codes: no step bound (documented)
    qt = quant.quantize(x, cfg)
    err = (qt.dequantize() - x).abs()
    bound = _scales_per_element(qt) / 2
    tol = 1e-6 * x.abs().max() + 1e-30
    assert bool((err <= bound + tol).all()), float((err - bound).max())


@settings(max_examples=150, deadline=None)
@given(tensor_and_config(clip_ratio=1.0))
def test_fake_quantize_is_idempotent(xc):
    x, cfg = xc
    qt = quant.quantize(x, cfg)
    if not cfg.symmetric:
        # A zero point -min/scale exactly half-way between integers is a rounding
        # tie that can leave the top code unused, shrinking the grid on a second pass.
        params = quant.compute_qparams(x, cfg)
        xg = x.reshape(params.scale.numel(), -1)
        zf = (-xg.amin(1).clamp_max(0) / params.scale.reshape(-1)).double()
        assume(bool(((zf - zf.floor() - 0.5).abs() > 1e-3).all()))
    y = quant.fake_quantize(x, cfg)
    assert torch.equal(quant.quantize(y, cfg).codes, qt.codes)
    yy = quant.fake_quantize(y, cfg)
    tol = 1e-5 * float(x.abs().max()) + 1e-30
    assert float((yy - y).abs().max()) <= tol


def test_symmetric_3bit_has_seven_levels_and_asymmetric_eight():
    x = torch.linspace(-1, 1, 1001).reshape(1, -1)
    sym = quant.fake_quantize(x, quant.QuantConfig(bits=3, symmetric=True))
    asym = quant.fake_quantize(0.65 * x + 0.35, quant.QuantConfig(bits=3, symmetric=False))
    assert sym.unique().numel() == 7 == quant.num_levels(3, True)
    assert asym.unique().numel() == 8 == quant.num_levels(3, False)
    assert quant.quantize(x, quant.QuantConfig(bits=3)).codes.unique().tolist() == list(
        range(-3, 4)
    )
    # zero is a level of the symmetric grid, the step is max|x| / 3
    assert torch.allclose(sym.unique(), torch.tensor([-3, -2, -1, 0, 1, 2, 3]) / 3)


@settings(max_examples=100, deadline=None)
@given(tensor_and_config(symmetric=True, bits=3, clip_ratio=1.0))
def test_symmetric_3bit_at_most_seven_values_per_group(xc):
    x, cfg = xc
    y = quant.fake_quantize(x, cfg)
    if cfg.granularity == "tensor":
        groups = y.reshape(1, -1)
    else:
        groups = y.reshape(-1, cfg.group_size or x.shape[-1])
    for g in groups:
        assert g.unique().numel() <= 7


def test_one_bit_symmetric_is_sign_times_mean_abs():
    x = torch.tensor([[0.5, -1.5, 0.0, 2.0]])
    y = quant.fake_quantize(x, quant.QuantConfig(bits=1))
    assert torch.allclose(y, torch.tensor([[1.0, -1.0, 1.0, 1.0]]))


def test_clip_ratio_saturates_the_extremes():
    x = torch.tensor([[4.0, 1.0, -0.5, -4.0]])
    y = quant.fake_quantize(x, quant.QuantConfig(bits=3, clip_ratio=0.75))
    assert torch.allclose(y, torch.tensor([[3.0, 1.0, -0.0, -3.0]]))


def test_granularities_give_documented_scale_shapes():
    x = torch.randn(2, 3, 8)
    shapes = {
        "tensor": (1,),
        "channel": (2, 3, 1),
        "token": (2, 3, 1),
    }
    for gran, shape in shapes.items():
        assert quant.quantize(x, quant.QuantConfig(granularity=gran)).scale.shape == shape
    cfg = quant.QuantConfig(granularity="group", group_size=4)
    assert quant.quantize(x, cfg).scale.shape == (2, 3, 2)


def test_all_zero_group_dequantizes_to_zero():
    x = torch.zeros(2, 4)
    for sym in (True, False):
        for bits in (1, 3, 8):
            y = quant.fake_quantize(x, quant.QuantConfig(bits=bits, symmetric=sym))
            if not (sym and bits == 1):
                assert torch.equal(y, x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtype_is_kept(dtype):
    x = torch.randn(4, 16).to(dtype)
    assert quant.fake_quantize(x, quant.QuantConfig()).dtype == dtype


def test_params_from_search_are_used():
    x = torch.randn(8, 64)
    cfg = quant.QuantConfig(bits=3)
    params = quant.mse_clip_search(x, cfg)
    y = quant.fake_quantize(x, cfg, params=params)
    assert not torch.equal(y, quant.fake_quantize(x, cfg))
    with pytest.raises(ValueError, match="shape"):
        quant.fake_quantize(x[:4], cfg, params=params)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(bits=0), ValueError, "bits"),
        (dict(bits=9), ValueError, "bits"),
        (dict(bits=True), TypeError, "bits"),
        (dict(bits=3.0), TypeError, "bits"),
        (dict(granularity="row"), ValueError, "granularity"),
        (dict(granularity="group"), ValueError, "group_size"),
        (dict(granularity="group", group_size=0), ValueError, "group_size"),
        (dict(group_size=64), ValueError, "group_size"),
        (dict(clip_ratio=0.0), ValueError, "clip_ratio"),
        (dict(clip_ratio=1.5), ValueError, "clip_ratio"),
        (dict(clip_ratio=math.nan), ValueError, "clip_ratio"),
        (dict(clip_ratio="1"), TypeError, "clip_ratio"),
        (dict(symmetric=1), TypeError, "symmetric"),
    ],
)
def test_bad_config_is_rejected(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        quant.QuantConfig(**kwargs)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits", [1, 3])
def test_non_finite_input_raises(bad, symmetric, bits):
    x = torch.randn(3, 8)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        quant.fake_quantize(x, quant.QuantConfig(bits=bits, symmetric=symmetric))


def test_bad_tensors_are_rejected():
    cfg = quant.QuantConfig(granularity="group", group_size=5)
    with pytest.raises(ValueError, match="does not divide"):
        quant.fake_quantize(torch.randn(2, 8), cfg)
    with pytest.raises(TypeError, match="floating"):
        quant.fake_quantize(torch.ones(2, 8, dtype=torch.int32), quant.QuantConfig())
    with pytest.raises(TypeError, match="torch.Tensor"):
        quant.fake_quantize(np.ones((2, 8)), quant.QuantConfig())
    with pytest.raises(ValueError, match="empty"):
        quant.fake_quantize(torch.empty(0, 8), quant.QuantConfig())
    with pytest.raises(TypeError, match="QuantConfig"):
        quant.fake_quantize(torch.randn(2, 8), {"bits": 3})
    with pytest.raises(ValueError, match="0-d"):
        quant.fake_quantize(torch.tensor(1.0), quant.QuantConfig())


def test_explicit_params_do_not_skip_the_input_checks():
    cfg = quant.QuantConfig(bits=3)
    params = quant.compute_qparams(torch.randn(4, 8), cfg)
    with pytest.raises(ValueError, match="NaN or inf"):
        quant.fake_quantize(torch.full((4, 8), float("nan")), cfg, params=params)
    with pytest.raises(ValueError, match="NaN or inf"):
        quant.quantize(torch.full((4, 8), float("inf")), cfg, params=params)
    with pytest.raises(TypeError, match="QuantParams"):
        quant.fake_quantize(torch.randn(4, 8), cfg, params=params.scale)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_explicit_params_with_a_bad_scale_are_rejected(scale):
    cfg = quant.QuantConfig(bits=3)
    with pytest.raises(ValueError, match="positive and finite"):
        quant.fake_quantize(torch.randn(4, 8), cfg, params=quant.QuantParams(torch.full((4, 1), scale)))


@pytest.mark.parametrize("zero", [3.5, -1.0, 8.0, 300.0])
def test_explicit_zero_points_must_be_codes(zero):
    cfg = quant.QuantConfig(bits=3, symmetric=False)
    params = quant.QuantParams(torch.ones(4, 1), torch.full((4, 1), zero))
    with pytest.raises(ValueError, match=r"integers in \[0, 7\]"):
        quant.fake_quantize(torch.randn(4, 8), cfg, params=params)


def test_low_precision_results_saturate_instead_of_overflowing():
    # the rounded zero point puts the lowest level half a step below -65504
    x = torch.tensor([[65504.0, -65504.0]], dtype=torch.float16)
    cfg = quant.QuantConfig(symmetric=False)
    y = quant.fake_quantize(x, cfg)
    assert bool(torch.isfinite(y).all())
    assert torch.equal(quant.quantize(x, cfg).dequantize(torch.float16), y)


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    cfg = quant.QuantConfig(bits=np.int64(4), clip_ratio=np.float32(0.5))
    assert type(cfg.bits) is int and type(cfg.clip_ratio) is float
    assert cfg == quant.QuantConfig(bits=4, clip_ratio=0.5)
