"""GPTQ: column-by-column quantization with second-order error compensation."""

from __future__ import annotations

import dataclasses
import math
import warnings

import torch

from ._checks import check_finite, check_float_tensor
from ._clipping import mse_clip_search
from ._config import QuantConfig
from ._hessian import HessianAccumulator
from ._tensor import QuantizedTensor
from ._kernels import ASYMMETRIC, SIGN, SYMMETRIC, gptq_columns, kernel_threads
from ._uniform import _check_config, code_range, grid_codes, grid_dequantize, grid_params

_MAX_DAMP_RETRIES = 6


class SingularHessianWarning(RuntimeWarning):
    """The calibration Hessian was singular or not positive definite and was repaired."""


@dataclasses.dataclass(frozen=True)
class GPTQError:
    """How far the quantized layer is from the original on the calibration inputs.

    Attributes
    ----------
    output_error : float
        ``||X W^T - X Q^T||_F^2 / N``: squared output error per calibration
        sample, computed from the (undampened) Hessian as
        ``tr(dW H dW^T) / 2``.
    relative_output_error : float
        ``output_error`` divided by ``||X W^T||_F^2 / N``.
    proxy_loss : float
        GPTQ's own objective, ``sum_j ||w_j - q_j||^2 / (2 [H^-1]_jj)`` on the
        dampened Hessian.
    dead_columns : int
        Inputs whose Hessian diagonal was zero (their weights were zeroed).
    damp : float
        Absolute dampening added to the Hessian diagonal.
    """

    output_error: float
    relative_output_error: float
    proxy_loss: float
    dead_columns: int
    damp: float


@dataclasses.dataclass(frozen=True)
class GPTQResult:
    """Output of :func:`gptq_quantize`.

    Attributes
    ----------
    weight : torch.Tensor
        Dequantized weight, same shape, dtype and device as the input.
    quantized : QuantizedTensor
        Codes and scales; ``quantized.dequantize(weight.dtype)`` equals ``weight``.
    error : GPTQError
        Error statistics.
    """

    weight: torch.Tensor
    quantized: QuantizedTensor
    error: GPTQError


