"""Round-to-nearest uniform quantization: the grid, its scales and zero points.

Level convention (``bits = b``):

* symmetric, ``b >= 2``: integer codes ``-(2**(b-1) - 1) .. 2**(b-1) - 1``,
  i.e. ``2**b - 1`` levels with zero exactly representable (3 bits: codes
  -3..3, 7 levels); ``scale = clip * max|x| / (2**(b-1) - 1)``.
* symmetric, ``b == 1``: codes ``{-1, +1}`` (``sign(x)``, with ``sign(0) = +1``)
  and ``scale = clip * mean|x|``, the least-squares scale of a sign code.
* asymmetric: codes ``0 .. 2**b - 1`` (``2**b`` levels) with an integer zero
  point; the range ``[clip * min(x, 0), clip * max(x, 0)]`` always holds zero,
  ``scale = range / (2**b - 1)``, ``zero = round(-min / scale)``.

A group whose scale is zero (all elements zero) gets scale 1 so that it
dequantizes to exact zeros.
"""

from __future__ import annotations

import dataclasses

import torch

from ._checks import cast_saturating, check_finite, check_float_tensor, compute_dtype
from ._config import QuantConfig


def code_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """Smallest and largest integer code of a ``bits``-bit grid.

    Parameters
    ----------
    bits : int
        Bit width, 1 to 8.
    symmetric : bool
        Symmetric grid (signed codes) or asymmetric (unsigned codes).

    Returns
    -------
    (int, int)
        ``(qmin, qmax)``.  Symmetric 1-bit codes are only -1 and +1.

    Examples
    --------
    >>> code_range(3, True)
    (-3, 3)
    >>> code_range(3, False)
    (0, 7)
    >>> code_range(1, True)
    (-1, 1)
    """
    QuantConfig(bits=bits, symmetric=symmetric)  # validates
    if not symmetric:
        return 0, 2**bits - 1
    if bits == 1:
        return -1, 1
    return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1


def num_levels(bits: int, symmetric: bool) -> int:
    """Number of distinct dequantized values a group can take.

    Examples
    --------
    >>> num_levels(3, True), num_levels(3, False), num_levels(1, True)
    (7, 8, 2)
    """
    qmin, qmax = code_range(bits, symmetric)
    return 2 if (symmetric and bits == 1) else qmax - qmin + 1


@dataclasses.dataclass(frozen=True)
class QuantParams:
    """Scales (and zero points) of a quantized tensor, one per group.

    Attributes
    ----------
    scale : torch.Tensor
        float32 (float64 for float64 inputs), shape ``(1,)`` for
        ``granularity="tensor"``, else ``x.shape[:-1] + (n_groups,)`` where
        ``n_groups`` is 1 for "channel"/"token" and ``d // group_size`` for
        "group".
    zero : torch.Tensor or None
        Integer-valued zero points (same shape and dtype as ``scale``) for
        an asymmetric grid; ``None`` for a symmetric one.
    clip_ratio : torch.Tensor or None
        The clip ratio chosen per group by a search, when one was run.
    """

    scale: torch.Tensor
    zero: torch.Tensor | None = None
    clip_ratio: torch.Tensor | None = None


def grouped_view(x: torch.Tensor, cfg: QuantConfig) -> torch.Tensor:
    """View ``x`` as ``(n_groups, group_len)``: every row shares one scale."""
    if cfg.granularity == "tensor":
        return x.reshape(1, -1)
    if x.dim() == 0:
        raise ValueError(
            f"granularity={cfg.granularity!r} needs a tensor with at least one "
            "dimension; got a 0-d tensor (use granularity='tensor')"
        )
    d = x.shape[-1]
    if cfg.granularity == "group":
        if d % cfg.group_size:
            raise ValueError(
                f"group_size={cfg.group_size} does not divide the last dimension "
                f"{d}; use a divisor of {d}"
            )
        return x.reshape(-1, cfg.group_size)
    return x.reshape(-1, d)


def params_shape(x: torch.Tensor, cfg: QuantConfig) -> tuple[int, ...]:
    """Public shape of the scales of ``x`` under ``cfg``."""
    if cfg.granularity == "tensor":
        return (1,)
    n_groups = x.shape[-1] // cfg.group_size if cfg.granularity == "group" else 1
    return tuple(x.shape[:-1]) + (n_groups,)


def grid_params(xg: torch.Tensor, bits: int, symmetric: bool, clip=1.0):
    """Scale ``(G, 1)`` and zero point ``(G, 1)`` or None for the rows of ``xg``.

    ``clip`` is a float or a tensor broadcastable to ``(G, 1)``.
    Raises ValueError when a row holds NaN or inf (the statistics propagate them,
    so no separate pass over ``xg`` is needed).
    """
    return params_from_stats(*grid_stats(xg, bits, symmetric), bits, symmetric, clip)


def grid_stats(xg: torch.Tensor, bits: int, symmetric: bool):
    """Per-row range statistics ``(low, high)`` that the scale is made of.

    Symmetric: ``low`` is None and ``high`` is ``max|x|`` (``mean|x|`` at 1 bit);
    asymmetric: ``min(x, 0)`` and ``max(x, 0)``.  Raises ValueError on NaN/inf.
    """
    if symmetric:
        if bits == 1:
            high = xg.abs().mean(dim=1, keepdim=True)
        else:
            high = xg.abs().amax(dim=1, keepdim=True)
        _check_stats_finite(high)
        return None, high
    high = xg.amax(dim=1, keepdim=True).clamp_min(0)
    low = xg.amin(dim=1, keepdim=True).clamp_max(0)
    _check_stats_finite(high - low)
    return low, high


