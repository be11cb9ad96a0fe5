"""W(1+1)A(1x4) on a decoder LLM: binary weights with a group bit, INT4 activations.

Every projection of every decoder layer becomes a :class:`BinaryLinear`:
optional online rotation (R4 of :func:`integrations.rotate_model`), the
per-channel smoothing ``x / s``, per-token INT4 quantization (whose codes
are four binary planes), and a W(1+1) weight ``Q(W * s)``.  The smoothing
factor is applied online by the activation quantizer (one multiply per
element, which a real kernel fuses into the per-token scaling); for the
projections that read an RMSNorm it could equally be folded into the norm
weight.  Embeddings, lm_head and the KV cache stay in high precision, as in
the paper (which quantizes weights and activations of the linear layers).

Calibration runs one decoder layer at a time (as :func:`quantize_model`):
each projection's input is captured, the smoothing strength searched on
the quantized output error, the Hessian of the smoothed input accumulated,
and the weight quantized with EM scales and GPTQ error compensation; the
quantized layer then produces the next layer's inputs.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from quant.binary import (
    ActivationConfig,
    BinaryWeightConfig,
    SmoothConfig,
    binary_matmul,
    binary_quantize,
    fake_quantize_activations,
    quantize_activations,
    search_smoothing,
)

from ._calibration import _progress, capture_layer_inputs, run_layer
from ._families import family_of, layer_linears, set_layer_linear
from ._rotation import unwrap_rotated


@dataclasses.dataclass(frozen=True)
class BinaryQuantizationConfig:
    """Settings of W(1+1)A(1x4) for a whole model.

    Parameters
    ----------
    weights : BinaryWeightConfig
        The W(1+1) weight quantizer.
    activations : ActivationConfig or None
        The per-token activation quantizer (None: activations stay float, W(1+1)A16).
    smooth : SmoothConfig or None
        Error-aware smoothing search (the paper's method, essential without
        rotation); None disables smoothing, the better choice after a
        Hadamard rotation (SmolLM2-135M: PPL 128.8 without vs 145.4 with,
        docs/binary.md).
    calibration_rows : int
        Input rows of each projection kept for the smoothing search (>= 16).

    Examples
    --------
    >>> BinaryQuantizationConfig().weights.group_size
    128
    >>> BinaryQuantizationConfig(weights=None)
    Traceback (most recent call last):
    ...
    TypeError: weights must be a BinaryWeightConfig, got NoneType
    """

    weights: BinaryWeightConfig = BinaryWeightConfig()
    activations: ActivationConfig | None = ActivationConfig()
    smooth: SmoothConfig | None = SmoothConfig()
    calibration_rows: int = 2048

    def __post_init__(self):
        if not isinstance(self.weights, BinaryWeightConfig):
            raise TypeError(f"weights must be a BinaryWeightConfig, got {type(self.weights).__name__}")
        if self.activations is not None and not isinstance(self.activations, ActivationConfig):
            raise TypeError(f"activations must be an ActivationConfig or None, got {type(self.activations).__name__}")
        if self.smooth is not None and not isinstance(self.smooth, SmoothConfig):
            raise TypeError(f"smooth must be a SmoothConfig or None, got {type(self.smooth).__name__}")
        if isinstance(self.calibration_rows, bool) or not isinstance(self.calibration_rows, int) or self.calibration_rows < 16:
            raise ValueError(f"calibration_rows must be an integer >= 16, got {self.calibration_rows!r}")


class BinaryLinear(nn.Module):
    """Rotation (optional), smoothing, INT4 activations, W(1+1) weight.

    ``forward`` simulates the arithmetic in floating point (dequantized
    activations times the dequantized weight), which equals the binary GEMM
    up to float rounding; :meth:`forward_binary` runs the bit-packed
    AND + popcount GEMM itself (CPU, slow, for checking).

    Parameters
    ----------
    linear : torch.nn.Linear or RotatedLinear
    activations : ActivationConfig or None
    """

    def __init__(self, linear: nn.Module, activations: ActivationConfig | None):
        super().__init__()
        rotation, linear = unwrap_rotated(linear)
        self.rotation = rotation
        self.activations = activations
        self.weight = nn.Parameter(linear.weight.detach().clone(), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("smooth", None)
        self.packed = None
        self.smooth_alpha = None

    def set_weight(self, result, smooth: torch.Tensor | None, alpha: float | None = None) -> None:
        """Install a quantized (smoothed) weight and its smoothing factors."""
        self.weight.data = result.weight.to(device=self.weight.device, dtype=self.weight.dtype)
        self.packed = result.packed
        self.smooth = None if smooth is None else smooth.to(self.weight.device)
        self.smooth_alpha = alpha

    def rotated_input(self, x: torch.Tensor) -> torch.Tensor:
        """The input after the online rotation, before smoothing and quantization."""
        return x if self.rotation is None else self.rotation(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.rotated_input(x)
        if self.activations is not None:
            x = fake_quantize_activations(x, self.activations, smooth=self.smooth)
        elif self.smooth is not None:
            x = x / self.smooth
        return nn.functional.linear(x, self.weight, self.bias)

    def forward_binary(self, x: torch.Tensor) -> torch.Tensor:
        """The same product through the exact binary GEMM (needs a quantized weight and activations)."""
        if self.packed is None or self.activations is None:
            raise ValueError("forward_binary needs a quantized weight and an activation quantizer")
        x = self.rotated_input(x)
        flat = x.reshape(-1, x.shape[-1]).to(torch.float32).cpu()
        act = quantize_activations(flat, self.activations, smooth=None if self.smooth is None else self.smooth.cpu())
        y = binary_matmul(self.packed, act).to(device=x.device, dtype=x.dtype)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"quantized={self.packed is not None}, smooth_alpha={self.smooth_alpha}")


def binary_linears(model: nn.Module) -> dict[str, BinaryLinear]:
    """Every :class:`BinaryLinear` of the model by site name ``layers.{i}.{proj}``."""
    family_of(model)
    return {
        f"layers.{i}.{name}": m
        for i, layer in enumerate(model.model.layers)
        for name, m in layer_linears(layer).items()
        if isinstance(m, BinaryLinear)
    }


def binary_weight_bits(model: nn.Module) -> float | None:
    """Storage bits per weight of the quantized projections (sign + group bits + fp16 scales)."""
    total_bits = total = 0
    for m in binary_linears(model).values():
        if m.packed is not None:
            n = m.weight.numel()
            total_bits += m.packed.bits_per_weight() * n
            total += n
    return total_bits / total if total else None


def quantize_model_binary(model: nn.Module, config: BinaryQuantizationConfig | None = None,
                          calibration: torch.Tensor | None = None, *, device=None,
                          progress: bool = True) -> dict:
    """Quantize a (rotated or not) causal LM to W(1+1)A(1x4) in place.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Llama, Mistral, Qwen2/2.5 or Qwen3, optionally rotated by
        :func:`integrations.rotate_model` first.
    config : BinaryQuantizationConfig, optional
    calibration : torch.LongTensor
        ``(n_windows, seqlen)`` calibration token ids.
    device : optional
        Where each layer is processed.
    progress : bool
        Progress bar over the layers.

    Returns
    -------
    dict
        Site name -> ``{"alpha": chosen smoothing strength or None,
        "proxy_error": relative Hessian-weighted weight error}``.

    Raises
    ------
    ValueError
        Missing calibration data.
    TypeError
        Wrong config type.
    """
    config = BinaryQuantizationConfig() if config is None else config
    if not isinstance(config, BinaryQuantizationConfig):
        raise TypeError(f"config must be a BinaryQuantizationConfig, got {type(config).__name__}")
    family_of(model)
    if calibration is None:
        raise ValueError("W(1+1) quantization is Hessian-aware: pass calibration=tokenize_windows(...)")
    for layer in model.model.layers:
        for name, module in layer_linears(layer).items():
            if not isinstance(module, BinaryLinear):
                set_layer_linear(layer, name, BinaryLinear(module, config.activations))
    inputs = capture_layer_inputs(model, calibration, device=device)
    report = {}
    for index in _progress(range(len(model.model.layers)), progress, "W(1+1) layers"):
        layer = model.model.layers[index]
        home = next(layer.parameters()).device
        layer.to(inputs.hidden[0].device)
        for name, info in _quantize_layer(layer, inputs, config).items():
            report[f"layers.{index}.{name}"] = info
        inputs.hidden = run_layer(layer, inputs)
        layer.to(home)
    return report


def _quantize_layer(layer, inputs, config) -> dict:
    linears = {n: m for n, m in layer_linears(layer).items() if isinstance(m, BinaryLinear)}
    hessians, samples = _capture(layer, inputs, linears, config.calibration_rows)
    info = {}
    for name, m in linears.items():
        h = hessians[name]
        smooth = alpha = None
        if config.smooth is not None:
            act_cfg = config.activations or ActivationConfig(bits=8)
            found = search_smoothing(samples[name], m.weight, act_cfg, config.weights, config.smooth)
            smooth, alpha = found.factors, found.alpha
        w = m.weight.detach().to(torch.float32)
        if smooth is not None:
            w = w * smooth
            h = h / torch.outer(smooth, smooth).to(h.dtype)
        result = binary_quantize(w, h, config.weights)
        m.set_weight(result, smooth, alpha)
        info[name] = {"alpha": alpha, "proxy_error": result.proxy_error}
    return info


def _capture(layer, inputs, linears, rows_kept):
    """Hessian ``2/N X^T X`` of each projection's (rotated, float) input and a row sample."""
    sums = {n: torch.zeros(m.in_features, m.in_features, dtype=torch.float64) for n, m in linears.items()}
    counts = dict.fromkeys(linears, 0)
    samples = {n: [] for n in linears}

    def make_hook(name, module):
        def hook(_, args):
            x = module.rotated_input(args[0].detach()).reshape(-1, module.in_features).to(torch.float64).cpu()
            sums[name] += x.T @ x
            counts[name] += x.shape[0]
            kept = sum(s.shape[0] for s in samples[name])
            if kept < rows_kept:
                samples[name].append(x[: rows_kept - kept].to(torch.float32))
        return hook

    handles = [m.register_forward_pre_hook(make_hook(n, m)) for n, m in linears.items()]
    try:
        run_layer(layer, inputs)
    finally:
        for h in handles:
            h.remove()
    hessians = {n: (2.0 / counts[n]) * sums[n] for n in linears}
    return hessians, {n: torch.cat(samples[n]) for n in linears}
