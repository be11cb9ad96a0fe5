"""Validated settings of the W(1+1)A(1x4) quantizers (weights, activations, smoothing)."""

from __future__ import annotations

import dataclasses
import math

EM_WEIGHTINGS = ("hessian", "uniform")


def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {bound}, got {value}")


def _check_float(name, value, low, high, *, low_open=True):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {value!r}")
    below = value <= low if low_open else value < low
    if not math.isfinite(value) or below or value > high:
        interval = ("(" if low_open else "[") + f"{low}, {high}]"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class BinaryWeightConfig:
    """How to quantize a weight to 1 sign bit + 1 group bit per weight.

    Every row is cut into groups of ``group_size`` consecutive input columns
    (the last group may be shorter).  A group holds two positive scales
    ``s0 <= s1`` (stored as float16); a weight is ``sign(w) * s_b`` where its
    group bit ``b`` picks the scale.

    Parameters
    ----------
    group_size : int
        Input columns per group, >= 2 (default 128, as in the paper).  The
        bit-packed GEMM needs a multiple of 64.
    em_iters : int
        Maximum EM iterations of the weighted 2-means on ``|w|`` (>= 1);
        EM stops earlier when no assignment changes.
    em_weighting : {"hessian", "uniform"}
        Weight of every column in the M-step: the Hessian diagonal
        ``H_jj = 2 mean(x_j^2)`` (the error a column causes in the layer
        output) or 1 for all.
    error_compensation : bool
        GPTQ-style: after a column is quantized, its error, scaled by the
        inverse-Hessian Cholesky factor, is subtracted from the later columns.
    reassign : bool
        With error compensation, choose each weight's group bit when its
        column is quantized (nearest of the two scales to the compensated
        weight) instead of keeping the EM assignment made at the group start.
    damp : float
        Relative dampening added to the Hessian diagonal, in (0, 1].
    block_size : int
        Columns per lazy-update block of the compensation (>= 1).

    Raises
    ------
    TypeError, ValueError
        On a field of the wrong type or out of range.

    Examples
    --------
    >>> BinaryWeightConfig(group_size=64).group_size
    64
    >>> BinaryWeightConfig(em_weighting="median")
    Traceback (most recent call last):
    ...
    ValueError: em_weighting must be one of ('hessian', 'uniform'), got 'median'
    """

    group_size: int = 128
    em_iters: int = 30
    em_weighting: str = "hessian"
    error_compensation: bool = True
    reassign: bool = True
    damp: float = 0.01
    block_size: int = 128

    def __post_init__(self):
        _check_int("group_size", self.group_size, 2)
        _check_int("em_iters", self.em_iters, 1)
        _check_int("block_size", self.block_size, 1)
        if self.em_weighting not in EM_WEIGHTINGS:
            raise ValueError(
                f"em_weighting must be one of {EM_WEIGHTINGS}, got {self.em_weighting!r}"
            )
        for name in ("error_compensation", "reassign"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        _check_float("damp", self.damp, 0.0, 1.0)

    def replace(self, **changes) -> "BinaryWeightConfig":
        """Copy with some fields changed (validated again).

        Examples
        --------
        >>> BinaryWeightConfig().replace(reassign=False).reassign
        False
        """
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class ActivationConfig:
    """Per-token integer quantization of activations, decomposable into bit planes.

    Codes are stored unsigned, ``u in [0, 2**bits - 1]``, with a per-token
    offset ``z`` so that ``x ~ scale * (u - z)``; ``u = sum_k 2**k b_k``.

    Parameters
    ----------
    bits : int
        2 to 8 (default 4: four binary planes).
    symmetric : bool
        ``True``: signed codes ``-(2**(bits-1) - 1) .. 2**(bits-1) - 1``
        (zero exact, ``scale = clip * max|x| / (2**(bits-1) - 1)``) shifted by
        the fixed offset ``z = 2**(bits-1)``.  ``False``: the range
        ``[min(x, 0), max(x, 0)]`` on ``2**bits`` levels with an integer
        per-token zero point as the offset.
    clip_ratio : float
        In (0, 1]: the range is shrunk by this factor, values outside saturate.

    Examples
    --------
    >>> ActivationConfig().bits
    4
    >>> ActivationConfig(bits=1)
    Traceback (most recent call last):
    ...
    ValueError: bits must be an integer from 2 to 8, got 1
    """

    bits: int = 4
    symmetric: bool = True
    clip_ratio: float = 1.0

    def __post_init__(self):
        _check_int("bits", self.bits, 2, 8)
        if not isinstance(self.symmetric, bool):
            raise TypeError(f"symmetric must be a bool, got {self.symmetric!r}")
        _check_float("clip_ratio", self.clip_ratio, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class SmoothConfig:
    """Error-aware search of per-channel smoothing between activations and weights.

    A channel ``j`` gets ``s_j = max|X_j|**alpha / max|W_j|**(1 - alpha)``;
    the layer runs ``Q(X / s) Q(W * s)^T``.  Every ``alpha`` in ``alphas`` is
    tried and the one with the smallest error of the quantized layer output
    on calibration rows is kept. No smoothing at all (``s = 1``, reported under the
    key ``None``) is always tried as well, so smoothing never makes the measured
    error worse.

    Parameters
    ----------
    alphas : tuple of float
        Migration strengths in [0, 1], at least one.
    max_rows : int
        Calibration rows (tokens) kept to measure the error (>= 16).

    Examples
    --------
    >>> SmoothConfig(alphas=(0.25, 0.5)).alphas
    (0.25, 0.5)
    >>> SmoothConfig(alphas=())
    Traceback (most recent call last):
    ...
    ValueError: alphas must be a non-empty tuple of floats in [0, 1], got ()
    """

    alphas: tuple = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
    max_rows: int = 2048

    def __post_init__(self):
        alphas = self.alphas
        ok = isinstance(alphas, tuple) and len(alphas) > 0
        ok = ok and all(
            not isinstance(a, bool) and isinstance(a, (int, float)) and 0.0 <= a <= 1.0
            for a in alphas
        )
        if not ok:
            raise ValueError(
                f"alphas must be a non-empty tuple of floats in [0, 1], got {alphas!r}"
            )
        _check_int("max_rows", self.max_rows, 16)