def params_from_stats(low, high, bits: int, symmetric: bool, clip=1.0):
    """Scale and zero point from :func:`grid_stats` shrunk by ``clip``."""
    qmin, qmax = code_range(bits, symmetric)
    if symmetric:
        scale = high * clip if bits == 1 else high * clip / qmax
        return _nonzero(scale), None
    scale = _nonzero((high - low) * clip / qmax)
    zero = torch.round(-(low * clip) / scale)
    return scale, zero


def _nonzero(scale: torch.Tensor) -> torch.Tensor:
    # An all-zero group has no range; scale 1 makes it dequantize to exact zeros.
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _check_stats_finite(stat: torch.Tensor) -> None:
    if not bool(torch.isfinite(stat).all()):
        raise ValueError(
            "input contains NaN or inf (or a range too large for its dtype); "
            "quantization needs finite values"
        )


def grid_codes(xg, scale, zero, bits: int, symmetric: bool) -> torch.Tensor:
    """Integer codes (as floats) of ``xg`` on the grid given by scale/zero."""
    qmin, qmax = code_range(bits, symmetric)
    if symmetric and bits == 1:
        return torch.where(xg >= 0, 1.0, -1.0).to(xg.dtype)
    q = torch.round(xg / scale)
    if zero is not None:
        q = q + zero
    return q.clamp_(qmin, qmax)


def grid_dequantize(codes, scale, zero) -> torch.Tensor:
    """Real values of float-valued codes."""
    return (codes - zero) * scale if zero is not None else codes * scale


def resolve_params(x, cfg: QuantConfig, params: QuantParams | None, xg):
    """Grouped ``(G, 1)`` scale/zero from explicit params or from ``x`` itself."""
    if params is None:
        return grid_params(xg, cfg.bits, cfg.symmetric, cfg.clip_ratio)
    if not isinstance(params, QuantParams):
        raise TypeError(f"params must be a quant.QuantParams, got {type(params).__name__}")
    # with explicit scales no statistic of x is taken, so nothing else would see a NaN
    check_finite(x)
    expected = params_shape(x, cfg)
    if tuple(params.scale.shape) != expected:
        raise ValueError(
            f"params.scale has shape {tuple(params.scale.shape)}, expected {expected} "
            f"for a tensor of shape {tuple(x.shape)} with {cfg}"
        )
    if (params.zero is None) != cfg.symmetric:
        raise ValueError(
            "params.zero must be None for a symmetric config and a tensor for an "
            "asymmetric one"
        )
    scale = params.scale.reshape(-1, 1).to(xg.dtype)
    if not bool(((scale > 0) & torch.isfinite(scale)).all()):
        raise ValueError("params.scale must be positive and finite in every group")
    zero = None
    if params.zero is not None:
        zero = params.zero.reshape(-1, 1).to(xg.dtype)
        qmin, qmax = code_range(cfg.bits, cfg.symmetric)
        if not bool(((zero == torch.round(zero)) & (zero >= qmin) & (zero <= qmax)).all()):
            raise ValueError(f"params.zero must hold integers in [{qmin}, {qmax}] for a {cfg.bits}-bit asymmetric grid")
    return scale, zero


def compute_qparams(x: torch.Tensor, cfg: QuantConfig) -> QuantParams:
    """Round-to-nearest scales (and zero points) of ``x`` under ``cfg``.

    Parameters
    ----------
    x : torch.Tensor
        Floating tensor, finite.
    cfg : QuantConfig
        The quantizer.

    Returns
    -------
    QuantParams

    Raises
    ------
    ValueError
        On NaN/inf, an empty tensor or a group size that does not divide the
        last dimension.

    Examples
    --------
    >>> import torch
    >>> compute_qparams(torch.tensor([[3.0, -1.5]]), QuantConfig(bits=3)).scale
    tensor([[1.]])
    """
    _check_config(cfg)
    check_float_tensor(x)
    xg = grouped_view(x.to(compute_dtype(x)), cfg)
    scale, zero = grid_params(xg, cfg.bits, cfg.symmetric, cfg.clip_ratio)
    shape = params_shape(x, cfg)
    return QuantParams(scale.reshape(shape), None if zero is None else zero.reshape(shape))


def fake_quantize(x: torch.Tensor, cfg: QuantConfig, *, params: QuantParams | None = None):
    """Quantize then dequantize ``x`` (round-to-nearest), keeping shape and dtype.

    Parameters
    ----------
    x : torch.Tensor
        Floating tensor (any device), finite.
    cfg : QuantConfig
        The quantizer.
    params : QuantParams, optional
        Precomputed scales (e.g. from :func:`quant.mse_clip_search`); computed
        from ``x`` when omitted.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``; values on the grid.

    Raises
    ------
    TypeError
        If ``x`` is not a floating tensor or ``cfg`` not a QuantConfig.
    ValueError
        On NaN/inf, an empty tensor or a group size that does not divide the
        last dimension.

    Examples
    --------
    >>> import torch
    >>> fake_quantize(torch.tensor([[0.9, -3.0, 0.2, 1.6]]), QuantConfig(bits=3))
    tensor([[ 1., -3.,  0.,  2.]])
    """
    _check_config(cfg)
    check_float_tensor(x)
    xg = grouped_view(x.to(compute_dtype(x)), cfg)
    scale, zero = resolve_params(x, cfg, params, xg)
    codes = grid_codes(xg, scale, zero, cfg.bits, cfg.symmetric)
    return cast_saturating(grid_dequantize(codes, scale, zero).reshape(x.shape), x.dtype)


def _check_config(cfg) -> None:
    if not isinstance(cfg, QuantConfig):
        raise TypeError(f"cfg must be a quant.QuantConfig, got {type(cfg).__name__}")
