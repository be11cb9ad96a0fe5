"""Hessian-aware W(1+1) weight quantization: EM scales and GPTQ error compensation."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ._checks import check_hessian, check_matrix
from ._config import BinaryWeightConfig
from ._em import two_scale_em
from ._packed import BinaryWeight


@dataclasses.dataclass(frozen=True)
class BinaryWeightResult:
    """Outcome of :func:`binary_quantize`.

    Attributes
    ----------
    weight : torch.Tensor
        The dequantized weight (same shape and dtype as the input); equal to
        ``packed.dequantize()``.
    packed : BinaryWeight
        Sign bits, group bits and float16 scales.
    proxy_error : float
        ``tr((W - Q) H (W - Q)^T) / tr(W H W^T)``: the relative error of the
        layer output on the calibration inputs (``nan`` without a Hessian).
    """

    weight: torch.Tensor
    packed: BinaryWeight
    proxy_error: float


def binary_quantize(weight, hessian=None, cfg: BinaryWeightConfig | None = None):
    """Quantize ``weight`` to one sign bit and one group bit per entry.

    Each group of ``cfg.group_size`` input columns of a row holds two scales,
    fitted by :func:`two_scale_em` on ``|w|`` with the Hessian diagonal as
    column weights.  With ``cfg.error_compensation`` the columns are quantized
    left to right and each column's error is pushed onto the not yet quantized
    columns through the upper Cholesky factor of ``H^-1`` (as GPTQ does); the
    scales of a group are fitted when its first column is reached, so they see
    the compensated weights.

    Parameters
    ----------
    weight : torch.Tensor
        ``(out_features, in_features)`` floating, finite.
    hessian : torch.Tensor, optional
        ``(in_features, in_features)``, ``2/N X^T X`` of the layer inputs
        (e.g. ``quant.HessianAccumulator``).  Without it every column weighs
        the same and no compensation is done.
    cfg : BinaryWeightConfig, optional
        Defaults to ``BinaryWeightConfig()``.

    Returns
    -------
    BinaryWeightResult

    Raises
    ------
    TypeError, ValueError
        On a non-float, non-2-D, empty or non-finite weight or Hessian, or a
        Hessian of the wrong shape.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([[0.1, -0.2, 1.0, -1.1]])
    >>> r = binary_quantize(w, cfg=BinaryWeightConfig(group_size=4))
    >>> r.weight
    tensor([[ 0.1500, -0.1500,  1.0498, -1.0498]])
    >>> r.packed.bits_per_weight()  # one 64-bit word each for signs and group bits
    40.0

    References
    ----------
    Song et al., "Achieving binary weight and activation for LLMs using
    Post-Training Quantization", ACL Findings 2025 (arXiv 2504.05352).
    Frantar et al., "GPTQ", ICLR 2023 (arXiv 2210.17323).
    """
    cfg = BinaryWeightConfig() if cfg is None else cfg
    if not isinstance(cfg, BinaryWeightConfig):
        raise TypeError(f"cfg must be a BinaryWeightConfig, got {type(cfg).__name__}")
    check_matrix(weight, "weight")
    rows, cols = weight.shape
    w = weight.detach().to(torch.float32).clone()
    if hessian is None:
        h_diag = torch.ones(cols)
        positive, upper, scales = _quantize_groups(w, h_diag, cfg)
        proxy = float("nan")
    else:
        check_hessian(hessian, cols)
        h = hessian.detach().to(device=w.device, dtype=torch.float64).clone()
        dead = torch.diagonal(h) == 0
        h[dead, dead] = 1.0
        w[:, dead] = 0.0
        h_diag = torch.diagonal(h).to(torch.float32).clone()
        if cfg.error_compensation:
            positive, upper, scales = _quantize_compensated(w, h, h_diag, cfg)
        else:
            positive, upper, scales = _quantize_groups(w, h_diag, cfg)
    packed = BinaryWeight.from_codes(
        positive.cpu().numpy(), upper.cpu().numpy(), scales.cpu().numpy(), cfg.group_size
    )
    deq = packed.dequantize().to(weight.device)
    if hessian is not None:
        proxy = _proxy_error(weight.detach(), deq, hessian.detach())
    return BinaryWeightResult(deq.to(weight.dtype), packed, proxy)


def _em_weights(h_diag, cfg):
    if cfg.em_weighting == "uniform":
        return torch.ones_like(h_diag)
    return h_diag.clamp_min(1e-12 * float(h_diag.max()) + 1e-30)


def _fit_group(w_group, weights, cfg):
    """EM scales of one group, rounded to float16 as they will be stored."""
    scales, choice = two_scale_em(w_group.abs(), weights, cfg.em_iters)
    stored = scales.to(torch.float16)
    if not bool(torch.isfinite(stored).all()) or bool(((stored == 0) & (scales > 0)).any()):
        positive = scales[scales > 0]
        raise ValueError(
            f"weight magnitudes out of float16's range: group scales span {float(positive.min()):.3g} to "
            f"{float(positive.max()):.3g}, but the W(1+1) format stores them in float16, which holds "
            "6e-8 to 65504; rescale the weight"
        )
    return stored.to(torch.float32), choice


def _quantize_groups(w, h_diag, cfg):
    """No compensation: fit every group independently (round to the EM split)."""
    rows, cols = w.shape
    weights = _em_weights(h_diag, cfg)
    upper = torch.zeros(rows, cols, dtype=torch.bool)
    all_scales = []
    for g0 in range(0, cols, cfg.group_size):
        g1 = min(g0 + cfg.group_size, cols)
        scales, choice = _fit_group(w[:, g0:g1], weights[g0:g1], cfg)
        upper[:, g0:g1] = _nearest(w[:, g0:g1].abs(), scales)
        all_scales.append(scales)
    return w >= 0, upper, torch.stack(all_scales, dim=1)


def _nearest(magnitude, scales):
    # Tie goes to the smaller scale, like the EM E-step's strict comparison.
    return magnitude > scales.mean(dim=1, keepdim=True)


def _inverse_cholesky(h, damp):
    """Upper Cholesky factor of ``(H + damp * mean(diag H) I)^-1`` (float32)."""
    h = h.clone()
    cols = h.shape[0]
    h += damp * float(torch.diagonal(h).mean()) * torch.eye(cols, dtype=h.dtype)
    try:
        lower = torch.linalg.cholesky(h)
    except RuntimeError as exc:  # torch raises a linalg error subclass of RuntimeError
        raise ValueError(
            "the Hessian is not positive definite even after dampening; "
            "use more calibration samples or a larger damp"
        ) from exc
    inverse = torch.cholesky_inverse(lower)
    return torch.linalg.cholesky(inverse, upper=True).to(torch.float32)


def _quantize_compensated(w, h, h_diag, cfg):
    rows, cols = w.shape
    hinv = _inverse_cholesky(h, cfg.damp)
    weights = _em_weights(h_diag, cfg)
    positive = torch.zeros(rows, cols, dtype=torch.bool)
    upper = torch.zeros(rows, cols, dtype=torch.bool)
    n_groups = -(-cols // cfg.group_size)
    scales = torch.zeros(rows, n_groups, 2)
    for b0 in range(0, cols, cfg.block_size):
        b1 = min(b0 + cfg.block_size, cols)
        block = w[:, b0:b1].clone()
        errors = torch.zeros_like(block)
        for j in range(b1 - b0):
            col = b0 + j
            group = col // cfg.group_size
            if col % cfg.group_size == 0:
                g1 = min(col + cfg.group_size, cols)
                # Columns of this group beyond the block are not compensated by
                # the block yet; bring them up to date before fitting.
                current = torch.cat([block[:, j:], w[:, b1:g1]], dim=1)[:, : g1 - col]
                fitted, choice = _fit_group(current, weights[col:g1], cfg)
                scales[:, group] = fitted
                threshold = fitted.mean(dim=1)
                em_choice = choice
            x = block[:, j]
            if cfg.reassign:
                chosen = x.abs() > threshold
            else:
                chosen = em_choice[:, col - group * cfg.group_size]
            q = torch.where(chosen, scales[:, group, 1], scales[:, group, 0])
            q = torch.where(x >= 0, q, -q)
            positive[:, col] = x >= 0
            upper[:, col] = chosen
            err = (x - q) / hinv[col, col]
            block[:, j + 1 :] -= err.unsqueeze(1) * hinv[col, col + 1 : b1].unsqueeze(0)
            errors[:, j] = err
        w[:, b1:] -= errors @ hinv[b0:b1, b1:]
    return positive, upper, scales


def _proxy_error(weight, deq, hessian):
    diff = (weight.to(torch.float64) - deq.to(torch.float64))
    h = hessian.to(torch.float64)
    w = weight.to(torch.float64)
    num = float(((diff @ h) * diff).sum())
    den = float(((w @ h) * w).sum())
    return num / den if den > 0 else float("nan")
