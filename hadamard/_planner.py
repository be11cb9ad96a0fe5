"""Choose a recipe for each order.

The rule, which makes the factored form and the dense matrix agree:
``n = m * 2**j`` with the smallest buildable base ``m``; the recipe is
``kron(base(m), sylvester(2**j))``. The base is a direct construction when one
applies (families tried in ``CONSTRUCTIONS`` order), else a composition of
smaller buildable orders.
"""

from __future__ import annotations

from functools import lru_cache

from ._numbers import is_power_of_two, two_adic_split
from ._recipe import Recipe
from .constructions import CONSTRUCTIONS
from .constructions.miyamoto import applies as _miyamoto_applies


@lru_cache(maxsize=None)
def plan(n: int) -> Recipe | None:
    """The recipe for order ``n``, or ``None`` if we cannot build one."""
    if is_power_of_two(n):
        return Recipe.leaf("sylvester", n, {"n": n})
    if n % 4:
        return None
    _, k = two_adic_split(n)
    for j in range(k, -1, -1):  # base m = n / 2**j, smallest first
        m = n >> j
        if m % 4:
            continue
        base = _base(m)
        if base is not None:
            if j == 0:
                return base
            return Recipe.compose("kron", base, Recipe.leaf("sylvester", 1 << j, {"n": 1 << j}))
    return None


@lru_cache(maxsize=None)
def _base(m: int) -> Recipe | None:
    """A recipe for ``m`` that is not itself ``(something) x 2``."""
    for construction in CONSTRUCTIONS:
        params = construction.params_for(m)
        if params is not None:
            return Recipe.leaf(construction.name, m, dict(params))
    return _composite(m)


def _composite(m: int) -> Recipe | None:
    return _kronecker(m) or _miyamoto(m) or _agayan(m)


#: Largest smaller factor the Kronecker and Agayan searches try: the search is complete for
#: every order up to FACTOR_SEARCH_LIMIT**2 (10^12) and stays fast beyond (a bound of sqrt(m)
#: took hours at m ~ 10^21); larger orders reached only through bigger factors are unknown to us.
FACTOR_SEARCH_LIMIT = 10**6


def _kronecker(m: int) -> Recipe | None:
    # Kronecker product of two orders that are both multiples of 4 and not
    # powers of two (a power-of-two factor would give a smaller base).
    a = 12
    while a * a <= m and a <= FACTOR_SEARCH_LIMIT:
        if m % a == 0 and not is_power_of_two(a) and not is_power_of_two(m // a):
            left, right = plan(a), plan(m // a)
            if left is not None and right is not None:
                return Recipe.compose("kron", left, right)
        a += 4
    return None


def _miyamoto(m: int) -> Recipe | None:
    if not _miyamoto_applies(m):
        return None
    child = plan(m // 4 - 1)
    return None if child is None else Recipe.compose("miyamoto", child)


def _agayan(m: int) -> Recipe | None:
    # 8uv from 4u and 4v with u, v odd; orders 8uv with an even u or v are
    # reached by a smaller base, so only m = 8 (mod 16) is new.
    if m % 16 != 8:
        return None
    half = m // 8
    u = 3
    while u * u <= half and 4 * u <= FACTOR_SEARCH_LIMIT:
        if half % u == 0:
            left, right = plan(4 * u), plan(4 * (half // u))
            if left is not None and right is not None:
                return Recipe.compose("agayan", left, right)
        u += 2
    return None
