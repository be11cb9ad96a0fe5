"""Tests of the torch Hadamard transform: numba CPU path, torch-ops path, autograd, module, compile."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import hadamard  # noqa: E402
from hadamard._torch import HadamardTransform, _Plan, hadamard_transform  # noqa: E402

ORDERS = [1, 2, 16, 12, 24, 40, 72, 256, 12 * 32, 2048, 28 * 64]


def dense(x: torch.Tensor, n: int, *, normalized=True, signs=None, inverse=False) -> torch.Tensor:
    H = torch.from_numpy(hadamard.get(n).astype(np.float64))
    x = x.detach().double().cpu()
    s = torch.ones(n, dtype=torch.float64) if signs is None else torch.as_tensor(np.asarray(signs), dtype=torch.float64)
    if inverse:
        return s * (x @ H) * (1 / n**0.5 if normalized else 1 / n)
    return (s * x) @ H.T * (1 / n**0.5 if normalized else 1.0)


def rel_err(y, ref) -> float:
    return float((y.detach().double().cpu() - ref).abs().max() / ref.abs().max().clamp_min(1e-300))


TOL = {torch.float32: 1e-5, torch.float64: 1e-12, torch.bfloat16: 1e-2, torch.float16: 2e-3}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n", ORDERS)
def test_both_paths_match_dense(n, dtype):
    x = torch.randn(3, n, generator=torch.Generator().manual_seed(n)).to(dtype)
    s = hadamard.random_signs(n, seed=1)
    for inverse in (False, True):
        ref = dense(x, n, signs=s, inverse=inverse)
        y = hadamard.fwht(x, signs=s, inverse=inverse)  # CPU eager: numba kernels
        assert y.dtype == dtype and y.shape == x.shape
        assert rel_err(y, ref) < TOL[dtype]
        compute = torch.float64 if dtype == torch.float64 else torch.float32
        plan = _Plan(n, normalized=True, inverse=inverse, signs=s)
        z = plan.torch_ops(x.to(compute)).to(dtype)  # the CUDA / torch.compile path
        assert rel_err(z, ref) < TOL[dtype]


def test_many_sylvester_factors_match_numpy():
    # 2^15 splits into three factors of the torch-ops path; the numpy transform (tested against dense) is the reference
    n = 1 << 15
    x = torch.randn(2, n, dtype=torch.float64)
    ref = torch.from_numpy(hadamard.fwht(x.numpy()))
    assert rel_err(_Plan(n, normalized=True, inverse=False, signs=None).torch_ops(x), ref) < 1e-12
    assert rel_err(hadamard.fwht(x), ref) < 1e-12


def test_dim_out_and_unnormalized():
    x = torch.randn(4, 24, 5, dtype=torch.float64)
    y = hadamard.fwht(x, 1, normalized=False)
    ref = dense(x.movedim(1, -1), 24, normalized=False).movedim(-1, 1)
    assert rel_err(y, ref) < 1e-12
    out = torch.empty_like(x)
    assert hadamard.fwht(x, 1, normalized=False, out=out) is out
    assert torch.equal(out, y)
    assert torch.allclose(hadamard.fwht(y, 1, normalized=False, inverse=True), x)


@pytest.mark.parametrize("n", [16, 12, 24])
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("normalized", [True, False])
def test_gradcheck_numba_path(n, inverse, normalized):
    x = torch.randn(3, n, dtype=torch.float64, requires_grad=True)
    s = hadamard.random_signs(n, seed=2)
    assert torch.autograd.gradcheck(lambda t: hadamard.fwht(t, signs=s, inverse=inverse, normalized=normalized), (x,))


@pytest.mark.parametrize("n", [16, 24])
def test_gradcheck_torch_ops_path(n):
    x = torch.randn(3, n, dtype=torch.float64, requires_grad=True)
    plan = _Plan(n, normalized=True, inverse=True, signs=hadamard.random_signs(n, seed=3))
    assert torch.autograd.gradcheck(plan.torch_ops, (x,))


def test_gradient_is_transposed_transform():
    x = torch.randn(2, 40, requires_grad=True)
    g = torch.randn(2, 40)
    hadamard.fwht(x).backward(g)
    assert torch.allclose(x.grad, hadamard.fwht(g, inverse=True), atol=1e-6)


def test_module_round_trip_buffers_and_errors():
    rot = HadamardTransform(72, randomized=True, seed=9)
    back = HadamardTransform(72, randomized=True, seed=9, inverse=True)
    x = torch.randn(2, 3, 72)
    y = rot(x)
    assert torch.allclose(y, hadamard.fwht(x, signs=hadamard.random_signs(72, 9)), atol=1e-6)
    assert torch.allclose(back(y), x, atol=1e-5)
    assert rot.state_dict() == {}  # everything is rebuilt from (n, seed)
    assert "n=72" in repr(rot)
    assert rot.to(torch.float64).signs.dtype == torch.float64
    with pytest.raises(ValueError, match="last dimension is 72"):
        rot(torch.randn(2, 71))
    with pytest.raises(TypeError, match="floating"):
        rot(torch.ones(2, 72, dtype=torch.int64))
    with pytest.raises(hadamard.NoHadamardError):
        HadamardTransform(6)


def test_function_errors():
    with pytest.raises(TypeError, match="real floating"):
        hadamard.fwht(torch.ones(4, dtype=torch.int32))
    with pytest.raises(TypeError, match="real floating"):
        hadamard.fwht(torch.ones(4, dtype=torch.complex64))
    with pytest.raises(IndexError, match="dim"):
        hadamard.fwht(torch.ones(2, 4), 2)
    with pytest.raises(ValueError, match=r"\+1 or -1"):
        hadamard.fwht(torch.ones(2, 4), signs=torch.tensor([1.0, 2.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="out"):
        hadamard.fwht(torch.ones(2, 4), out=torch.empty(2, 5))


def test_nan_propagates():
    x = torch.randn(2, 12)
    x[0, 3] = float("nan")
    y = hadamard.fwht(x)
    assert torch.isnan(y[0]).all() and torch.isfinite(y[1]).all()


def test_compile_traces_whole_graph():
    # fullgraph=True fails on any graph break; aot_eager checks tracing and autograd without a C++ toolchain
    mod = HadamardTransform(24, randomized=True, seed=1)
    compiled = torch.compile(mod, backend="aot_eager", fullgraph=True)
    x = torch.randn(5, 24, requires_grad=True)
    y = compiled(x)
    assert torch.allclose(y, mod(x), atol=1e-6)
    y.sum().backward()
    assert torch.allclose(x.grad, hadamard.fwht(torch.ones(5, 24), signs=mod.signs, inverse=True), atol=1e-5)


def test_compile_traces_the_function_for_orders_not_built_yet(monkeypatch):
    from hadamard import _api
    from hadamard._torch import _factor_matrix

    # as in a fresh process: nothing built, so the trace meets the constructions' lock and numpy code
    monkeypatch.setattr(_api, "_built", {})
    _factor_matrix.cache_clear()
    signs = torch.as_tensor(hadamard.random_signs(24, 1), dtype=torch.float32)
    for n, kwargs in ((12, {}), (16, {}), (24, dict(signs=signs, inverse=True)), (28 * 64, dict(normalized=False))):
        torch._dynamo.reset()
        compiled = torch.compile(lambda t: hadamard.fwht(t, **kwargs), backend="aot_eager", fullgraph=True)
        x = torch.randn(3, n, dtype=torch.float64)
        assert rel_err(compiled(x), dense(x, n, **kwargs)) < 1e-12
    with pytest.raises(Exception, match="signs must be a tensor"):
        torch.compile(lambda t: hadamard.fwht(t, signs=[1.0] * 12), backend="aot_eager", fullgraph=True)(torch.ones(2, 12))


def test_double_backward_on_the_numba_path():
    x = torch.randn(3, 12, dtype=torch.float64, requires_grad=True)
    signs = hadamard.random_signs(12, 2)
    assert torch.autograd.gradgradcheck(lambda t: hadamard.fwht(t, signs=signs), (x,))
    # a gradient penalty: d/dw ||d/dx sum(w * H x)||^2 = 2 w, since H is orthogonal
    w = torch.randn(3, 12, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad((w * hadamard.fwht(x)).sum(), x, create_graph=True)
    (penalty,) = torch.autograd.grad(grad.pow(2).sum(), w)
    assert torch.allclose(penalty, 2 * w.detach())


def test_bfloat16_signs_and_modules():
    rot = HadamardTransform(12, randomized=True, seed=4).to(torch.bfloat16)
    x = torch.randn(2, 12, dtype=torch.bfloat16)
    assert rel_err(rot(x), dense(x, 12, signs=hadamard.random_signs(12, 4))) < TOL[torch.bfloat16]
    y = hadamard.fwht(x.float(), signs=torch.ones(12, dtype=torch.bfloat16))
    assert rel_err(y, dense(x, 12)) < 1e-5


@pytest.mark.slow
def test_compile_inductor():
    mod = HadamardTransform(28 * 64)
    compiled = torch.compile(mod, fullgraph=True)
    x = torch.randn(8, 28 * 64)
    assert torch.allclose(compiled(x), mod(x), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda(dtype):
    x = torch.randn(4, 12 * 64, device="cuda", dtype=dtype, requires_grad=True)
    mod = HadamardTransform(12 * 64, randomized=True, seed=4).cuda()
    y = mod(x)
    assert y.device.type == "cuda" and y.dtype == dtype
    assert rel_err(y, dense(x, 12 * 64, signs=hadamard.random_signs(12 * 64, 4))) < TOL[dtype]
    y.float().square().sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_numpy_integer_dims_and_out_with_gradients():
    x = torch.randn(2, 12)
    assert torch.equal(hadamard.fwht(x, np.int64(1)), hadamard.fwht(x, 1))
    with pytest.raises(RuntimeError, match="out= gives no gradient"):
        hadamard.fwht(x.requires_grad_(), out=torch.empty(2, 12))
    with torch.no_grad():
        out = torch.empty(2, 12)
        assert hadamard.fwht(x, out=out) is out