def gptq_quantize(
    weight: torch.Tensor,
    hessian,
    cfg: QuantConfig,
    *,
    block_size: int = 128,
    damp: float = 0.01,
    act_order: bool = False,
    static_groups: bool = False,
    mse_clip: bool = True,
    cross: torch.Tensor | None = None,
    target_damp: float = 1.0,
) -> GPTQResult:
    """Quantize a linear layer's weight with GPTQ.

    Columns (input features) are quantized one at a time; the error of each is
    spread over the columns not yet quantized through the upper Cholesky
    factor of the inverse Hessian, with the updates applied lazily in blocks
    of ``block_size`` columns.

    Parameters
    ----------
    weight : torch.Tensor
        ``(out_features, in_features)`` floating weight, finite.
    hessian : torch.Tensor or HessianAccumulator
        ``(in_features, in_features)`` matrix ``2/N X^T X`` of calibration inputs.
    cfg : QuantConfig
        Granularity "channel", "group" (groups along the input dimension) or
        "tensor".
    block_size : int
        Columns per lazy batch update (128 in the paper).
    damp : float
        Dampening, as a fraction of the mean Hessian diagonal, added to the
        diagonal (0.01 in the paper).  Raised tenfold (with a warning) while
        the Cholesky factorization fails.
    act_order : bool
        Quantize columns in order of decreasing Hessian diagonal.
    static_groups : bool
        With groups: compute every group's scale from the original weight up
        front (so groups stay contiguous in the original column order even
        with ``act_order``) instead of when the group's first column is reached.
    mse_clip : bool
        Choose scales with :func:`quant.mse_clip_search` (else the max of
        ``cfg.clip_ratio`` times the range).
    cross : torch.Tensor, optional
        ``(in_features, in_features)`` cross term ``2/N X^T X_t``
        (:attr:`HessianAccumulator.cross`) when the quantized weight, fed
        ``X``, should reproduce ``X_t W^T`` rather than ``X W^T`` -- e.g.
        ``X`` the quantized activations and ``X_t`` the float ones, so the
        weight compensates the activation error.  The least-squares weight
        ``W* = argmin_V ||X_t W^T - X V^T||^2`` is quantized instead of ``W``:
        since ``||X_t W^T - X Q^T||^2 = ||X_t W^T - X W*^T||^2 +
        ||X (W* - Q)^T||^2``, GPTQ on ``W*`` minimizes the float-target
        error.  The fit has a ridge ``d ||V - W||^2`` towards ``W``, so
        ``X_t = X`` gives ``W* = W``.  The error statistics are then
        relative to ``W*``.
    target_damp : float
        Ridge ``d`` of that fit, as a fraction of the mean Hessian diagonal
        (larger: ``W*`` closer to ``W``, less overfitting of the
        calibration set; 0.01 overfit 4096 tokens on SmolLM2, 1.0 did not,
        docs/quantization.md).

    Returns
    -------
    GPTQResult

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        On shape mismatch, NaN/inf, a negative Hessian diagonal, an empty
        Hessian accumulator, a group size that does not divide
        ``in_features`` or a Hessian that cannot be made positive definite.

    Warns
    -----
    SingularHessianWarning
        When some inputs are dead (zero Hessian diagonal: set to 1 and the
        weight column zeroed) or the dampening had to be raised.

    References
    ----------
    Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training
    Quantization for Generative Pre-trained Transformers", ICLR 2023,
    arXiv:2210.17323 (Algorithm 1).

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> x = torch.randn(256, 32) @ torch.randn(32, 32)
    >>> acc = HessianAccumulator(32); acc.update(x)
    >>> w = torch.randn(16, 32)
    >>> res = gptq_quantize(w, acc, QuantConfig(bits=4))
    >>> res.weight.shape, res.error.relative_output_error < 0.05
    (torch.Size([16, 32]), True)
    """
    _check_config(cfg)
    _check_weight(weight)
    H = H_given = _checked_hessian(hessian, weight)
    _check_options(cfg, weight.shape[1], block_size, damp)
    if cross is not None:
        check_target_damp(target_damp)
    rows, cols = weight.shape

    W = weight.detach().to(torch.float32).clone()
    H = H.detach().to(weight.device).clone()
    reference = weight
    if cross is not None:
        W = _float_target(W, H, _checked_cross(cross, H), target_damp)
        reference = W.clone()
    dead = H.diagonal() == 0
    n_dead = int(dead.sum())
    if n_dead:
        warnings.warn(
            f"{n_dead} of {cols} inputs are never active in the calibration data "
            "(zero Hessian diagonal); their diagonal is set to 1 and their weight "
            "columns to zero",
            SingularHessianWarning,
            stacklevel=2,
        )
        H[dead, dead] = 1
        W[:, dead] = 0

    chan_cfg = cfg.replace(granularity="channel", group_size=None)
    fixed = None  # (scale, zero) shared by all columns (channel / tensor granularity)
    static = None  # per original group: (scale, zero) of shape (rows, n_groups)
    if cfg.granularity in ("channel", "tensor"):
        fixed = _column_params(W, cfg, mse_clip)
    elif static_groups:
        static = _static_group_params(W, cfg, mse_clip)

    perm = None
    if act_order:
        perm = torch.argsort(H.diagonal(), descending=True)
        W = W[:, perm]
        H = H[perm][:, perm]

    abs_damp, Hinv = _inverse_cholesky(H, damp)

    sweep = _sweep_numba if W.device.type == "cpu" else _sweep_torch
    gs = cfg.group_size
    if static is not None:
        original = perm if perm is not None else torch.arange(cols, device=W.device)
        gidx = original // gs
        table = static
    else:
        gidx = torch.zeros(cols, dtype=torch.int64, device=W.device)
        table = fixed
    dynamic = cfg.granularity == "group" and static is None
    group_scales, group_zeros = [], []

    Q = torch.empty_like(W)
    codes = torch.empty_like(W)
    proxy = 0.0
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        W1 = W[:, i1:i2].clone()
        C1 = torch.empty_like(W1)
        Err1 = torch.empty_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2].contiguous()
        i = 0
        while i < i2 - i1:
            col = i1 + i
            stop = i2 - i1
            if dynamic:
                stop = min(stop, i + gs - col % gs)
                if col % gs == 0:
                    # Dynamic groups: scales from the weights as updated so far.
                    cols_now = torch.cat([W1[:, i:], W[:, i2 : col + gs]], dim=1)[:, :gs]
                    table = _column_params(cols_now, chan_cfg, mse_clip)
                    group_scales.append(table[0])
                    group_zeros.append(table[1])
            sweep(W1, Hinv1, i, stop, table, gidx[i1:i2], cfg, C1, Err1)
            i = stop
        Q[:, i1:i2] = W1
        codes[:, i1:i2] = C1
        proxy += float(Err1.square().sum(dtype=torch.float64)) / 2
        W[:, i2:].addmm_(Err1, Hinv[i1:i2, i2:], alpha=-1)

    group_scale = group_zero = None
    if dynamic:
        group_scale = torch.cat(group_scales, dim=1)
        group_zero = None if cfg.symmetric else torch.cat(group_zeros, dim=1)
    quantized = _assemble(codes, cfg, fixed, static, group_scale, group_zero, perm)
    if perm is not None:
        Q = Q[:, torch.argsort(perm)]
    error = _error_stats(reference, Q, H_given, proxy, n_dead, abs_damp)
    return GPTQResult(weight=Q.to(weight.dtype), quantized=quantized, error=error)


