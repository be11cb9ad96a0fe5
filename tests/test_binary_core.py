"""W(1+1)A(1x4): packing, EM, weight quantizer, activation planes, exact binary GEMM."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from quant.binary import (
    ActivationConfig,
    BinaryWeight,
    BinaryWeightConfig,
    SmoothConfig,
    binary_matmul,
    binary_matmul_partials,
    binary_quantize,
    fake_quantize_activations,
    pack_bits,
    quantize_activations,
    search_smoothing,
    two_scale_em,
    unpack_bits,
)


def _reference_partials(packed: BinaryWeight, act):
    """Integer partial products by plain int64 matmuls (no bit tricks)."""
    q = act.signed_codes().numpy().astype(np.int64)
    signs = packed.signs().astype(np.int64)
    upper = packed.group_bits()
    rows, cols = packed.shape
    gs = packed.group_size
    groups = -(-cols // gs)
    out = np.zeros((q.shape[0], rows, groups, 2), dtype=np.int64)
    for g in range(groups):
        sl = slice(g * gs, min((g + 1) * gs, cols))
        for c in (0, 1):
            mask = upper[:, sl] if c else ~upper[:, sl]
            out[:, :, g, c] = q[:, sl] @ (signs[:, sl] * mask).T
    return out


@given(st.integers(1, 3), st.integers(1, 200), st.integers(0, 2**31 - 1))
@settings(max_examples=30, deadline=None)
def test_pack_roundtrip(rows, n, seed):
    bits = np.random.default_rng(seed).random((rows, n)) < 0.5
    words = pack_bits(bits)
    assert words.shape == (rows, -(-n // 64)) and words.dtype == np.uint64
    assert np.array_equal(unpack_bits(words, n), bits)


def test_pack_bit_order():
    bits = np.zeros((1, 130), bool)
    bits[0, [0, 63, 64, 129]] = True
    words = pack_bits(bits)
    assert words[0, 0] == np.uint64(1 | (1 << 63)) and words[0, 1] == 1 and words[0, 2] == 2


def test_em_is_a_fixed_point_and_beats_one_scale():
    torch.manual_seed(0)
    mag = torch.randn(16, 128).abs()
    weight = torch.rand(128) + 0.1
    scales, choice = two_scale_em(mag, weight, 50)
    assert torch.all(scales[:, 0] <= scales[:, 1])
    # E-step: every entry is at its nearer scale
    nearer = mag > scales.mean(dim=1, keepdim=True)
    assert torch.equal(nearer, choice)
    # M-step: each scale is the weighted mean of its members
    for r in range(16):
        for c in (0, 1):
            m = choice[r] == bool(c)
            expect = (weight[m] * mag[r, m]).sum() / weight[m].sum()
            assert torch.allclose(scales[r, c], expect, rtol=1e-5)
    two = torch.where(choice, scales[:, 1:], scales[:, :1])
    one = (weight * mag).sum(1, keepdim=True) / weight.sum()
    assert ((weight * (mag - two) ** 2).sum() < 0.5 * (weight * (mag - one) ** 2).sum())


def test_em_constant_and_zero_rows():
    mag = torch.tensor([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    scales, choice = two_scale_em(mag, torch.ones(3), 10)
    assert torch.isfinite(scales).all()
    assert torch.equal(scales[1], torch.tensor([2.0, 2.0]))
    assert torch.equal(scales[0], torch.tensor([0.0, 0.0]))


def _calibration(cols, n=2048, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, cols, generator=g) * torch.linspace(0.3, 2.0, cols)
    x[:, :3] *= 8.0  # outlier channels, as in LLM activations
    return x, 2.0 * x.T @ x / n


@pytest.mark.parametrize("cfg", [
    BinaryWeightConfig(group_size=64),
    BinaryWeightConfig(group_size=64, reassign=False),
    BinaryWeightConfig(group_size=96, error_compensation=False),
    BinaryWeightConfig(group_size=64, em_weighting="uniform", block_size=32),
])
def test_binary_quantize_codes_and_storage(cfg):
    torch.manual_seed(1)
    w = torch.randn(48, 192) * 0.05
    _, h = _calibration(192)
    r = binary_quantize(w, h, cfg)
    assert r.weight.shape == w.shape and r.weight.dtype == w.dtype
    assert torch.equal(r.weight, r.packed.dequantize())
    # every weight is +-one of the two float16 scales of its group
    scales = torch.from_numpy(r.packed.scales.astype(np.float32))
    group = torch.arange(192) // cfg.group_size
    mag = r.weight.abs()
    lo, hi = scales[:, group, 0], scales[:, group, 1]
    assert torch.all((mag == lo) | (mag == hi))
    groups = -(-192 // cfg.group_size)
    expect_bits = 2 + groups * 32 / 192  # 192 columns fill three 64-bit words
    assert r.packed.bits_per_weight() == pytest.approx(expect_bits)
    assert 0 < r.proxy_error < 1


def test_compensation_lowers_output_error():
    torch.manual_seed(2)
    w = torch.randn(64, 256) * 0.05
    # correlated inputs (low-rank plus noise), as LLM activations are
    x = torch.randn(2048, 24) @ torch.randn(24, 256) + 0.1 * torch.randn(2048, 256)
    h = 2.0 * x.T @ x / 2048
    plain = binary_quantize(w, h, BinaryWeightConfig(error_compensation=False))
    comp = binary_quantize(w, h, BinaryWeightConfig())
    err = lambda q: float(((x @ (w - q).T) ** 2).mean())
    assert err(comp.weight) < 0.9 * err(plain.weight)
    assert comp.proxy_error < plain.proxy_error


def test_binary_quantize_bits_per_weight_aligned():
    r = binary_quantize(torch.randn(8, 1536), cfg=BinaryWeightConfig())
    assert r.packed.bits_per_weight() == 2.25


@pytest.mark.parametrize("bad, exc", [
    (torch.ones(3, 4, dtype=torch.int32), TypeError),
    (torch.ones(4), ValueError),
    (torch.tensor([[1.0, float("nan")]]), ValueError),
    ("w", TypeError),
])
def test_binary_quantize_rejects_bad_weight(bad, exc):
    with pytest.raises(exc):
        binary_quantize(bad)


def test_binary_quantize_rejects_bad_hessian():
    with pytest.raises(ValueError, match="shape"):
        binary_quantize(torch.randn(4, 8), torch.eye(7))
    with pytest.raises(ValueError, match="NaN"):
        binary_quantize(torch.randn(4, 8), torch.full((8, 8), float("inf")))
    with pytest.raises(TypeError):
        binary_quantize(torch.randn(4, 8), cfg={"group_size": 4})


def test_configs_validate():
    with pytest.raises(ValueError):
        BinaryWeightConfig(group_size=1)
    with pytest.raises(TypeError):
        BinaryWeightConfig(group_size=64.0)
    with pytest.raises(ValueError):
        BinaryWeightConfig(damp=0.0)
    with pytest.raises(ValueError):
        ActivationConfig(bits=9)
    with pytest.raises(ValueError):
        ActivationConfig(clip_ratio=1.5)
    with pytest.raises(ValueError):
        SmoothConfig(alphas=(0.5, 1.5))


@pytest.mark.parametrize("symmetric", [True, False])
def test_activation_planes_decompose_exactly(symmetric):
    torch.manual_seed(3)
    x = torch.randn(37, 200) * 3
    qa = quantize_activations(x, ActivationConfig(symmetric=symmetric))
    assert qa.codes.dtype == torch.uint8 and int(qa.codes.max()) <= 15
    planes = qa.bit_planes().to(torch.int64)
    assert set(planes.unique().tolist()) <= {0, 1}
    rebuilt = sum((2**k) * planes[k] for k in range(4)) - qa.offset
    assert torch.equal(rebuilt.to(torch.int32), qa.signed_codes())
    if symmetric:
        assert torch.all(qa.offset == 8) and int(qa.codes.min()) >= 1
    # the fake quantizer is the same grid
    assert torch.allclose(fake_quantize_activations(x, ActivationConfig(symmetric=symmetric)),
                          qa.dequantize(), atol=1e-6)
    err = (qa.dequantize() - x).abs().max(dim=1).values
    assert torch.all(err <= qa.scale.squeeze(1) * 0.5 + 1e-5)


def test_activation_smoothing_and_errors():
    x = torch.randn(4, 8)
    s = torch.rand(8) + 0.5
    assert torch.allclose(fake_quantize_activations(x, smooth=s),
                          fake_quantize_activations(x / s), atol=1e-6)
    with pytest.raises(ValueError, match="smooth"):
        quantize_activations(x, smooth=-s)
    with pytest.raises(ValueError, match="NaN"):
        quantize_activations(torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError):
        quantize_activations(torch.randn(2, 3, 4))
    with pytest.raises(TypeError):
        quantize_activations(torch.ones(2, 3, dtype=torch.int64))
    zero = quantize_activations(torch.zeros(2, 3))
    assert torch.equal(zero.dequantize(), torch.zeros(2, 3))


@pytest.mark.parametrize("rows, cols, tokens, gs, symmetric", [
    (576, 576, 16, 128, True),     # SmolLM2 q/o_proj (last group of 64)
    (1536, 576, 8, 128, False),    # SmolLM2 gate/up_proj
    (576, 1536, 8, 128, True),     # SmolLM2 down_proj
    (7, 192, 5, 64, True),
    (3, 64, 1, 64, False),
])
def test_binary_gemm_is_exact(rows, cols, tokens, gs, symmetric):
    g = torch.Generator().manual_seed(rows + cols)
    w = torch.randn(rows, cols, generator=g) * 0.05
    packed = binary_quantize(w, cfg=BinaryWeightConfig(group_size=gs)).packed
    act = quantize_activations(torch.randn(tokens, cols, generator=g) * 2,
                               ActivationConfig(symmetric=symmetric))
    partials = binary_matmul_partials(packed, act)
    assert partials.dtype == np.int64
    assert np.array_equal(partials, _reference_partials(packed, act))
    # the scaled result equals the INT4 x W(1+1) product (float64 combination)
    expect = np.einsum("tigc,igc->ti", partials.astype(np.float64),
                       packed.scales.astype(np.float64))
    expect *= act.scale.numpy().astype(np.float64)
    y = binary_matmul(packed, act)
    assert np.allclose(y.numpy(), expect, rtol=1e-6, atol=1e-6)
    fake = act.dequantize().double() @ packed.dequantize().double().T
    assert torch.allclose(y.double(), fake, rtol=1e-5, atol=1e-5)


@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.booleans(),
       st.integers(0, 2**31 - 1))
@settings(max_examples=25, deadline=None)
def test_binary_gemm_exact_random(rows, words, tokens, symmetric, seed):
    rng = np.random.default_rng(seed)
    cols = 64 * words
    positive = rng.random((rows, cols)) < 0.5
    upper = rng.random((rows, cols)) < 0.3
    scales = np.sort(rng.random((rows, -(-cols // 64), 2)), axis=-1)
    packed = BinaryWeight.from_codes(positive, upper, scales, group_size=64)
    x = torch.from_numpy(rng.standard_normal((tokens, cols)).astype(np.float32))
    act = quantize_activations(x, ActivationConfig(symmetric=symmetric))
    assert np.array_equal(binary_matmul_partials(packed, act), _reference_partials(packed, act))


def test_binary_gemm_rejects_mismatch():
    packed = binary_quantize(torch.randn(4, 128), cfg=BinaryWeightConfig(group_size=64)).packed
    with pytest.raises(ValueError, match="features"):
        binary_matmul(packed, quantize_activations(torch.randn(2, 64)))
    odd = binary_quantize(torch.randn(4, 96), cfg=BinaryWeightConfig(group_size=48)).packed
    with pytest.raises(ValueError, match="multiple of 64"):
        binary_matmul(odd, quantize_activations(torch.randn(2, 96)))
    with pytest.raises(TypeError):
        binary_matmul(torch.randn(4, 128), quantize_activations(torch.randn(2, 128)))


@pytest.mark.parametrize("magnitude", [1e5, 1e-8])
def test_binary_quantize_refuses_scales_float16_cannot_hold(magnitude):
    w = torch.randn(4, 128, generator=torch.Generator().manual_seed(0)) * magnitude
    with pytest.raises(ValueError, match="float16"):
        binary_quantize(w)


def test_search_smoothing_checks_the_type_of_each_config():
    x, w = torch.randn(16, 64), torch.randn(8, 64)
    with pytest.raises(TypeError, match="weight_cfg must be a BinaryWeightConfig"):
        search_smoothing(x, w, weight_cfg=ActivationConfig())
    with pytest.raises(TypeError, match="act_cfg must be an? ActivationConfig"):
        search_smoothing(x, w, act_cfg=BinaryWeightConfig())
