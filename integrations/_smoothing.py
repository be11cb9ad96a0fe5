"""Channel smoothing of the norm outputs and the down_proj input (SmoothQuant), exact in FP.

The linears after an RMSNorm compute ``W (x * g)`` (``g`` the norm's weight).  For any
positive vector ``s``, ``W diag(s) (x * g / s)`` is the same function, so dividing the
norm's weight by ``s`` and multiplying the columns of the linears that read it by ``s``
changes nothing in floating point, while the activation their quantizer sees,
``x * g / s``, has its largest channels shrunk and the weights take the difference.
SmoothQuant picks ``s_j = max|a_j|^alpha / max|W_:j|^(1 - alpha)`` from calibration
activations ``a``.  A Hadamard rotation spreads a large channel over all of them, but
its energy stays: one channel far above the rest still sets every token's
quantization step after the rotation, which is why the two combine.

The input of ``down_proj``, ``act(gate) * up``, is smoothed the same way: ``up_proj``'s
output rows take ``1/s``.  Smoothing must come before :func:`integrations.rotate_model`
with ``r1="online"`` (which keeps the norms' weights) or without rotation; the fused R1
placement folds the norm weights into the linears and would undo the norm part.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from ._calibration import _progress, capture_layer_inputs, run_layer
from ._families import decoder_layers, family_of, layer_linears
from ._quantized import QuantizedLinear
from ._rotation import RotatedLinear

# channels never active in the calibration data (or weight columns of zeros) would give
# s = 0 or inf; SmoothQuant clamps both statistics at this floor
_FLOOR = 1e-5
#: SmoothQuant's default; on SmolLM2 at 3 bits it tied 0.65 and beat 0.3 and 0.8 (docs/llm.md)
DEFAULT_ALPHA = 0.5


def smooth_model(model: nn.Module, calibration: torch.Tensor, alpha: float = DEFAULT_ALPHA, *, device=None,
                 progress: bool = True) -> dict[str, torch.Tensor]:
    """Move quantization difficulty from the norm outputs to the weights, in place.

    For every decoder layer, the input norm (read by q/k/v) and the post-attention norm
    (read by gate/up) are divided by ``s`` and the columns of their linears multiplied by
    it, with ``s_j = max|a_j|^alpha / max|W_:j|^(1 - alpha)``: ``a`` the norm's output on
    the calibration windows (flowing through one layer at a time), ``W`` the linears that
    read it, stacked.  The input of ``down_proj``, ``act(gate) * up``, is smoothed the same
    way through ``up_proj``'s output rows.  The model's floating-point outputs are
    unchanged (up to rounding).

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A Llama, Mistral, Qwen2/2.5 or Qwen3 causal LM, neither rotated nor quantized yet.
    calibration : torch.LongTensor
        ``(n_windows, seqlen)`` token ids.
    alpha : float
        Migration strength in [0, 1]: 0 leaves the activations' range as the weights'
        inverse, 1 flattens the activation channels entirely (default
        :data:`DEFAULT_ALPHA`).
    device : str or torch.device, optional
        Where each layer is processed; default: where it is.
    progress : bool
        Show a progress bar over the layers.

    Returns
    -------
    dict
        ``"layers.{i}.input_layernorm"``, ``"layers.{i}.post_attention_layernorm"``,
        ``"layers.{i}.down_proj"`` -> the float32 scales ``s`` applied there.

    Raises
    ------
    ValueError
        ``alpha`` outside [0, 1]; the model already rotated or quantized; bad calibration;
        NaN or inf in the activations or weights (the layers before the bad one are
        smoothed already, which leaves the model's function unchanged).
    UnsupportedModelError
        Unknown architecture.

    References
    ----------
    Xiao et al., "SmoothQuant: Accurate and Efficient Post-Training Quantization for
    Large Language Models", ICML 2023.

    Examples
    --------
    >>> import torch, transformers
    >>> cfg = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
    ...     num_attention_heads=4, num_key_value_heads=2, vocab_size=50)
    >>> model = transformers.LlamaForCausalLM(cfg).eval()
    >>> ids = torch.tensor([[1, 5, 7, 9, 3, 2]])
    >>> before = model(ids).logits
    >>> scales = smooth_model(model, ids, alpha=0.5, progress=False)
    >>> sorted(scales)
    ['layers.0.down_proj', 'layers.0.input_layernorm', 'layers.0.post_attention_layernorm']
    >>> bool((model(ids).logits - before).abs().max() < 1e-4)
    True
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    alpha = float(alpha)
    family = family_of(model)
    if getattr(model, "hadamard_rotation", None) is not None:
        raise ValueError("smooth_model must run before rotate_model: this model is already rotated")
    layers = decoder_layers(model)
    readers = {"input_layernorm": ("self_attn", family.attention_inputs),
               "post_attention_layernorm": ("mlp", family.mlp_inputs)}
    for layer in layers:
        if any(isinstance(m, (QuantizedLinear, RotatedLinear)) for m in layer_linears(layer).values()):
            raise ValueError("smooth_model must run before rotate_model and quantize_model: "
                             "this model's projections are already wrapped")
    inputs = capture_layer_inputs(model, calibration, device=device)
    scales = {}
    for index in _progress(range(len(layers)), progress, "smoothing layers"):
        layer = layers[index]
        home = next(layer.parameters()).device
        layer.to(inputs.hidden[0].device)
        peaks = {}

        def recorder(site):
            def hook(module, args, output=None):
                x = (args[0] if output is None else output).detach()
                peak = x.abs().reshape(-1, x.shape[-1]).amax(0).to(torch.float32)
                peaks[site] = peak if site not in peaks else torch.maximum(peaks[site], peak)
            return hook

        handles = [getattr(layer, kind).register_forward_hook(recorder(kind)) for kind in readers]
        handles.append(layer.mlp.down_proj.register_forward_pre_hook(recorder("down_proj")))
        try:
            outputs = run_layer(layer, inputs)  # smoothing leaves them unchanged: the next layer's inputs
        finally:
            for h in handles:
                h.remove()
        with torch.no_grad():
            for kind, (owner, names) in readers.items():
                linears = [getattr(getattr(layer, owner), n) for n in names]
                s = _scales(peaks[kind], linears, alpha)
                _scale_(getattr(layer, kind).weight, 1 / s)
                for linear in linears:
                    _scale_(linear.weight, s)
                scales[f"layers.{index}.{kind}"] = s.cpu()
            # down_proj reads act(gate) * up: up's output rows take 1/s
            s = _scales(peaks["down_proj"], [layer.mlp.down_proj], alpha)
            _scale_(layer.mlp.up_proj.weight, 1 / s[:, None])
            if layer.mlp.up_proj.bias is not None:
                _scale_(layer.mlp.up_proj.bias, 1 / s)
            _scale_(layer.mlp.down_proj.weight, s)
            scales[f"layers.{index}.down_proj"] = s.cpu()
        inputs.hidden = outputs
        layer.to(home)
    return scales


def _scale_(param: torch.Tensor, factor: torch.Tensor) -> None:
    """``param *= factor`` (broadcast), computed in float32 whatever the parameter's dtype."""
    param.copy_((param.to(torch.float32) * factor.to(param.device)).to(param.dtype))


def _scales(peak: torch.Tensor, linears, alpha: float) -> torch.Tensor:
    weight_peak = torch.cat([m.weight.detach().to(torch.float32).abs() for m in linears]).amax(0)
    if not (math.isfinite(float(peak.max())) and math.isfinite(float(weight_peak.max()))):
        raise ValueError("the calibration activations or the weights reading them hold NaN or inf; cannot smooth")
    s = peak.to(weight_peak.device).clamp(min=_FLOOR).pow(alpha) / weight_peak.clamp(min=_FLOOR).pow(1.0 - alpha)
    return s.clamp(min=_FLOOR)