def _float_target(W: torch.Tensor, H: torch.Tensor, cross: torch.Tensor, damp: float) -> torch.Tensor:
    """Least-squares weight ``(W cross^T + d W)(H + d I)^-1``, ``d = damp*mean(diag H)`` (see ``cross``)."""
    H64 = H.to(torch.float64)
    ridge = damp * float(H64.diagonal().mean()) or damp
    L = torch.linalg.cholesky(H64 + ridge * torch.eye(H.shape[0], dtype=torch.float64, device=H.device))
    # Ridge towards W (not towards 0): minimize ||X_t W^T - X V^T||^2 + ridge ||V - W||^2, so a
    # target equal to the input gives V = W exactly whatever the ridge.
    W64 = W.to(torch.float64)
    rhs = cross.to(device=H.device, dtype=torch.float64) @ W64.T + ridge * W64.T
    return torch.cholesky_solve(rhs, L).T.to(torch.float32).contiguous()


def check_target_damp(damp) -> None:
    """Raise ``ValueError`` unless ``damp`` is a valid ``target_damp`` of :func:`gptq_quantize`.

    A finite int or float > 0 (not a bool). Public so that configuration objects that
    carry the option (``integrations.QuantizationConfig``) refuse a bad value when they
    are made, by the same rule.

    Examples
    --------
    >>> check_target_damp(1.0)
    >>> check_target_damp(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: target_damp must be a finite number > 0, got nan
    """
    if isinstance(damp, bool) or not isinstance(damp, (int, float)) or not math.isfinite(damp) or damp <= 0:
        raise ValueError(f"target_damp must be a finite number > 0, got {damp!r}")


def _checked_cross(cross, H: torch.Tensor) -> torch.Tensor:
    if not isinstance(cross, torch.Tensor) or not cross.is_floating_point():
        raise TypeError("cross must be a floating torch.Tensor (HessianAccumulator.cross)")
    if cross.shape != H.shape:
        raise ValueError(f"cross must have the Hessian's shape {tuple(H.shape)}, got {tuple(cross.shape)}")
    check_finite(cross, "cross")
    return cross


def _grid_kind(cfg: QuantConfig) -> int:
    if not cfg.symmetric:
        return ASYMMETRIC
    return SIGN if cfg.bits == 1 else SYMMETRIC


