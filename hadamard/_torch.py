"""The Hadamard transform on torch tensors: a function with autograd and an ``nn.Module``.

Two implementations of the same map ``x -> post * c * (pre * x) @ H_n^(T)``:

* CPU tensors in eager mode go through the numba kernels of
  :mod:`hadamard._fwht` on zero-copy numpy views, wrapped in a
  :class:`torch.autograd.Function` whose backward is the transposed
  transform (the map is linear, so that is its exact gradient).
* Every other case (CUDA or any other device, and code traced by
  ``torch.compile``) uses plain torch ops: ``H_n = H_m (x) H_{p_1} (x) ...``
  with every factor at most 128 wide, applied as one small matmul per factor
  (tensor-core friendly, no custom CUDA build); autograd and compilation come
  for free.

float16/bfloat16 are computed in float32 and cast back.
"""

from __future__ import annotations

import numbers
from functools import lru_cache

import numpy as np
import torch

from . import _fwht
from ._api import factors, get

_MAX_FACTOR = 128
"""Widest dense Sylvester factor of the torch-ops path (``H_128`` = one tensor-core friendly matmul)."""


def hadamard_transform(x: torch.Tensor, dim: int = -1, *, normalized: bool = True, signs=None, inverse: bool = False, out=None):
    """Hadamard transform of a tensor along ``dim``: ``x @ H_n.T`` (see :func:`hadamard.fwht`).

    Parameters
    ----------
    x : torch.Tensor
        Real floating tensor on any device; float16/bfloat16 computed in float32.
    dim : int, optional
        The dimension to transform (default last).
    normalized, signs, inverse
        As in :func:`hadamard.fwht`; ``signs`` may be a tensor or array of +-1.
    out : torch.Tensor, optional
        Written with the result and returned (same shape, dtype and device as ``x``).

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``; differentiable in ``x``.

    Raises
    ------
    TypeError, ValueError, IndexError
        Non-float dtype, bad ``dim``, bad ``signs`` or ``out``.
    NoHadamardError, UnknownOrderError
        No Hadamard matrix of order ``x.shape[dim]`` here.

    Examples
    --------
    >>> import torch, hadamard
    >>> from hadamard._torch import hadamard_transform
    >>> x = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    >>> hadamard_transform(x)
    tensor([[0.5000, 0.5000, 0.5000, 0.5000]])
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() and not x.is_complex()):
        raise TypeError(
            f"the Hadamard transform needs a real floating tensor (float16, bfloat16, float32, float64), got {x.dtype}"
        )
    if x.ndim == 0:
        raise ValueError("the Hadamard transform needs at least one dimension; got a 0-d tensor")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -x.ndim <= dim < x.ndim:
        raise IndexError(f"dim must be an integer in [{-x.ndim}, {x.ndim - 1}] for a {x.ndim}-d tensor, got {dim!r}")
    dim = int(dim)
    if out is not None and torch.is_grad_enabled() and x.requires_grad:
        raise RuntimeError("out= gives no gradient (as in torch's own out= functions) and x requires grad; "
                           "drop out=, or call under torch.no_grad()")
    n = x.shape[dim]
    if n == 0:
        raise ValueError(f"dim {dim} has length 0; a Hadamard transform needs a positive length")
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    moved = x.movedim(dim, -1)
    flat = moved.reshape(-1, n).to(compute)
    if _compiling():
        y = _traced_ops(flat, n, normalized=normalized, signs=signs, inverse=inverse)
    else:
        plan = _Plan(n, normalized=normalized, inverse=inverse, signs=signs)
        y = _NumbaTransform.apply(flat, plan) if flat.device.type == "cpu" else plan.torch_ops(flat)
    y = y.to(x.dtype).reshape(moved.shape).movedim(-1, dim)
    if out is not None:
        if not isinstance(out, torch.Tensor) or out.shape != x.shape or out.dtype != x.dtype or out.device != x.device:
            raise ValueError("out must be a tensor with the shape, dtype and device of x")
        with torch.no_grad():
            out.copy_(y)
        return out
    return y


def _traced_ops(x: torch.Tensor, n: int, *, normalized, signs, inverse) -> torch.Tensor:
    """:meth:`_Plan.torch_ops` as ``torch.compile`` can trace it: the factor matrices come
    from :func:`_factor_matrices`, which the compiler calls once and keeps as constants
    (tracing into the constructions would meet their lock and numpy code), and the signs
    must be a tensor (checked for shape only: a value check would break the graph)."""
    if signs is not None:
        if not isinstance(signs, torch.Tensor) or signs.shape != (n,):
            raise ValueError(f"under torch.compile, signs must be a tensor of shape ({n},) holding +-1")
        signs = signs.to(device=x.device, dtype=x.dtype)
    pre, post = (None, signs) if inverse else (signs, None)
    mats = [mat.to(device=x.device, dtype=x.dtype) for mat in _factor_matrices(n, bool(inverse))]
    return _apply_factors(x, mats, _fwht._scale_factor(n, normalized, inverse), pre, post)


def _assume_constant(fn):
    constant = getattr(getattr(torch, "compiler", None), "assume_constant_result", None)
    return fn if constant is None else constant(fn)


@_assume_constant
def _factor_matrices(n: int, transposed: bool) -> tuple[torch.Tensor, ...]:
    """The float64 CPU factors ``M_j`` of :func:`_apply_factors` for order ``n``."""
    m, p = factors(n)
    return tuple(_factor_matrix(f, m, transposed, torch.float64, torch.device("cpu")) for f in _factor_sizes(m, p))


def _compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())


class _Plan:
    """What to compute: ``y = post * scale * (pre * x) @ M`` with ``M = H^T`` (forward) or ``H`` (transposed)."""

    def __init__(self, n, *, normalized, inverse, signs, _parts=None):
        self.n = n
        self.m, self.p = factors(n)
        if _parts is not None:
            self.pre, self.post, self.scale, self.transposed = _parts
            return
        s = None if signs is None else _signs_vector(signs, n)
        self.pre, self.post = (None, s) if inverse else (s, None)
        self.scale = _fwht._scale_factor(n, normalized, inverse)
        self.transposed = bool(inverse)

    def adjoint(self) -> _Plan:
        """The plan of the transposed map, which is the gradient of this one."""
        return _Plan(self.n, normalized=None, inverse=None, signs=None, _parts=(self.post, self.pre, self.scale, not self.transposed))

    def numpy_spec(self, dtype) -> _fwht._Spec:
        spec = _fwht._Spec()
        key = np.dtype(dtype).str
        spec.m, spec.p = self.m, self.p
        spec.set_factor(np.dtype(dtype), self.transposed)
        spec.pre = _fwht._EMPTY[key] if self.pre is None else self.pre.astype(dtype)
        spec.post = _fwht._EMPTY[key] if self.post is None else self.post.astype(dtype)
        spec.scale = np.dtype(dtype).type(self.scale)
        return spec

    def numba(self, x: torch.Tensor) -> torch.Tensor:
        y = x.detach().clone(memory_format=torch.contiguous_format)
        _fwht._run(y.numpy(), self.numpy_spec(y.numpy().dtype))
        return y

    def factor_sizes(self) -> list[int]:
        return _factor_sizes(self.m, self.p)

    def torch_ops(self, x: torch.Tensor) -> torch.Tensor:
        """Plain differentiable torch ops on a ``(rows, n)`` tensor."""
        mats = [_factor_matrix(f, self.m, self.transposed, x.dtype, x.device) for f in self.factor_sizes()]
        pre = None if self.pre is None else torch.as_tensor(self.pre, dtype=x.dtype, device=x.device)
        post = None if self.post is None else torch.as_tensor(self.post, dtype=x.dtype, device=x.device)
        return _apply_factors(x, mats, self.scale, pre, post)


def _apply_factors(x: torch.Tensor, mats: list[torch.Tensor], scale: float, pre, post) -> torch.Tensor:
    """``post * scale * (pre * x) @ (M_1 (x) M_2 (x) ...)^T`` for ``x`` of shape ``(rows, n)``.

    Factor ``M_j`` acts on its own axis of ``x`` viewed as ``(rows, f_1, f_2, ...)``,
    one batched matmul each, so no ``n x n`` matrix is formed.
    """
    if pre is not None:
        x = x * pre
    rows, n = x.shape
    left, right = rows, n
    for mat in mats:
        f = mat.shape[0]
        right //= f
        if mat.dtype != x.dtype:
            mat = mat.to(x.dtype)
        if right == 1:
            x = x.reshape(-1, f) @ mat.T
        else:
            x = torch.matmul(mat, x.reshape(left, f, right))
        left *= f
    x = x.reshape(rows, n) * scale
    if post is not None:
        x = x * post
    return x


def _factor_sizes(m: int, p: int) -> list[int]:
    """Orders of the factors ``H_m (x) H_{p_1} (x) ...`` that :func:`_apply_factors` applies."""
    return ([m] if m > 1 else []) + _sylvester_split(p)


def _sylvester_split(p: int) -> list[int]:
    """``p = 2^k`` as a product of powers of two, each at most ``_MAX_FACTOR``, balanced."""
    if p == 1:
        return []
    k = p.bit_length() - 1
    kmax = _MAX_FACTOR.bit_length() - 1
    parts = -(-k // kmax)
    base, extra = divmod(k, parts)
    return [1 << (base + (i < extra)) for i in range(parts)]


@lru_cache(maxsize=128)
def _factor_matrix(f: int, m: int, transposed: bool, dtype, device) -> torch.Tensor:
    # Sylvester factors are symmetric; only the H_m factor (f == m) can differ from its transpose
    h = get(f)
    if transposed and f == m:
        h = h.T
    return torch.from_numpy(h.astype(np.float64)).to(device=device, dtype=dtype)


def _signs_vector(signs, n: int) -> np.ndarray:
    if isinstance(signs, torch.Tensor):
        # numpy has no bfloat16; +-1 (and any mistake in them) are exact in float64
        signs = signs.detach().cpu().to(torch.float64 if signs.is_floating_point() else signs.dtype).numpy()
    return _fwht.check_signs(signs, n)


class _NumbaTransform(torch.autograd.Function):
    """Linear map by the numba kernels on CPU; its gradient is the transposed map."""

    @staticmethod
    def forward(ctx, x, plan):
        ctx.plan = plan
        return plan.numba(x)

    @staticmethod
    def backward(ctx, grad):
        # through apply, so that the gradient is itself differentiable (double backward, gradient
        # penalties): the adjoint's adjoint is this map again
        return _NumbaTransform.apply(grad.contiguous(), ctx.plan.adjoint()), None


class HadamardTransform(torch.nn.Module):
    """``nn.Module`` applying the (optionally randomized) Hadamard transform to the last dimension.

    Parameters
    ----------
    n : int
        Size of the last dimension of the inputs: any order ``hadamard.get`` builds.
    randomized : bool, optional
        Multiply by seeded random signs first: ``x -> H (s * x)`` (QuIP#/QuaRot).
    seed : int, optional
        Seed of the signs (:func:`hadamard.random_signs`).
    normalized : bool, optional
        Orthogonal ``H / sqrt(n)`` (default) or the +-1 matrix.
    inverse : bool, optional
        Apply the inverse map instead (undoes a module built with the same
        ``n``, ``randomized``, ``seed`` and ``normalized``).

    Examples
    --------
    >>> import torch, hadamard
    >>> rot = hadamard.HadamardTransform(12, randomized=True, seed=3)
    >>> x = torch.randn(2, 12)
    >>> back = hadamard.HadamardTransform(12, randomized=True, seed=3, inverse=True)
    >>> bool(torch.allclose(back(rot(x)), x, atol=1e-6))
    True
    """

    def __init__(self, n: int, *, randomized: bool = False, seed: int = 0, normalized: bool = True, inverse: bool = False):
        super().__init__()
        signs = _fwht.random_signs(n, seed) if randomized else None
        self._plan = _Plan(n, normalized=normalized, inverse=inverse, signs=signs)
        self.n, self.randomized, self.seed, self.normalized, self.inverse = int(n), randomized, seed, normalized, inverse
        # the torch-ops path (CUDA, torch.compile) reads these buffers, so they follow .to(device)
        mats = [_factor_matrix(f, self._plan.m, self._plan.transposed, torch.float32, torch.device("cpu"))
                for f in self._plan.factor_sizes()]
        for i, mat in enumerate(mats):
            self.register_buffer(f"factor{i}", mat.clone(), persistent=False)
        self._nfactors = len(mats)
        s = None if signs is None else torch.as_tensor(signs, dtype=torch.float32)
        self.register_buffer("signs", s, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1:] != (self.n,):
            raise ValueError(f"HadamardTransform({self.n}) needs inputs whose last dimension is {self.n}, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"HadamardTransform needs a real floating tensor, got {x.dtype}")
        if x.device.type == "cpu" and not _compiling():
            return hadamard_transform(x, -1, normalized=self.normalized, signs=self.signs, inverse=self.inverse)
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        flat = x.reshape(-1, self.n).to(compute)
        mats = [getattr(self, f"factor{i}") for i in range(self._nfactors)]
        s = None if self.signs is None else self.signs.to(compute)
        pre, post = (None, s) if self.inverse else (s, None)
        return _apply_factors(flat, mats, self._plan.scale, pre, post).to(x.dtype).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"n={self.n}, randomized={self.randomized}, seed={self.seed}, normalized={self.normalized}, inverse={self.inverse}"


