"""Layer-by-layer calibration: clip search and GPTQ one decoder layer at a time.

The calibration windows are embedded once; their hidden states then flow
through one decoder layer at a time.  For each layer (moved to the compute
device, processed, moved back) we (1) optionally calibrate the clip ratio of
every activation / KV site on its local output error, (2) accumulate the
Hessian ``2/N X^T X`` of each projection's (quantized) input -- and, for a
float GPTQ target, the cross term with the float input -- and quantize the
weight with GPTQ (or RTN), (3) run the quantized layer to produce the next
layer's inputs.  Peak memory is one layer, its Hessians and the calibration
hidden states, whatever the depth of the model; a model larger than the GPU
streams from CPU memory one layer at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
from torch import nn

import quant

from ._families import family_of, input_widths, layer_linears
from ._quantized import ActivationQuantizer, QuantizationConfig, QuantizedLinear, check_weight_groups, install_quantizers


class _Stop(Exception):
    """Raised by the hook that captures the first layer's inputs."""


@dataclasses.dataclass
class LayerInputs:
    """Hidden states entering a decoder layer, and the keyword arguments it is called with.

    Attributes
    ----------
    hidden : list of torch.Tensor
        One ``(1, seqlen, hidden)`` tensor per calibration window.
    kwargs : dict
        ``attention_mask``, ``position_embeddings``, ``position_ids``... as
        the model passes them to its layers (same for every window).
    """

    hidden: list[torch.Tensor]
    kwargs: dict


def capture_layer_inputs(model: nn.Module, windows: torch.Tensor, *, device=None) -> LayerInputs:
    """Embed calibration windows and capture what the first decoder layer receives.

    Parameters
    ----------
    model : transformers.PreTrainedModel
    windows : torch.LongTensor
        ``(n_windows, seqlen)`` token ids.
    device : str or torch.device, optional
        Where to keep the captured tensors (default: the first layer's device).

    Returns
    -------
    LayerInputs
    """
    family_of(model)
    windows = _check_windows(windows)
    config = model.config.get_text_config()
    if len(set(getattr(config, "layer_types", None) or ["full_attention"])) > 1:
        raise ValueError(
            "layer-by-layer calibration needs every layer to use the same attention mask; this model mixes "
            f"{sorted(set(config.layer_types))} layers"
        )
    first = model.model.layers[0]
    device = torch.device(device) if device is not None else next(first.parameters()).device
    captured: dict = {}

    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs.pop("hidden_states")
        captured["hidden"] = hidden
        captured["kwargs"] = {k: v for k, v in kwargs.items() if k != "hidden_states"}
        raise _Stop

    hidden, kwargs = [], {}
    handle = first.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        embed_device = model.model.embed_tokens.weight.device
        with torch.no_grad():
            for row in windows:
                with contextlib.suppress(_Stop):
                    model(row[None].to(embed_device), use_cache=False)
                hidden.append(captured["hidden"].to(device))
                kwargs = captured["kwargs"]
    finally:
        handle.remove()
    kwargs["use_cache"] = False
    kwargs["past_key_values"] = None
    return LayerInputs(hidden, _to_device(kwargs, device))


def run_layer(layer: nn.Module, inputs: LayerInputs) -> list[torch.Tensor]:
    """Outputs of one decoder layer for every captured window."""
    outputs = []
    with torch.no_grad():
        for x in inputs.hidden:
            y = layer(x, **inputs.kwargs)
            outputs.append(y[0] if isinstance(y, tuple) else y)
    return outputs


