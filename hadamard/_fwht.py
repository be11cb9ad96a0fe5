"""The fast Walsh-Hadamard transform :func:`fwht` and the random signs of its randomized form.

For ``n = m * p`` with ``p`` a power of two, :func:`hadamard.factors` gives
``H_n = H_m (x) H_p``; a length-``n`` vector read as an ``(m, p)`` matrix
``X`` (row-major) is transformed as ``H_m X H_p``: butterflies along the rows
(``p log2 p`` additions each) and a small dense product by ``H_m`` along the
columns. Nothing of size ``n x n`` is built. The numba kernels live in
:mod:`hadamard._fwht_kernels`; torch tensors go to :mod:`hadamard._torch`,
which is imported only when a tensor arrives, so this module never imports
torch itself.
"""

from __future__ import annotations

import math
import numbers
import sys
from functools import lru_cache

import numpy as np

from ._api import factors, get

_SERIAL_MAX_ELEMENTS = 1 << 16
"""Inputs up to this many elements run on one thread: waking numba's thread pool costs more."""

_TASKS_PER_THREAD = 4
"""Parallel tasks per thread, so uneven rows balance out."""


def _rows_per_task(nrows: int, threads: int) -> int:
    """Rows per parallel task when ``nrows`` rows go over ``threads`` threads (``_TASKS_PER_THREAD``
    tasks each)."""
    return max(1, -(-nrows // (threads * _TASKS_PER_THREAD)))

_ALIGN_BYTES = 64
"""The result of an out-of-place transform starts on a cache line (see :func:`_aligned_copy`)."""

_ALIGN_MIN_BYTES = 1 << 20
"""Smaller results are plain copies: the extra allocation would show in the latency of short inputs."""


def random_signs(n: int, seed: int = 0) -> np.ndarray:
    """Seeded random +-1 signs, the diagonal ``s`` of a randomized Hadamard transform.

    ``fwht(x, signs=random_signs(n, seed))`` computes ``H diag(s) x``, the
    randomized Hadamard transform of QuIP# and QuaRot: it spreads any fixed
    vector's mass evenly with high probability, whatever its structure.

    Parameters
    ----------
    n : int
        Length, a positive integer.
    seed : int, optional
        Non-negative seed of :func:`numpy.random.default_rng`; the same
        ``(n, seed)`` gives the same signs (for a given numpy version).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int8 array of +1 and -1.

    Raises
    ------
    TypeError
        ``n`` or ``seed`` is not an integer.
    ValueError
        ``n <= 0`` or ``seed < 0``.

    Examples
    --------
    >>> import hadamard
    >>> s = hadamard.random_signs(8, seed=1)
    >>> s.dtype, sorted(set(s.tolist())) <= [-1, 1], len(s)
    (dtype('int8'), True, 8)
    >>> bool((s == hadamard.random_signs(8, seed=1)).all())
    True

    References
    ----------
    .. [1] A. Tseng et al., "QuIP#: Even Better LLM Quantization with
       Hadamard Incoherence and Lattice Codebooks", ICML 2024.
    .. [2] S. Ashkboos et al., "QuaRot: Outlier-Free 4-Bit Inference in
       Rotated LLMs", NeurIPS 2024.
    """
    n = _positive_int(n, "n")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer, got {seed!r} of type {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    bits = np.random.default_rng(int(seed)).integers(0, 2, size=n, dtype=np.int8)
    return (1 - 2 * bits).astype(np.int8)


def fwht(x, axis: int = -1, *, normalized: bool = True, signs=None, inverse: bool = False, out=None):
    """Fast Walsh-Hadamard transform along one axis: ``x @ H_n.T``.

    ``H_n`` is ``hadamard.get(n)`` for ``n = x.shape[axis]`` -- any order the
    library builds, not only powers of two. The power-of-two part runs as
    in-place butterflies (numba, cache-blocked, parallel over the other axes
    for large inputs) and the rest as a small dense product by ``H_m``, where
    ``(m, p) = hadamard.factors(n)``. Torch tensors are handled by the torch
    path (same arguments; any device; autograd), see
    :class:`hadamard.HadamardTransform`.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Real floating input. float32 and float64 are computed in their own
        precision; float16 (and torch bfloat16) in float32 and cast back.
    axis : int, optional
        The axis to transform (default last).
    normalized : bool, optional
        True (default): the orthogonal transform ``H_n / sqrt(n)``.
        False: the +-1 matrix ``H_n`` itself.
    signs : array_like of +-1, optional
        Length-``n`` signs ``s`` (e.g. :func:`random_signs`): the randomized
        transform ``x -> H (s * x)``, i.e. ``(s * x) @ H.T``.
    inverse : bool, optional
        Compute the inverse map instead, so that
        ``fwht(fwht(x, **kw), inverse=True, **kw)`` returns ``x``: ``y -> s * (y @ H) / c``
        with ``c = sqrt(n)`` when normalized and ``c = n`` otherwise. For the
        normalized transform this is the transpose.
    out : numpy.ndarray, optional
        Where to write the result; may be ``x`` itself for an in-place
        transform. It must have ``x``'s shape and dtype and be writeable. When
        ``out`` is C-contiguous and ``axis`` is its last axis the kernels run
        in ``out`` directly; otherwise a contiguous temporary is transformed
        and copied into ``out`` (same result, one extra copy).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Same shape and dtype as ``x`` (``out`` when given). NaN and inf
        propagate as in the dense product: every output that sums over a NaN
        is NaN.

    Raises
    ------
    TypeError
        ``x`` is not real floating point (integer, bool, complex, object).
    numpy.exceptions.AxisError
        ``axis`` is out of range.
    NoHadamardError, UnknownOrderError
        ``n`` has no Hadamard matrix, or none this library builds (the
        message names the nearest orders).
    ValueError
        Bad ``signs`` (shape, values other than +-1, NaN) or ``out`` (shape,
        dtype, read-only).

    Examples
    --------
    >>> import numpy as np, hadamard
    >>> x = np.array([1.0, 0.0, 0.0, 0.0])
    >>> hadamard.fwht(x)
    array([0.5, 0.5, 0.5, 0.5])
    >>> x = np.random.default_rng(0).standard_normal((3, 12))
    >>> bool(np.allclose(hadamard.fwht(x, normalized=False), x @ hadamard.get(12).T))
    True
    >>> s = hadamard.random_signs(12, seed=7)
    >>> y = hadamard.fwht(x, signs=s)
    >>> bool(np.allclose(hadamard.fwht(y, signs=s, inverse=True), x))
    True

    References
    ----------
    .. [1] M. Fino and V. Algazi, "Unified matrix treatment of the fast
       Walsh-Hadamard transform", IEEE Trans. Computers C-25 (1976).
    .. [2] A. Andoni et al., FFHT: "Practical and optimal LSH for angular
       distance", NeurIPS 2015 (the SIMD kernel design compared against).
    """
    if type(x) is np.ndarray and signs is None and type(axis) is int and axis == -1 and (out is x or out is None) and x.ndim:
        # Shortest path (one or a few vectors of a power-of-two length): two-argument kernel
        # with fixed signatures; anything it does not take (dtype, layout, read-only, ndim > 3)
        # raises TypeError before any work and goes on to the paths below.
        n = x.shape[-1]
        if n and not n & (n - 1) and x.size <= _SERIAL_MAX_ELEMENTS and (out is x or (x.dtype.char in "fd" and x.dtype.isnative)):
            work = x if out is x else np.array(x, order="C", copy=True)
            try:
                (_INPLACE or _inplace_kernel())(work, _scale_factor(n, normalized, inverse))
            except TypeError:
                pass
            else:
                return work
    if (
        type(x) is np.ndarray
        and signs is None
        and (out is None or (out is x and x.flags.c_contiguous and x.flags.writeable))
        and type(axis) is int
        and axis == -1
        and x.dtype.char in "fd"
        and x.dtype.isnative
        and x.ndim
        and x.shape[-1]
        and type(normalized) is bool
        and type(inverse) is bool
    ):
        # Latency path for the common call (one or a few vectors): the checks below
        # would cost more than transforming a 4096-vector.
        n = x.shape[-1]
        work = _aligned_copy(x, x.dtype) if out is None else x
        _run(work.reshape(-1, n), _unsigned_spec(n, x.dtype.str, normalized, inverse))
        return work
    if _is_torch_tensor(x):
        from ._torch import hadamard_transform

        return hadamard_transform(x, axis, normalized=normalized, signs=signs, inverse=inverse, out=out)
    return _fwht_numpy(x, axis, normalized=normalized, signs=signs, inverse=inverse, out=out)


def _aligned_copy(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A C-contiguous copy of ``x`` as ``dtype`` (cast as ``np.array`` would) whose data start
    on a 64-byte boundary when it is 1 MiB or more.

    numpy places large arrays 16 bytes past a page boundary, so half of the kernels' 32-byte
    loads and stores would straddle two cache lines; from a line boundary the transform ran
    1.08-1.26x faster (power-of-two rows, 64 MiB, Zen 4). The copy is a view of a slightly
    larger buffer, so it does not own its data.
    """
    dtype = np.dtype(dtype)
    nbytes = x.size * dtype.itemsize
    if nbytes < _ALIGN_MIN_BYTES:
        return np.array(x, dtype=dtype, order="C", copy=True)
    raw = np.empty(nbytes + _ALIGN_BYTES, dtype=np.uint8)
    start = -raw.ctypes.data % _ALIGN_BYTES
    work = raw[start : start + nbytes].view(dtype).reshape(x.shape)
    np.copyto(work, x, casting="unsafe")
    return work


def _is_torch_tensor(x) -> bool:
    torch = sys.modules.get("torch")  # never import torch for numpy input
    return torch is not None and isinstance(x, torch.Tensor)


def _fwht_numpy(x, axis, *, normalized, signs, inverse, out):
    x = np.asarray(x)
    compute = _compute_dtype(x.dtype)
    if x.ndim == 0:
        raise ValueError("fwht needs at least one axis; got a 0-d array")
    axis = _normalize_axis(axis, x.ndim)
    n = x.shape[axis]
    if n == 0:
        raise ValueError(f"axis {axis} has length 0; a Hadamard transform needs a positive length")
    spec = _spec(n, compute, normalized=bool(normalized), signs=signs, inverse=bool(inverse))
    _check_out(out, x)

    last = axis == x.ndim - 1
    moved = x if last else np.moveaxis(x, axis, -1)
    in_place = out is not None and last and out.flags.c_contiguous and out.dtype == compute
    if in_place:
        if out is not x:
            np.copyto(out, x)
        work = out.reshape(-1, n)
    else:
        work = _aligned_copy(moved, compute).reshape(-1, n)
    _run(work, spec)
    result = work.reshape(moved.shape)
    if in_place:
        return out
    if out is not None:
        np.copyto(out if last else np.moveaxis(out, axis, -1), result, casting="same_kind")
        return out
    result = result.astype(x.dtype, copy=False)
    return result if last else np.moveaxis(result, -1, axis)


def _spec(n: int, dtype: np.dtype, *, normalized: bool, signs, inverse: bool) -> _Spec:
    base = _unsigned_spec(n, dtype.str, normalized, inverse)
    if signs is None:
        return base
    spec = base.copy()
    s = check_signs(signs, n).astype(dtype)
    if inverse:
        spec.post = s
    else:
        spec.pre = s
    return spec


@lru_cache(maxsize=256)
def _unsigned_spec(n: int, dtype: str, normalized: bool, inverse: bool) -> _Spec:
    # cached: building a spec costs more than transforming a 4096-vector
    m, p = factors(n)
    return _Spec.build(n, m, p, np.dtype(dtype), normalized=normalized, signs=None, inverse=inverse)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """float32 or float64 in the machine's byte order (float16 computes in float32)."""
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return np.dtype(np.float64 if dtype.itemsize == 8 else np.float32)
    raise TypeError(
        f"fwht needs a real floating array (float16, float32 or float64), got dtype {dtype}; "
        f"convert it first, e.g. x.astype(np.float64)"
    )


def _normalize_axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer, got {axis!r} of type {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(int(axis), ndim)
    return int(axis) % ndim


def _check_out(out, x: np.ndarray) -> None:
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array for numpy input, got {type(out).__name__}")
    if out.shape != x.shape or out.dtype != x.dtype:
        raise ValueError(
            f"out must have the shape and dtype of x, {x.shape} {x.dtype}; got {out.shape} {out.dtype}"
        )
    if not out.flags.writeable:
        raise ValueError("out is read-only; pass a writeable array (or out=None for a new one)")


def _positive_int(n, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {n!r} of type {type(n).__name__}")
    if n <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n}")
    return int(n)


def check_signs(signs, n: int) -> np.ndarray:
    """``signs`` as a float64 ``(n,)`` array of +-1, or raise ValueError/TypeError."""
    s = np.asarray(signs)
    if s.dtype.kind not in "biuf":
        raise TypeError(f"signs must be a real numeric array of +-1, got dtype {s.dtype}")
    if s.shape != (n,):
        raise ValueError(f"signs must have shape ({n},) to match the transformed axis, got {s.shape}")
    s = s.astype(np.float64)
    if not np.all(np.abs(s) == 1):
        bad = s[np.abs(s) != 1][0]
        raise ValueError(f"signs must all be +1 or -1 (see hadamard.random_signs), found {bad}")
    return s


def _scale_factor(n: int, normalized, inverse) -> float:
    """Scale of the transform: ``1/sqrt(n)`` normalized, else ``1/n`` for the inverse, else 1."""
    if normalized:
        return 1 / math.sqrt(n)
    return 1.0 / n if inverse else 1.0


class _Spec:
    """Kernel arguments of ``x -> post * scale * (H_m (x) H_p)^(T) (pre * x)`` for one call."""

    __slots__ = ("m", "p", "transposed", "hm", "codes", "gsigns", "w", "pre", "post", "scale")

    @classmethod
    def build(cls, n, m, p, dtype, *, normalized, signs, inverse):
        spec = cls()
        spec.m, spec.p = m, p
        spec.set_factor(np.dtype(dtype), bool(inverse))
        s = _EMPTY[np.dtype(dtype).str] if signs is None else check_signs(signs, n).astype(dtype)
        spec.pre, spec.post = (_EMPTY[np.dtype(dtype).str], s) if inverse else (s, _EMPTY[np.dtype(dtype).str])
        spec.scale = np.dtype(dtype).type(_scale_factor(n, normalized, inverse))
        return spec


    def copy(self) -> _Spec:
        new = _Spec()
        for name in self.__slots__:
            setattr(new, name, getattr(self, name))
        return new

    def set_factor(self, dtype: np.dtype, transpose: bool) -> None:
        self.transposed = transpose
        self.hm = _dense_factor(self.m, dtype.str, transpose)
        self.codes, self.gsigns = _group_codes(self.m, dtype.str, transpose)
        self.w = _column_block(self.codes.shape[1], dtype.itemsize)


_EMPTY = {np.dtype(t).str: np.empty(0, dtype=t) for t in (np.float32, np.float64)}


@lru_cache(maxsize=64)
def _dense_factor(m: int, dtype: str, transpose: bool) -> np.ndarray:
    """``H_m`` (or its transpose) as a C-contiguous float array, read-only."""
    h = get(m)
    h = np.ascontiguousarray(h.T if transpose else h, dtype=np.dtype(dtype))
    h.flags.writeable = False
    return h


@lru_cache(maxsize=64)
def _group_codes(m: int, dtype: str, transpose: bool) -> tuple[np.ndarray, np.ndarray]:
    """``H_m`` in the form the Four-Russians kernel reads, ``(codes, gsigns)`` of shape ``(m, m/4)``.

    ``H[i, 4q + k] = gsigns[i, q] * (-1)^(bit k-1 of codes[i, q])`` for ``k = 1, 2, 3``
    (and ``gsigns[i, q]`` for ``k = 0``). ``m == 1`` gives empty arrays (no dense part).
    """
    if m == 1:
        return np.zeros((1, 0), dtype=np.int64), np.zeros((1, 0), dtype=np.dtype(dtype))
    return _kernels().group_codes(_dense_factor(m, dtype, transpose))


_TABLE_BYTES = 32768
"""Most bytes of Four-Russians table per column block of the ``H_m`` product (half of L1)."""


def _column_block(ngroups: int, itemsize: int) -> int:
    """Columns per block of the ``H_m`` product (the kernels cap it at the row's length).

    The product reads its table ``m/4`` times per output, so the table
    (``ngroups * 8 * w`` values) should stay in L1: the widest power of two
    up to 256 that keeps it within ``_TABLE_BYTES``, but at least one run of
    the kernel's registers (``IN_REGISTER_BYTES``: shorter runs fall to
    scalar code).
    """
    run = _kernels().IN_REGISTER_BYTES // itemsize
    w = 256
    while w > run and ngroups * 8 * w * itemsize > _TABLE_BYTES:
        w //= 2
    return w


def _run(work: np.ndarray, spec: _Spec) -> None:
    """Transform the rows of the C-contiguous 2-D ``work`` in place."""
    if work.shape[0] == 0:
        return
    if spec.p == 1:
        _run_dense_only(work, spec)
        return
    kernels = _kernels()
    itemsize = work.dtype.itemsize
    if spec.m == 1 and not spec.pre.size and not spec.post.size:
        # pure power of two: the kernels that run over blocks of whole rows (no per-row work,
        # which short rows pay dearly) and take the fewest arguments
        reg, block = kernels.IN_REGISTER[itemsize], kernels.L1_BLOCK[itemsize]
        threads = kernels.numba_threads()
        if threads == 1 or work.size <= _SERIAL_MAX_ELEMENTS or work.shape[0] == 1:
            kernels.sylvester_serial(work, spec.scale, reg, block)
        else:
            chunk = _rows_per_task(work.shape[0], threads)
            kernels.sylvester_parallel(work, spec.scale, reg, block, chunk)
        return
    reg, block = kernels.IN_REGISTER[itemsize], kernels.L1_BLOCK[itemsize]
    if _register_product_fits(spec.m, spec.p, itemsize):
        serial, parallel = _register_product_drivers(spec.m, spec.transposed, _rows_in_l1(spec.m, spec.p, itemsize))
        args = (work, spec.p, spec.pre, spec.post, spec.scale, reg, block)
        threads = 1 if work.size <= _SERIAL_MAX_ELEMENTS or work.shape[0] == 1 else kernels.numba_threads()
        if threads == 1:
            serial(*args)
        else:
            parallel(*args, _rows_per_task(work.shape[0], threads))
        return
    args = (work, spec.p, spec.codes, spec.gsigns, spec.w, spec.pre, spec.post, spec.scale, reg, block)
    if work.size <= _SERIAL_MAX_ELEMENTS or work.shape[0] == 1:
        kernels.transform_serial(*args)
        return
    threads = kernels.numba_threads()
    if threads == 1:
        kernels.transform_serial(*args)
    else:
        chunk = _rows_per_task(work.shape[0], threads)
        kernels.transform_parallel(*args, chunk)


def _register_product_fits(m: int, p: int, itemsize: int) -> bool:
    """Whether rows of ``m * p`` values go through the register product
    (``_fwht_kernels._register_product_rows``: ``H_m`` as straight-line code or as the
    circulant loop) rather than the table in memory.

    Sub-rows of at least a quarter vector (8 bytes; sub-rows shorter than a vector take
    narrower vectors), and then:

    * ``m`` above ``REGISTER_PRODUCT_MAX_M``: only where ``H_m`` has a circulant form (there
      is no straight-line code that large), at any row shape;
    * rows that fit in L1;
    * a large ``m`` (whose many additions per value loaded hide the reloads from L2) on
      sub-rows short enough that the ``m`` of them do not crowd the same L1 sets, or on
      sub-rows of any length where ``H_m``'s circulant form has 4 or more blocks (the loop
      reads each input once, into a table on the stack; float32 148x1024 1.51x, 124x1024
      1.38x, float64 148x512 1.66-1.72x against the table; Williamson's 172x1024 1.36-1.62x;
      Paley I's 2 blocks ran 0.62x at float32 108x1024 and 0.76x at float64 140x512).
    """
    kernels = _kernels()
    if not (1 < m and 4 * p * itemsize >= kernels.VECTOR_BYTES):
        return False
    blocks = kernels.circulant_form_blocks(m)
    if m > kernels.REGISTER_PRODUCT_MAX_M:
        return blocks > 0
    if _rows_in_l1(m, p, itemsize):
        return True
    if m < kernels.REGISTER_PRODUCT_LARGE_M:
        return False
    return p * itemsize <= kernels.REGISTER_PRODUCT_LARGE_M_SUB_ROW_BYTES or blocks >= 4


def _rows_in_l1(m: int, p: int, itemsize: int) -> bool:
    """Whether rows of ``m * p`` values fit in L1 (``REGISTER_PRODUCT_ROW_BYTES``), which
    decides between two forms of some ``H_m`` products (``_fwht_kernels.circulant_product``)."""
    return m * p * itemsize <= _kernels().REGISTER_PRODUCT_ROW_BYTES


@lru_cache(maxsize=None)
def _register_product_drivers(m: int, transposed: bool, rows_in_l1: bool):
    # one pair of dispatchers per matrix: each compiles (or loads from numba's cache) on first use
    return _kernels().register_product_drivers(m, transposed, rows_in_l1)


_INPLACE = None
"""``_fwht_kernels.sylvester_inplace`` once loaded (a global: the latency path looks it up per call)."""


def _inplace_kernel():
    global _INPLACE
    _INPLACE = _kernels().sylvester_inplace
    return _INPLACE


@lru_cache(maxsize=1)
def _kernels():
    # imported on first use: loading (or compiling) the kernels is not paid by `import hadamard`
    from . import _fwht_kernels

    return _fwht_kernels


def _run_dense_only(work: np.ndarray, spec: _Spec) -> None:
    # p == 1: the whole transform is one dense product, which BLAS does best
    if spec.pre.size:
        work *= spec.pre
    result = work @ spec.hm.T
    result *= spec.scale
    if spec.post.size:
        result *= spec.post
    work[...] = result
