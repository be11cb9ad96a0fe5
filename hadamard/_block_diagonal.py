"""Orthogonal matrices from Hadamard blocks, for dimensions with no Hadamard order."""

from __future__ import annotations

import numpy as np

from ._numbers import check_order
from ._planner import plan


def block_sizes(n: int) -> list[int]:
    """Greedy split of ``n`` into buildable Hadamard orders, largest first.

    Examples
    --------
    >>> from hadamard import block_sizes
    >>> block_sizes(576), block_sizes(100), block_sizes(30)
    ([576], [100], [28, 2])
    """
    n = check_order(n)
    sizes, rest = [], n
    while rest:
        # Prefer one order that divides what is left, so equal blocks tile it.
        size = next(m for m in range(rest, 0, -1) if (m <= 2 or m % 4 == 0) and plan(m) is not None)
        sizes.append(size)
        rest -= size
    return sizes


def block_diagonal(n: int, *, dtype=np.float64) -> np.ndarray:
    """An orthogonal block-diagonal matrix of normalized Hadamard blocks summing to ``n``.

    An alternative to padding (dimension expansion) when ``n`` has no Hadamard
    matrix: it keeps the dimension but spreads an outlier only within its
    block, so its max-entry bound is ``||x||_2 / sqrt(smallest block)`` rather
    than ``/ sqrt(n)`` (see docs/theory.md).

    Parameters
    ----------
    n : int
        Any positive dimension.
    dtype : float dtype, optional

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` orthogonal matrix.

    Examples
    --------
    >>> import numpy as np, hadamard
    >>> Q = hadamard.block_diagonal(30)
    >>> bool(np.allclose(Q @ Q.T, np.eye(30)))
    True
    """
    from ._api import get

    n = check_order(n)
    Q = np.zeros((n, n), dtype=dtype)
    start = 0
    for size in block_sizes(n):
        Q[start : start + size, start : start + size] = get(size, normalized=True, dtype=dtype)
        start += size
    return Q