def _sweep_torch(W1, Hinv1, start, stop, table, gidx, cfg, C1, Err1) -> None:
    """GPTQ over columns start..stop-1 of a block, in place (see _kernels.gptq_columns)."""
    scale_table, zero_table = table
    groups = gidx.tolist()  # one transfer, not one device sync per column
    for i in range(start, stop):
        g = groups[i]
        scale = scale_table[:, g : g + 1]
        zero = None if zero_table is None else zero_table[:, g : g + 1]
        w = W1[:, i : i + 1]
        c = grid_codes(w, scale, zero, cfg.bits, cfg.symmetric)
        q = grid_dequantize(c, scale, zero)
        err = (w - q) / Hinv1[i, i]
        W1[:, i + 1 :].addmm_(err, Hinv1[i : i + 1, i + 1 :], alpha=-1)
        W1[:, i : i + 1] = q
        C1[:, i : i + 1] = c
        Err1[:, i : i + 1] = err


def _sweep_numba(W1, Hinv1, start, stop, table, gidx, cfg, C1, Err1) -> None:
    """CPU path: the same sweep in numba, on the transposed block (contiguous rows)."""
    scale_table, zero_table = table
    rows, B = W1.shape
    qmin, qmax = code_range(cfg.bits, cfg.symmetric)
    scaleT = scale_table.to(torch.float32).expand(rows, -1).T.contiguous()
    zeroT = scaleT if zero_table is None else (
        zero_table.to(torch.float32).expand(rows, -1).T.contiguous()
    )
    WT = W1.T.contiguous()
    CT = C1.T.contiguous()
    ET = Err1.T.contiguous()
    with kernel_threads(rows * (stop - start) * B):
        gptq_columns(
            WT.numpy(), Hinv1.contiguous().numpy(), start, stop, scaleT.numpy(), zeroT.numpy(),
            gidx.contiguous().numpy(), _grid_kind(cfg), qmin, qmax, CT.numpy(), ET.numpy(),
        )
    W1.copy_(WT.T)
    C1[:, start:stop] = CT.T[:, start:stop]
    Err1[:, start:stop] = ET.T[:, start:stop]


def _check_weight(weight) -> None:
    check_float_tensor(weight, "weight")
    if weight.dim() != 2:
        raise ValueError(
            f"weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}"
        )
    check_finite(weight, "weight")


def _checked_hessian(hessian, weight) -> torch.Tensor:
    if isinstance(hessian, HessianAccumulator):
        hessian = hessian.hessian
    if not isinstance(hessian, torch.Tensor) or not hessian.is_floating_point():
        raise TypeError("hessian must be a floating torch.Tensor or a HessianAccumulator")
    cols = weight.shape[1]
    if tuple(hessian.shape) != (cols, cols):
        raise ValueError(
            f"hessian must have shape ({cols}, {cols}) to match weight of shape "
            f"{tuple(weight.shape)}, got {tuple(hessian.shape)}"
        )
    check_finite(hessian, "hessian")
    if bool((hessian.diagonal() < 0).any()):
        raise ValueError(
            "hessian has a negative diagonal entry; it must be a Gram matrix 2/N X^T X"
        )
    # a Gram matrix is symmetric up to rounding; anything further off is not one
    asym = float((hessian - hessian.T).abs().max())
    if asym > 1e-4 * max(float(hessian.diagonal().max()), torch.finfo(hessian.dtype).tiny):
        raise ValueError(
            f"hessian is not symmetric (largest |H - H^T| entry {asym:.3g}); it must be a Gram matrix 2/N X^T X"
        )
    return hessian if hessian.dtype == torch.float64 else hessian.to(torch.float32)


def _check_options(cfg: QuantConfig, cols: int, block_size, damp) -> None:
    if cfg.granularity == "token":
        raise ValueError(
            "granularity='token' is for activations; GPTQ takes 'channel', 'group' "
            "or 'tensor'"
        )
    if cfg.granularity == "group" and cols % cfg.group_size:
        raise ValueError(
            f"group_size={cfg.group_size} does not divide in_features={cols}; "
            f"use a divisor of {cols}"
        )
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    if (
        isinstance(damp, bool)
        or not isinstance(damp, (int, float))
        or not math.isfinite(damp)
        or damp < 0
    ):
        raise ValueError(f"damp must be a finite number >= 0, got {damp!r}")


