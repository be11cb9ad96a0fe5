"""The public functions of :mod:`hadamard` that build and describe matrices."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import _cache
from ._errors import NoHadamardError, UnknownOrderError, VerificationError
from ._numbers import check_order, is_power_of_two
from ._planner import plan
from ._recipe import Recipe
from ._verify import verify

_lock = threading.Lock()
_built: dict[int, np.ndarray] = {}


def exists(n: int) -> bool | None:
    """Whether a Hadamard matrix of order ``n`` exists, as far as we can tell.

    Parameters
    ----------
    n : int
        A positive integer.

    Returns
    -------
    True
        We can build one (``hadamard.get(n)`` works).
    False
        None can exist: ``n > 2`` and ``n % 4 != 0``.
    None
        Unknown to us: ``n`` is a multiple of 4 (so one exists if the Hadamard
        conjecture holds) but no construction here reaches it (above 10^12, the
        Kronecker and Agayan searches try smaller factors only up to 10^6).

    Examples
    --------
    >>> import hadamard
    >>> hadamard.exists(12), hadamard.exists(6), hadamard.exists(668)
    (True, False, None)
    """
    n = check_order(n)
    if n > 2 and n % 4:
        return False
    return True if plan(n) is not None else None


def recipe(n: int) -> Recipe:
    """The recipe :func:`get` uses for order ``n``.

    ``str(recipe(n))`` is a one-line description such as
    ``kron(paley1(q=11), sylvester(2))``; ``recipe(n).explain()`` draws the
    tree with orders and references.

    Raises
    ------
    NoHadamardError, UnknownOrderError
        As :func:`get`.

    Examples
    --------
    >>> import hadamard
    >>> print(hadamard.recipe(576))
    kron(paley2(q=17), sylvester(16))
    >>> print(hadamard.recipe(28))
    paley1(q=27)
    """
    n = check_order(n)
    r = plan(n)
    if r is None:
        raise _order_error(n)
    return r


def factors(n: int) -> tuple[int, int]:
    """Factored form ``H_n = H_m (x) H_p`` with ``p`` a power of two and ``m`` smallest.

    ``get(n)`` equals ``np.kron(get(m), get(p))`` exactly, so a transform by
    ``H_n`` is a transform by ``H_p`` (butterflies) on one axis and by the
    small dense ``H_m`` on the other. Nothing of size ``n x n`` is built.

    Parameters
    ----------
    n : int
        A buildable order.

    Returns
    -------
    (m, p) : tuple of int
        ``m * p == n``; ``m == 1`` when ``n`` is a power of two.

    Raises
    ------
    NoHadamardError, UnknownOrderError
        As :func:`get`.

    Examples
    --------
    >>> import hadamard
    >>> hadamard.factors(29568)   # Qwen2-72B intermediate size
    (924, 32)
    >>> hadamard.factors(4096)
    (1, 4096)
    """
    r = recipe(n)
    if is_power_of_two(r.order):
        return 1, r.order
    if r.name == "kron" and r.children[-1].name == "sylvester":
        m, p = r.children[0].order, r.children[-1].order
        return m, p
    return r.order, 1


def get(n: int, *, normalized: bool = False, dtype=None, cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """A Hadamard matrix of order ``n``.

    The matrix is built by the recipe :func:`recipe` chooses, verified exactly
    (:func:`verify`) the first time, then cached in memory -- and on disk when
    ``cache_dir`` or the environment variable ``HADAMARD_CACHE_DIR`` is set.
    The same ``n`` always gives the same matrix.

    Parameters
    ----------
    n : int
        The order: 1, 2 or a multiple of 4 that we can build (see :func:`orders`).
    normalized : bool, optional
        False (default): the +-1 matrix ``H`` with ``H H^T = n I``.
        True: the orthogonal matrix ``H / sqrt(n)``.
    dtype : numpy dtype, optional
        Default int8 for +-1 and float64 for normalized. Normalized matrices need
        a float dtype.
    cache_dir : path, optional
        Directory of the on-disk cache.

    Returns
    -------
    numpy.ndarray
        ``(n, n)``. The default int8 result is the cached array itself and is
        read-only (copy it to modify); other dtypes are fresh arrays.

    Raises
    ------
    TypeError
        ``n`` is not an integer.
    ValueError
        ``n <= 0``, or ``normalized=True`` with a non-float dtype.
    NoHadamardError
        ``n > 2`` and ``n % 4 != 0``: no Hadamard matrix of order ``n`` exists.
    UnknownOrderError
        No construction here reaches ``n``; the message names the nearest orders
        we can build and the ways forward (padding, block-diagonal).

    Examples
    --------
    >>> import hadamard
    >>> hadamard.get(4)
    array([[ 1,  1,  1,  1],
           [ 1, -1,  1, -1],
           [ 1,  1, -1, -1],
           [ 1, -1, -1,  1]], dtype=int8)
    >>> H = hadamard.get(12, normalized=True)
    >>> bool(abs(H @ H.T - __import__("numpy").eye(12)).max() < 1e-12)
    True

    References
    ----------
    .. [1] K. J. Horadam, *Hadamard Matrices and Their Applications*, Princeton
       University Press (2007).
    """
    n = check_order(n)
    if dtype is not None and np.dtype(dtype).kind not in "if":
        raise TypeError(f"dtype must hold -1: a signed integer or float dtype, got {np.dtype(dtype)}")
    H = _built.get(n)
    if H is None:
        H = _build(n, _cache.resolve_dir(cache_dir))
    elif cache_dir is not None and not _cache.has(directory := Path(cache_dir), n):
        _cache.store(directory, n, str(recipe(n)), H)  # built before, asked to be on disk now
    if normalized:
        dtype = np.dtype(np.float64 if dtype is None else dtype)
        if not np.issubdtype(dtype, np.floating):
            raise ValueError(f"normalized=True needs a float dtype, got {dtype}")
        return H.astype(dtype) * dtype.type(1 / np.sqrt(n))
    if dtype is None or np.dtype(dtype) == np.int8:
        return H
    return H.astype(dtype)


def _build(n: int, cache_dir) -> np.ndarray:
    r = recipe(n)
    with _lock:
        if n in _built:
            return _built[n]
        H = _cache.load(cache_dir, n, str(r)) if cache_dir is not None else None
        if H is None:
            H = np.ascontiguousarray(r.build(), dtype=np.int8)
            report = verify(H)
            if not report:  # a bug in a construction, never a user error
                raise VerificationError(f"recipe {r} for order {n} failed verification: {report.problem}")
            if cache_dir is not None:
                _cache.store(cache_dir, n, str(r), H)
        H.flags.writeable = False
        _built[n] = H
        return H


def orders(limit: int) -> list[int]:
    """Every order ``<= limit`` that :func:`get` can build, ascending.

    Examples
    --------
    >>> import hadamard
    >>> hadamard.orders(40)
    [1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    """
    limit = check_order(limit)
    return list(_orders_upto(limit))


@lru_cache(maxsize=8)
def _orders_upto(limit: int) -> tuple[int, ...]:
    return tuple(n for n in [1, 2, *range(4, limit + 1, 4)] if n <= limit and plan(n) is not None)


def nearest_orders(n: int) -> tuple[int | None, int]:
    """The nearest buildable orders ``below <= n <= above`` (``below`` None if none).

    Examples
    --------
    >>> import hadamard
    >>> hadamard.nearest_orders(896)
    (896, 896)
    >>> hadamard.nearest_orders(6)
    (4, 8)
    """
    n = check_order(n)
    below = next((m for m in range(n, 0, -1) if (m <= 2 or m % 4 == 0) and plan(m) is not None), None)
    above = next(m for m in range(n, 2 * n + 3) if (m <= 2 or m % 4 == 0) and plan(m) is not None)
    return below, above


def _order_error(n: int) -> Exception:
    below, above = nearest_orders(n)
    forward = (
        f"nearest orders we can build: {below} below, {above} above. Ways forward: pad the dimension "
        f"to {above} with zeros (dimension expansion) or use a block-diagonal Hadamard "
        f"(hadamard.block_diagonal)"
    )
    if n > 2 and n % 4:
        return NoHadamardError(f"no Hadamard matrix of order {n} exists (orders above 2 are multiples of 4); {forward}")
    return UnknownOrderError(
        f"order {n} is a multiple of 4 but no construction in this library reaches it "
        f"(exists({n}) is None); {forward}"
    )
