"""MSE clipping search: per-group clip ratio minimizing the Lp quantization error."""

from __future__ import annotations

import numpy as np
import torch

from ._checks import check_float_tensor, compute_dtype
from ._config import QuantConfig
from ._kernels import ASYMMETRIC, SIGN, SYMMETRIC, kernel_threads, mse_search
from ._uniform import (
    QuantParams,
    _check_config,
    code_range,
    grid_codes,
    grid_dequantize,
    grid_stats,
    grouped_view,
    params_from_stats,
    params_shape,
)

# Rows per chunk: bounds the temporaries to a few MB whatever the tensor size.
_CHUNK_ELEMENTS = 1 << 20


def mse_clip_search(
    w: torch.Tensor,
    cfg: QuantConfig,
    *,
    grid: int = 100,
    max_shrink: float = 0.8,
    norm: float = 2.4,
) -> QuantParams:
    """Per-group clip ratio that minimizes ``sum |w - Q(w)|**norm`` (GPTQ-style).

    For every group (a row for ``granularity="channel"``) the ratios
    ``cfg.clip_ratio * (1 - i / grid)`` for ``i = 0 .. int(max_shrink * grid) - 1``
    are tried and the one with the smallest Lp error is kept (the largest
    ratio on ties).  Works on chunks of rows so no tensor of the size of
    ``w`` times the grid is ever built.

    Parameters
    ----------
    w : torch.Tensor
        Floating tensor (a weight of shape ``(out, in)`` typically), finite.
    cfg : QuantConfig
        The quantizer.
    grid : int
        Number of grid steps between ratio 1 and 0.
    max_shrink : float
        In (0, 1]: the largest fraction of the range that may be clipped.
    norm : float
        The exponent ``p > 0`` of the error (2.4 in GPTQ/QuaRot).

    Returns
    -------
    QuantParams
        ``scale``, ``zero`` and the chosen ``clip_ratio`` per group, ready for
        :func:`quant.quantize` / :func:`quant.fake_quantize` (``params=``).

    Raises
    ------
    ValueError
        On NaN/inf in ``w`` or out-of-range search settings.

    References
    ----------
    Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
    Pre-trained Transformers", ICLR 2023 (reference code, ``mse`` option);
    Ashkboos et al., "QuaRot", NeurIPS 2024 (weight clipping, p = 2.4).

    Examples
    --------
    >>> import torch
    >>> w = torch.randn(4, 1024, generator=torch.Generator().manual_seed(0))
    >>> p = mse_clip_search(w, QuantConfig(bits=3))
    >>> p.clip_ratio.shape, bool((p.clip_ratio < 1).all())
    (torch.Size([4, 1]), True)
    """
    _check_config(cfg)
    check_float_tensor(w, "w")
    _check_search_settings(grid, max_shrink, norm)
    xg = grouped_view(w.detach().to(compute_dtype(w)), cfg)
    low, high = grid_stats(xg, cfg.bits, cfg.symmetric)
    ratios = [cfg.clip_ratio * (1.0 - i / grid) for i in range(max(1, int(max_shrink * grid)))]
    # The best ratio of a row does not depend on its scale, but |e|**norm over- or
    # underflows float32 for rows far from 1: search on the rows divided by a power of
    # two near their range (exact, so the same choice wherever nothing overflowed).
    unit = _power_of_two_unit(high if low is None else high - low)
    xs, hs, ls = xg / unit, high / unit, None if low is None else low / unit
    if xg.device.type == "cpu" and xg.dtype == torch.float32:
        best = _best_ratio_numba(xs, ls, hs, cfg, ratios, norm)
    else:
        best = _best_ratio_torch(xs, ls, hs, cfg, ratios, norm)
    scale, zero = params_from_stats(low, high, cfg.bits, cfg.symmetric, best)
    shape = params_shape(w, cfg)
    return QuantParams(
        scale=scale.reshape(shape),
        zero=None if zero is None else zero.reshape(shape),
        clip_ratio=best.reshape(shape),
    )


def _power_of_two_unit(extent: torch.Tensor) -> torch.Tensor:
    """Per row, ``2**e`` with ``extent / 2**e`` in [0.5, 1); 1 for an all-zero row."""
    _, exponent = torch.frexp(extent)
    unit = torch.ldexp(torch.ones_like(extent), exponent)
    return torch.where(extent > 0, unit, torch.ones_like(extent))


def _best_ratio_torch(xg, low, high, cfg: QuantConfig, ratios, norm: float) -> torch.Tensor:
    """Best ratio per row, (G, 1); chunks of rows bound the temporaries."""
    best = torch.empty_like(high)
    step = max(1, _CHUNK_ELEMENTS // xg.shape[1])
    for a in range(0, xg.shape[0], step):
        rows = slice(a, a + step)
        best[rows] = _best_ratio_chunk(
            xg[rows], None if low is None else low[rows], high[rows], cfg, ratios, norm
        )
    return best


def _best_ratio_numba(xg, low, high, cfg: QuantConfig, ratios, norm: float) -> torch.Tensor:
    """CPU path of :func:`_best_ratio_torch` (same choice up to float rounding)."""
    qmin, qmax = code_range(cfg.bits, cfg.symmetric)
    kind = SIGN if cfg.symmetric and cfg.bits == 1 else SYMMETRIC if cfg.symmetric else ASYMMETRIC
    candidates = np.asarray(ratios, dtype=np.float32)
    high_np = high.reshape(-1).contiguous().numpy()
    low_np = high_np if low is None else low.reshape(-1).contiguous().numpy()
    with kernel_threads(xg.numel() * len(ratios) * 8):
        index = mse_search(
            xg.contiguous().numpy(), low_np, high_np, kind, np.float32(qmax),
            candidates, np.float32(norm),
        )
    return torch.from_numpy(candidates[index]).reshape(-1, 1)


def _best_ratio_chunk(xg, low, high, cfg: QuantConfig, ratios, norm: float) -> torch.Tensor:
    best_err = torch.full_like(high, float("inf"))
    best_ratio = torch.full_like(high, ratios[0])
    for ratio in ratios:
        scale, zero = params_from_stats(low, high, cfg.bits, cfg.symmetric, ratio)
        codes = grid_codes(xg, scale, zero, cfg.bits, cfg.symmetric)
        err = grid_dequantize(codes, scale, zero).sub_(xg).abs_()
        # |e|**p as exp(p log|e|): the same value, about twice as fast as pow on CPU.
        err = err.log_().mul_(norm).exp_().sum(dim=1, keepdim=True)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_ratio = torch.where(better, torch.full_like(best_ratio, ratio), best_ratio)
    return best_ratio


def _check_search_settings(grid, max_shrink, norm) -> None:
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid must be a positive integer, got {grid!r}")
    if not isinstance(max_shrink, (int, float)) or not 0.0 < max_shrink <= 1.0:
        raise ValueError(f"max_shrink must be in (0, 1], got {max_shrink!r}")
    if not isinstance(norm, (int, float)) or not 0.0 < norm < float("inf"):
        raise ValueError(f"norm must be a positive finite number, got {norm!r}")