def quantize_model(
    model: nn.Module,
    config: QuantizationConfig | None = None,
    calibration: torch.Tensor | None = None,
    *,
    device=None,
    clip_tokens: int = 2048,
    progress: bool = True,
) -> nn.Module:
    """Quantize a (rotated or not) causal LM in place.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Llama, Mistral, Qwen2/2.5 or Qwen3 causal LM, usually rotated by
        :func:`rotate_model` first.
    config : QuantizationConfig, optional
        Default ``QuantizationConfig()`` (W3A3KV3, GPTQ).
    calibration : torch.LongTensor, optional
        ``(n_windows, seqlen)`` calibration token ids; needed for GPTQ and the
        clip search, not for RTN.
    device : str or torch.device, optional
        Where each layer is processed (e.g. ``"cuda"``); default: where it is.
    clip_tokens : int
        Tokens of each site's input used by the clip search.
    progress : bool
        Show a progress bar over the layers.

    Returns
    -------
    The same model: projections replaced by :class:`QuantizedLinear`, K/V
    quantizers attached, weights quantized.

    Raises
    ------
    ValueError
        GPTQ or clip search without calibration data; bad calibration tensor.
    UnsupportedModelError
        Unknown architecture.
    """
    config = QuantizationConfig() if config is None else config
    if not isinstance(config, QuantizationConfig):
        raise TypeError(f"config must be a QuantizationConfig, got {type(config).__name__}")
    check_weight_groups(input_widths(model), config.weights)
    install_quantizers(model, config)
    needs_data = config.clip_search or (config.weights is not None and config.method == "gptq")
    if not needs_data:
        if config.weights is not None:
            for module in _all_linears(model):
                module.set_quantized_weight(quant.rtn_quantize(module.weight, config.weights, mse_clip=config.mse_clip))
        return model
    if calibration is None:
        raise ValueError(
            "GPTQ and the clip search need calibration data: pass calibration=tokenize_windows(...) "
            "(an (n_windows, seqlen) LongTensor), or use method='rtn' without clip_search"
        )
    inputs = capture_layer_inputs(model, calibration, device=device)
    # GPTAQ-style target: the unquantized model's hidden states flow alongside.
    float_model = config.weights is not None and config.method == "gptq" and config.gptq_target == "float-model"
    fp_hidden = [h.clone() for h in inputs.hidden] if float_model else None
    layers = model.model.layers
    for index in _progress(range(len(layers)), progress, "quantizing layers"):
        layer = layers[index]
        home = next(layer.parameters()).device
        layer.to(inputs.hidden[0].device)
        if config.clip_search:
            grid_search_clip_ratios(layer, inputs, config.clip_grid, tokens=clip_tokens)
        if config.weights is not None:
            fp_hidden = _quantize_weights(layer, inputs, config, fp_hidden)
        inputs.hidden = run_layer(layer, inputs)
        layer.to(home)
    return model


def grid_search_clip_ratios(layer: nn.Module, inputs: LayerInputs, grid, *, tokens: int = 2048) -> dict[str, float]:
    """Set each active site's clip ratio of one layer to the best of ``grid``.

    The inputs of every site are captured in one pass with the current
    settings; the ratio minimizes, for a projection's input ``X``, the output
    error ``||(Q_r(X) - X) W^T||^2`` with the layer's current weight, and for
    the K/V cache the error ``||Q_r(K) - K||^2``.

    Returns
    -------
    dict
        Site (projection name, ``k_cache``, ``v_cache``) -> chosen ratio.
    """
    sites = _layer_sites(layer)
    samples = _capture_site_inputs(layer, inputs, sites, tokens)
    linears = layer_linears(layer)
    chosen = {}
    for name, quantizer in sites.items():
        if quantizer.bits is None:
            continue
        x = samples[name]
        weight = linears[name].weight if name in linears else None
        chosen[name] = quantizer.clip_ratio = _best_ratio(quantizer, x, weight, grid)
    return chosen


def site_output_error(quantizer: ActivationQuantizer, x: torch.Tensor, weight: torch.Tensor | None) -> float:
    """``||(Q(X) - X) W^T||^2`` of a projection's input quantizer at its current settings
    (``||Q(X) - X||^2`` for a cache, ``weight=None``); ``x`` and ``weight`` in float32."""
    delta = quantizer.quantize_rows(x) - x
    if weight is not None:
        delta = delta @ weight.T
    return float(delta.pow(2).sum())


def _best_ratio(quantizer: ActivationQuantizer, x: torch.Tensor, weight, grid) -> float:
    x = x.to(torch.float32)
    weight = None if weight is None else weight.detach().to(torch.float32)
    best, best_err = None, float("inf")
    for ratio in grid:
        quantizer.clip_ratio = float(ratio)
        err = site_output_error(quantizer, x, weight)
        if err < best_err:
            best, best_err = float(ratio), err
    return best


def _layer_sites(layer) -> dict[str, ActivationQuantizer]:
    sites = {name: m.input_quantizer for name, m in layer_linears(layer).items() if isinstance(m, QuantizedLinear)}
    for name in ("k_cache", "v_cache"):
        q = layer.self_attn._modules.get(f"{name[0]}_cache_quantizer")
        if q is not None:
            sites[name] = q
    return sites


class SiteRows:
    """Up to ``tokens`` tokens of one site's input, as float32 rows of its last dimension.

    A projection's input ``(batch, seq, features)`` gives a row per token; a cache's
    ``(batch, heads, seq, head_dim)`` gives a row per (token, head), token-major, so a
    budget cut inside a window keeps every head of the tokens it keeps.  The first
    ``skip_first`` tokens of every window are left out: the site keeps them in full
    precision (``ActivationQuantizer.keep_first``), so they carry no quantization error.
    """

    def __init__(self, tokens: int, skip_first: int = 0):
        self.tokens, self.skip_first, self.rows, self.count = tokens, skip_first, [], 0

    def add(self, x: torch.Tensor) -> None:
        x, heads = x.detach(), 1
        if self.skip_first:
            x = x[..., self.skip_first :, :]
        if x.dim() == 4:
            heads, x = x.shape[1], x.transpose(1, 2)
        x = x.reshape(-1, x.shape[-1])
        room = self.tokens * heads - self.count
        if room > 0:
            self.rows.append(x[:room].to(torch.float32).clone())
            self.count += min(room, x.shape[0])

    def tensor(self) -> torch.Tensor | None:
        """The rows gathered, or None if the site saw no input."""
        return torch.cat(self.rows) if self.rows else None


