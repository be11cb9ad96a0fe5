"""Error-aware smoothing: per-channel factors moved from activations to weights."""

from __future__ import annotations

import dataclasses

import torch

from ._activation import fake_quantize_activations
from ._checks import check_matrix
from ._config import ActivationConfig, BinaryWeightConfig, SmoothConfig
from ._weight import binary_quantize


def smoothing_factors(x_absmax: torch.Tensor, w_absmax: torch.Tensor, alpha: float) -> torch.Tensor:
    """``s_j = max|X_j|**alpha / max|W_j|**(1 - alpha)``, normalized to geometric mean 1.

    Per-token activation scales and per-group weight scales absorb a common
    factor, so only the ratios between channels matter; the normalization
    keeps the numbers near 1.  Channels whose activation or weight column is
    all zero get 1.

    Parameters
    ----------
    x_absmax, w_absmax : torch.Tensor
        ``(features,)`` non-negative per-channel maxima.
    alpha : float
        Migration strength in [0, 1]; 0 leaves activations alone up to the
        weight term, 0.5 balances them.

    Returns
    -------
    torch.Tensor
        ``(features,)`` positive float32 factors.

    Examples
    --------
    >>> import torch
    >>> smoothing_factors(torch.tensor([4.0, 1.0]), torch.tensor([1.0, 1.0]), 0.5)
    tensor([1.4142, 0.7071])
    """
    x_absmax = x_absmax.to(torch.float32)
    w_absmax = w_absmax.to(torch.float32)
    valid = (x_absmax > 0) & (w_absmax > 0)
    s = torch.ones_like(x_absmax)
    s[valid] = x_absmax[valid] ** alpha / w_absmax[valid] ** (1.0 - alpha)
    s[valid] = s[valid] / torch.exp(torch.log(s[valid]).mean())
    return s


@dataclasses.dataclass(frozen=True)
class SmoothingResult:
    """Outcome of :func:`search_smoothing`.

    Attributes
    ----------
    factors : torch.Tensor or None
        ``(features,)`` chosen factors, or None when no smoothing won.
    alpha : float or None
        The chosen migration strength (None: no smoothing).
    errors : dict
        Relative output error ``||Q(X/s) Q(W s)^T - X W^T||^2 / ||X W^T||^2``
        for every tried alpha (key ``None`` for no smoothing).
    """

    factors: torch.Tensor | None
    alpha: float | None
    errors: dict


def search_smoothing(x, weight, act_cfg: ActivationConfig | None = None,
                     weight_cfg: BinaryWeightConfig | None = None,
                     cfg: SmoothConfig | None = None) -> SmoothingResult:
    """Pick the smoothing strength that minimizes the quantized layer-output error.

    Each candidate is scored with both quantizers in the loop: activations
    per token on ``X / s``, the weight ``W * s`` by the EM two-scale
    quantizer without error compensation (cheap; the final weight is then
    quantized with compensation on the chosen ``s``).

    Parameters
    ----------
    x : torch.Tensor
        ``(tokens, in_features)`` calibration inputs of the layer (the first
        ``cfg.max_rows`` rows are used).
    weight : torch.Tensor
        ``(out_features, in_features)``.
    act_cfg, weight_cfg, cfg :
        Quantizer settings and the search grid (defaults if None).

    Returns
    -------
    SmoothingResult

    Raises
    ------
    TypeError, ValueError
        On non-float, non-finite or mismatched inputs.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(256, 128, generator=g); x[:, 0] *= 50  # an outlier channel
    >>> w = torch.randn(32, 128, generator=g)
    >>> r = search_smoothing(x, w, cfg=SmoothConfig(alphas=(0.0, 0.25, 0.5, 0.75)))
    >>> r.errors[r.alpha] == min(r.errors.values())
    True
    """
    act_cfg = ActivationConfig() if act_cfg is None else act_cfg
    weight_cfg = BinaryWeightConfig() if weight_cfg is None else weight_cfg
    cfg = SmoothConfig() if cfg is None else cfg
    for name, value, kind in (("act_cfg", act_cfg, ActivationConfig), ("weight_cfg", weight_cfg, BinaryWeightConfig),
                              ("cfg", cfg, SmoothConfig)):
        if not isinstance(value, kind):
            raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    check_matrix(x, "x")
    check_matrix(weight, "weight")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} features but the weight has {weight.shape[1]} input columns"
        )
    x = x[: cfg.max_rows].to(torch.float32)
    w = weight.detach().to(torch.float32)
    quick = weight_cfg.replace(error_compensation=False)
    reference = x @ w.T
    norm = float(reference.pow(2).sum()) or 1.0
    hessian = 2.0 * x.T @ x / x.shape[0]

    def error(s):
        xq = fake_quantize_activations(x, act_cfg, smooth=s)
        if s is None:
            wq = binary_quantize(w, hessian, quick).weight
        else:
            wq = binary_quantize(w * s, hessian / torch.outer(s, s), quick).weight
        return float((xq @ wq.T - reference).pow(2).sum()) / norm

    errors = {None: error(None)}
    best, best_alpha = None, None
    x_absmax, w_absmax = x.abs().amax(dim=0), w.abs().amax(dim=0)
    for alpha in cfg.alphas:
        s = smoothing_factors(x_absmax, w_absmax, float(alpha))
        errors[float(alpha)] = err = error(s)
        if err < errors.get(best_alpha, errors[None]):
            best, best_alpha = s, float(alpha)
    return SmoothingResult(best, best_alpha, errors)
