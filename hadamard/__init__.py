"""Hadamard matrices of every order we know how to build, and fast transforms by them.

>>> import hadamard
>>> H = hadamard.get(28)                 # Paley I over GF(27)
>>> print(hadamard.recipe(28))
paley1(q=27)
>>> bool(hadamard.verify(H))
True

The numpy API needs only numpy (and numba for :func:`fwht`); the torch
module :class:`HadamardTransform` imports torch when first used.
"""

from __future__ import annotations

from importlib import import_module

from ._api import exists, factors, get, nearest_orders, orders, recipe
from ._block_diagonal import block_diagonal, block_sizes
from ._errors import NoHadamardError, OrderError, UnknownOrderError, VerificationError
from ._recipe import Recipe
from ._verify import VerificationReport, verify

__version__ = "0.1.0"

# Names served from modules that are imported on first use, so that
# `import hadamard` costs no numba compilation and never imports torch.
_LAZY = {
    "fwht": "._fwht",
    "random_signs": "._fwht",
    "HadamardTransform": "._torch",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hadamard' has no attribute {name!r}")


__all__ = [
    "exists",
    "factors",
    "get",
    "nearest_orders",
    "orders",
    "recipe",
    "verify",
    "block_diagonal",
    "block_sizes",
    "Recipe",
    "VerificationReport",
    "OrderError",
    "NoHadamardError",
    "UnknownOrderError",
    "VerificationError",
    "fwht",
    "random_signs",
]
# HadamardTransform is served too, but left out of __all__: `from hadamard import *` must
# not import torch (or fail without it).
