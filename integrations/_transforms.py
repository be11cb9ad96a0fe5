"""The orthogonal matrices the rotations use, and the online rotation module.

Convention: a rotation of a dimension ``n`` is a map ``x -> pad(x) @ M`` on
row vectors, where ``pad`` appends zeros up to the rotation's order ``N >= n``
(dimension expansion, ``N == n`` otherwise) and ``M`` is an ``N x N``
orthogonal matrix.  For a Hadamard rotation ``M = diag(s) @ H_N^T / sqrt(N)``
with ``s`` all ones (plain) or random signs (randomized), i.e. exactly
``hadamard.fwht(x, signs=s)``.  Offline fusions and the online modules use the
same ``M``, so they cancel exactly (in exact arithmetic).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import hadamard


def rotation_matrix(order: int, *, kind: str, signs: np.ndarray | None) -> torch.Tensor:
    """The ``order x order`` orthogonal matrix ``M`` (float64) of a rotation.

    Parameters
    ----------
    order : int
        ``N``, a buildable Hadamard order for ``kind="hadamard"``; any size
        for ``kind="block_diagonal"``.
    kind : {"hadamard", "block_diagonal"}
        A full normalized Hadamard matrix, or normalized Hadamard blocks on
        the diagonal (``hadamard.block_diagonal``).
    signs : numpy.ndarray or None
        +-1 vector of length ``order`` multiplied in first (randomized
        rotation), or None.

    Returns
    -------
    torch.Tensor
        float64 ``(order, order)``.
    """
    if kind == "hadamard":
        M = torch.from_numpy(np.ascontiguousarray(hadamard.get(order, normalized=True).T))
    elif kind == "block_diagonal":
        M = torch.from_numpy(hadamard.block_diagonal(order))  # symmetric blocks not assumed: use as is
    else:
        raise ValueError(f"unknown rotation kind {kind!r}; expected 'hadamard' or 'block_diagonal'")
    if signs is not None:
        M = torch.from_numpy(np.asarray(signs, dtype=np.float64))[:, None] * M
    return M


def random_signs(n: int, seed) -> np.ndarray:
    """A reproducible +-1 vector of length ``n`` (float64); ``seed`` an int or tuple of ints."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1.0, 1.0]), size=n)


class OnlineRotation(nn.Module):
    """Rotate the last dimension at run time: ``x -> pad(x, N) @ M``.

    Used for R3 (query/key heads after RoPE) and R4 (the input of
    ``down_proj``), whose inputs are not produced by a linear layer the
    rotation could be fused into.

    Parameters
    ----------
    in_features : int
        Size ``n`` of the last dimension of the input.
    matrix : torch.Tensor
        ``(N, N)`` orthogonal matrix ``M`` with ``N >= n`` (see module doc).
    hadamard_signs : numpy.ndarray, bool or None
        When ``M`` is a (randomized) Hadamard rotation, ``diag(s) H_N^T /
        sqrt(N)``: its sign vector ``s``, or True for the plain rotation.
        The forward pass then runs the fast transform (``hadamard.fwht``,
        ``O(N log N)`` per row) instead of the dense ``x @ M``; the result
        is the same map.  None: dense product (block-diagonal rotations).
    """

    def __init__(self, in_features: int, matrix: torch.Tensor, *, hadamard_signs=None):
        super().__init__()
        order = matrix.shape[0]
        if matrix.shape != (order, order) or order < in_features:
            raise ValueError(f"need a square matrix of order >= {in_features}, got {tuple(matrix.shape)}")
        self.in_features = in_features
        self.out_features = order
        self.register_buffer("matrix", matrix.to(torch.float32).contiguous())
        self.fast = hadamard_signs is not None
        signs = None
        if self.fast and hadamard_signs is not True:
            signs = torch.as_tensor(np.asarray(hadamard_signs, dtype=np.float32))
            if signs.shape != (order,):
                raise ValueError(f"hadamard_signs must have length {order}, got shape {tuple(signs.shape)}")
        # Not persistent: derived from the rotation's seed, like the Hadamard matrix itself.
        self.register_buffer("signs", signs, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected last dimension {self.in_features}, got {x.shape[-1]}")
        if self.out_features > self.in_features:
            x = nn.functional.pad(x, (0, self.out_features - self.in_features))
        if self.fast:
            from hadamard._torch import hadamard_transform

            return hadamard_transform(x, signs=self.signs)
        M = self.matrix
        if M.device != x.device or M.dtype != x.dtype:
            M = M.to(device=x.device, dtype=x.dtype)
        return x @ M

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, order={self.out_features}, fast={self.fast}"