def _capture_site_inputs(layer, inputs: LayerInputs, sites, tokens: int) -> dict[str, torch.Tensor]:
    """Up to ``tokens`` tokens of each site's input (:class:`SiteRows`), in one pass."""
    store = {name: SiteRows(tokens, q.keep_first) for name, q in sites.items()}
    handles = [q.register_forward_pre_hook(lambda module, args, rows=store[name]: rows.add(args[0]))
               for name, q in sites.items()]
    try:
        run_layer(layer, inputs)
    finally:
        for h in handles:
            h.remove()
    return {name: rows.tensor() for name, rows in store.items() if rows.rows}


def _quantize_weights(layer, inputs: LayerInputs, config: QuantizationConfig, fp_hidden=None):
    """Quantize the layer's projections; returns the float model's outputs of the layer when
    ``fp_hidden`` (its inputs) is given, else None."""
    linears = {name: m for name, m in layer_linears(layer).items() if isinstance(m, QuantizedLinear)}
    if config.method == "rtn":
        for m in linears.values():
            m.set_quantized_weight(quant.rtn_quantize(m.weight, config.weights, mse_clip=config.mse_clip))
        return fp_hidden
    hessians = {name: quant.HessianAccumulator(m.in_features, device=m.weight.device) for name, m in linears.items()}
    fp_inputs: dict[str, torch.Tensor] = {}
    fp_pass = [False]

    def make_hook(name):
        def hook(module, args, output):
            if fp_pass[0]:
                fp_inputs[name] = args[0].detach()
                return
            if config.gptq_target == "float-model":
                target = fp_inputs.pop(name)
            elif config.gptq_target == "float-input":
                target = args[0].detach()
            else:
                target = None
            hessians[name].update(output.detach(), target)

        return hook

    # The hook sits on the input quantizer: its output is exactly what the weight multiplies.
    handles = [m.input_quantizer.register_forward_hook(make_hook(name)) for name, m in linears.items()]
    fp_next = None
    try:
        if fp_hidden is None:
            run_layer(layer, inputs)
        else:
            fp_next = []
            with torch.no_grad():
                for x, x_fp in zip(inputs.hidden, fp_hidden):
                    # The float pass (quantizers off, weights not yet quantized) leaves each
                    # projection's input in fp_inputs; the quantized pass pairs it with its own.
                    fp_pass[0] = True
                    try:
                        with _quantizers_off(layer):
                            y = layer(x_fp, **inputs.kwargs)
                    finally:
                        fp_pass[0] = False
                    fp_next.append(y[0] if isinstance(y, tuple) else y)
                    layer(x, **inputs.kwargs)
    finally:
        for h in handles:
            h.remove()
    for name, m in linears.items():
        result = quant.gptq_quantize(
            m.weight,
            hessians[name],
            config.weights,
            block_size=config.block_size,
            damp=config.damp,
            act_order=config.act_order,
            static_groups=config.static_groups,
            mse_clip=config.mse_clip,
            cross=hessians[name].cross,
            target_damp=config.target_damp,
        )
        m.set_quantized_weight(result.quantized)
        del hessians[name]
    return fp_next


@contextlib.contextmanager
def _quantizers_off(layer):
    """Turn every activation/KV quantizer of ``layer`` off for the duration."""
    sites = _layer_sites(layer)
    saved = {name: q.bits for name, q in sites.items()}
    try:
        for q in sites.values():
            q.bits = None
        yield
    finally:
        for name, q in sites.items():
            q.bits = saved[name]


def _all_linears(model) -> list[QuantizedLinear]:
    return [m for layer in model.model.layers for m in layer_linears(layer).values() if isinstance(m, QuantizedLinear)]


def _check_windows(windows) -> torch.Tensor:
    if not isinstance(windows, torch.Tensor) or windows.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"calibration/eval windows must be an integer torch tensor (n_windows, seqlen), got {type(windows).__name__}")
    if windows.dim() != 2 or windows.shape[0] == 0 or windows.shape[1] < 2:
        raise ValueError(f"windows must have shape (n_windows >= 1, seqlen >= 2), got {tuple(windows.shape)}")
    return windows.to(torch.int64)


def _to_device(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to_device(v, device) for v in value)
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)