def _column_params(W: torch.Tensor, cfg: QuantConfig, mse_clip: bool):
    """(scale, zero) of shape (rows, 1) (or (1, 1) per tensor) for the columns of W."""
    if mse_clip:
        p = mse_clip_search(W, cfg)
        scale, zero = p.scale, p.zero
    else:
        xg = W.reshape(1, -1) if cfg.granularity == "tensor" else W
        scale, zero = grid_params(xg, cfg.bits, cfg.symmetric, cfg.clip_ratio)
    scale = scale.reshape(-1, 1)
    zero = None if zero is None else zero.reshape(-1, 1)
    return scale, zero


def _static_group_params(W: torch.Tensor, cfg: QuantConfig, mse_clip: bool):
    """Per-group (scale, zero) of shape (rows, n_groups) from the original weight."""
    if mse_clip:
        p = mse_clip_search(W, cfg)
        return p.scale, p.zero
    rows = W.shape[0]
    scale, zero = grid_params(W.reshape(-1, cfg.group_size), cfg.bits, cfg.symmetric,
                              cfg.clip_ratio)
    return scale.reshape(rows, -1), None if zero is None else zero.reshape(rows, -1)


def _inverse_cholesky(H: torch.Tensor, damp: float):
    """Upper Cholesky factor U of (H + damp*mean(diag) I)^-1, raising damp on failure.

    With J the reversal permutation and J H J = L L^T, H^-1 = (J L^-1 J)^T (J L^-1 J)
    and J L^-1 J is upper triangular with a positive diagonal: it is exactly the
    factor GPTQ takes, obtained with one Cholesky and one triangular solve instead of
    inverting and factorizing again (torch's cholesky_inverse is also pathologically
    slow with several threads on some CPUs).
    """
    mean_diag = float(H.diagonal().mean())
    eye = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
    rel = damp
    for attempt in range(_MAX_DAMP_RETRIES + 1):
        abs_damp = rel * mean_diag
        L, info = torch.linalg.cholesky_ex((H + abs_damp * eye).flip(0, 1))
        if int(info) == 0:
            U = torch.linalg.solve_triangular(L, eye, upper=False).flip(0, 1)
            if attempt:
                warnings.warn(
                    f"the Hessian is not positive definite with damp={damp}; "
                    f"used damp={rel:g} (relative to its mean diagonal)",
                    SingularHessianWarning,
                    stacklevel=3,
                )
            return abs_damp, U.to(torch.float32)
        rel = max(rel * 10, 1e-6)
    raise ValueError(
        f"the Hessian could not be made positive definite even with damp={rel / 10:g} "
        "times its mean diagonal; check the calibration inputs"
    )


def _assemble(codes, cfg, fixed, static, group_scale, group_zero, perm) -> QuantizedTensor:
    code_dtype = torch.int8 if cfg.symmetric else torch.uint8
    keep_perm = perm is not None and cfg.granularity == "group" and static is None
    if perm is not None and not keep_perm:
        codes = codes[:, torch.argsort(perm)]
    if fixed is not None:
        scale, zero = fixed
        if cfg.granularity == "tensor":
            scale = scale.reshape(1)
            zero = None if zero is None else zero.reshape(1)
    elif static is not None:
        scale, zero = static
    else:
        scale, zero = group_scale, group_zero
    return QuantizedTensor(
        codes=codes.to(code_dtype),
        scale=scale,
        zero=zero,
        config=cfg,
        perm=perm if keep_perm else None,
    )


def _error_stats(weight, Q, hessian, proxy, n_dead, abs_damp) -> GPTQError:
    H = hessian.detach().to(device=weight.device, dtype=torch.float32)
    W = weight.detach().to(torch.float32)
    both = torch.cat([W - Q, W])
    # one product for both traces; float32 products, float64 sums of positive terms
    quad = ((both @ H) * both).sum(dim=1, dtype=torch.float64)
    out_err = float(quad[: W.shape[0]].sum()) / 2
    ref = float(quad[W.shape[0] :].sum()) / 2
    return GPTQError(
        output_error=out_err,
        relative_output_error=out_err / ref if ref > 0 else float("nan"),
        proxy_loss=float(proxy),
        dead_columns=n_dead,
        damp=abs_damp,
    )
