"""Just enough GF(q) arithmetic for the Paley constructions.

Elements of GF(p^k) are coded as integers ``0 .. q-1`` whose base-``p``
digits are the coefficients of a polynomial over GF(p) (digit ``i`` is the
coefficient of ``x**i``), reduced modulo a primitive polynomial ``f`` of degree
``k``. With ``f`` primitive, ``x`` generates the multiplicative group, so the
nonzero squares are exactly the even powers of ``x``.

Why not galois: it would serve (and the test suite uses it as the oracle that
these tables are right), but importing it and JIT-building a field class costs
over a second, while the Paley constructions only need two tables -- the
quadratic character and the subtraction of all pairs -- which numpy builds in
milliseconds. See docs/dependencies.md.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product

import numpy as np

from ._numbers import prime_power


def _digits(q: int, p: int, k: int) -> np.ndarray:
    """Base-``p`` digits of ``0 .. q-1``, shape ``(q, k)``, least significant first."""
    e = np.arange(q)
    return np.stack([(e // p**i) % p for i in range(k)], axis=1)


def _times_x_table(p: int, k: int, poly: tuple[int, ...]) -> np.ndarray:
    """Table of ``e -> e * x mod f`` for every element code ``e``.

    ``poly`` holds the low coefficients ``f_0 .. f_{k-1}`` of the monic ``f``.
    """
    q = p**k
    d = _digits(q, p, k)
    top = d[:, k - 1]
    shifted = np.concatenate([np.zeros((q, 1), dtype=d.dtype), d[:, : k - 1]], axis=1)
    # x^k == -(f_0 + f_1 x + ... + f_{k-1} x^{k-1})  (mod f)
    reduced = (shifted - top[:, None] * np.asarray(poly)[None, :]) % p
    return reduced @ (p ** np.arange(k))


@lru_cache(maxsize=None)
def primitive_polynomial(p: int, k: int) -> tuple[int, ...]:
    """The first primitive monic polynomial of degree ``k`` over GF(p), in
    lexicographic order of ``(f_{k-1}, ..., f_0)``; returned as ``(f_0, ..., f_{k-1})``.

    A polynomial is primitive iff ``x`` has multiplicative order ``p**k - 1``
    modulo it, which we check by walking the powers of ``x``.
    """
    q = p**k
    for high_first in product(range(p), repeat=k):
        poly = tuple(reversed(high_first))
        if poly[0] == 0:  # x divides f: not irreducible
            continue
        times_x = _times_x_table(p, k, poly).tolist()
        e, period = times_x[1], 1
        while e != 1 and e != 0 and period < q:
            e = times_x[e]
            period += 1
        if e == 1 and period == q - 1:
            return poly
    raise ArithmeticError(f"no primitive polynomial of degree {k} over GF({p})")  # cannot happen


def powers_of_x(q: int) -> list[int]:
    """The codes of ``x**0 .. x**(q-2)``: every nonzero element of GF(q), in the order of
    the powers of the generator ``x`` (used to reindex Paley's matrices as circulants)."""
    p, k = prime_power(q)
    times_x = _times_x_table(p, k, primitive_polynomial(p, k)).tolist()
    powers = [1]
    for _ in range(q - 2):
        powers.append(times_x[powers[-1]])
    return powers


@lru_cache(maxsize=64)
def quadratic_character(q: int) -> np.ndarray:
    """``chi[e]`` for every element code ``e`` of GF(q): 0, +1 (nonzero square) or -1.

    Parameters
    ----------
    q : int
        A prime power.
    """
    pk = prime_power(q)
    if pk is None:
        raise ValueError(f"GF(q) needs a prime power q, got {q}")
    p, k = pk
    chi = np.full(q, -1, dtype=np.int8)
    chi[0] = 0
    if k == 1:
        chi[(np.arange(1, p, dtype=np.int64) ** 2) % p] = 1
    else:
        times_x = _times_x_table(p, k, primitive_polynomial(p, k)).tolist()
        e = 1
        for i in range(q - 1):  # e == x**i
            if i % 2 == 0:
                chi[e] = 1
            e = times_x[e]
    chi.flags.writeable = False
    return chi


def difference_table(q: int) -> np.ndarray:
    """``D[a, b]`` = code of ``a - b`` in GF(q), for all element codes ``a, b``."""
    pk = prime_power(q)
    if pk is None:
        raise ValueError(f"GF(q) needs a prime power q, got {q}")
    p, k = pk
    if k == 1:
        e = np.arange(q, dtype=np.int64)
        return (e[:, None] - e[None, :]) % q
    d = _digits(q, p, k).astype(np.int16)
    diff = (d[:, None, :] - d[None, :, :]) % p
    return diff.astype(np.int64) @ (p ** np.arange(k))


def jacobsthal(q: int) -> np.ndarray:
    """The Jacobsthal matrix ``Q[a, b] = chi(a - b)`` of GF(q), as int8.

    It satisfies ``Q Q^T = q I - J`` and ``Q J = J Q = 0``; ``Q`` is symmetric
    when ``q = 1 (mod 4)`` and antisymmetric when ``q = 3 (mod 4)``.

    References
    ----------
    .. [1] R. E. A. C. Paley, "On orthogonal matrices", J. Math. Phys. 12 (1933) 311-320.
    """
    return quadratic_character(q)[difference_table(q)]
