"""Small number-theoretic helpers: argument checks, powers of two, prime powers."""

from __future__ import annotations

import numbers
from functools import lru_cache


def check_order(n: object) -> int:
    """Return ``n`` as an ``int`` if it is a positive integer, else raise.

    ``bool`` and floats are refused even when integral, because ``get(True)``
    or ``get(12.0)`` is almost always a bug in the caller.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"order must be a positive integer, got {n!r} of type {type(n).__name__}")
    n = int(n)
    if n <= 0:
        raise ValueError(f"order must be a positive integer, got {n}")
    return n


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def two_adic_split(n: int) -> tuple[int, int]:
    """Split ``n = m * 2**k`` with ``m`` odd; return ``(m, k)``."""
    k = (n & -n).bit_length() - 1
    return n >> k, k


@lru_cache(maxsize=None)
def prime_power(q: int) -> tuple[int, int] | None:
    """Return ``(p, k)`` with ``q == p**k`` and ``p`` prime, or ``None``.

    Exact integer roots and a primality test, so an answer comes at once for any
    size (trial division took minutes at ``q ~ 10**24``), without importing sympy
    (half a second) for the orders we build.
    """
    if q < 2:
        return None
    for k in range(q.bit_length(), 0, -1):
        root = _integer_root(q, k)
        if root >= 2 and root**k == q and is_prime(root):
            return (root, k)
    return None


def _integer_root(q: int, k: int) -> int:
    """``floor(q ** (1/k))`` exactly, for integers of any size."""
    if k == 1:
        return q
    x = 1 << -(-q.bit_length() // k)  # above the root
    while True:  # Newton's iteration on integers decreases to the floor
        y = ((k - 1) * x + q // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


# Miller-Rabin with these bases is exact below 3.3 * 10**24 (Sorenson and Webster, 2015)
_MR_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
_MR_EXACT_BELOW = 3317044064679887385961981


def is_prime(n: int) -> bool:
    """Whether ``n`` is prime: deterministic Miller-Rabin below 3.3e24, sympy's BPSW test above."""
    if n < 2:
        return False
    for p in _MR_BASES:
        if n % p == 0:
            return n == p
    if n >= _MR_EXACT_BELOW:
        from sympy import isprime  # only for numbers no order we build comes near

        return bool(isprime(n))
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in _MR_BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True
