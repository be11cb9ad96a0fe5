"""Quantized modules of a decoder LLM and the configuration that builds them.

Every projection of every decoder layer becomes a :class:`QuantizedLinear`
(online rotation if any, then the activation quantizer of its input, then the
linear with a quantized weight); every attention module gets a K and a V
cache quantizer read by the attention function of
:mod:`integrations._attention`.  The quantizers are the "sites" of
:func:`quantizer_sites`: objects with a mutable ``bits`` (None = off) and
``clip_ratio``.  Embeddings and lm_head stay in high precision.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from typing import Mapping

import torch
from torch import nn

import quant

from ._attention import use_rotated_attention
from ._families import LINEAR_NAMES, family_of, layer_linears, set_layer_linear
from ._rotation import unwrap_rotated

WEIGHT_METHODS = ("rtn", "gptq")
GPTQ_TARGETS = ("quantized-input", "float-input", "float-model")


class ActivationQuantizer(nn.Module):
    """Fake-quantize the last dimension of activations, one scale per row or group.

    Parameters
    ----------
    bits : int or None
        Bit width 1..8, or None for no quantization (the site is off).
    symmetric : bool
        Symmetric grid, or asymmetric with a zero point.
    group_size : int or None
        None: one scale per row of the last dimension (per token at a
        linear's input, per token and head in the K/V cache); else groups of
        this size along the last dimension.
    clip_ratio : float
        In (0, 1]; mutable, as ``bits`` (clip-ratio searches set them).
    keep_first : int
        Rows at the first ``keep_first`` positions of the second to last axis
        (the token axis of a cache's ``(batch, heads, tokens, head_dim)``) pass
        unchanged: the attention sinks of ``quant.KVQuantConfig.keep_first``.
        0 (default) quantizes every row.

    Examples
    --------
    >>> import torch
    >>> q = ActivationQuantizer(bits=3, clip_ratio=1.0)
    >>> q(torch.tensor([[0.9, -3.0, 0.2, 1.6]]))
    tensor([[ 1., -3.,  0.,  2.]])
    >>> q.bits = None
    >>> q(torch.tensor([[0.9, -3.0]]))
    tensor([[ 0.9000, -3.0000]])
    """

    def __init__(self, bits: int | None = None, *, symmetric: bool = True, group_size: int | None = None,
                 clip_ratio: float = 1.0, keep_first: int = 0):
        super().__init__()
        self.bits, self.symmetric, self.group_size, self.clip_ratio = bits, symmetric, group_size, clip_ratio
        self.keep_first = keep_first
        if bits is not None:
            self.config()  # validates

    @classmethod
    def from_config(cls, cfg) -> "ActivationQuantizer":
        """From a ``quant.QuantConfig`` (granularity "token" or "group") or ``quant.KVQuantConfig``."""
        if cfg is None:
            return cls(None)
        if isinstance(cfg, quant.KVQuantConfig):
            # The K/V tensors handed to attention have one head per row: the
            # last dimension is exactly one head (padded under R3 expansion).
            return cls(cfg.bits, symmetric=cfg.symmetric, clip_ratio=cfg.clip_ratio, keep_first=cfg.keep_first)
        if not isinstance(cfg, quant.QuantConfig):
            raise TypeError(f"expected a quant.QuantConfig or quant.KVQuantConfig, got {type(cfg).__name__}")
        if cfg.granularity not in ("token", "group"):
            raise ValueError(
                f"activation quantizers need granularity 'token' or 'group', got {cfg.granularity!r}"
            )
        return cls(cfg.bits, symmetric=cfg.symmetric, group_size=cfg.group_size, clip_ratio=cfg.clip_ratio)

    def config(self) -> quant.QuantConfig:
        """The current settings as a ``quant.QuantConfig`` (raises if ``bits`` is None)."""
        if self.bits is None:
            raise ValueError("this quantizer is off (bits=None)")
        granularity = "token" if self.group_size is None else "group"
        return quant.QuantConfig(self.bits, self.symmetric, granularity, self.group_size, float(self.clip_ratio))

    @property
    def keep_first(self) -> int:
        return self._keep_first

    @keep_first.setter
    def keep_first(self, value) -> None:
        # validated by the cache config it mirrors, wherever it is set (a search, a checkpoint)
        self._keep_first = quant.KVQuantConfig(keep_first=value).keep_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bits is None:
            return x
        if self.keep_first:
            return quant.fake_quantize_kv(x, self._kv_config(x.shape[-1]))
        return quant.fake_quantize(x, self.config())

    def quantize_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Quantize-dequantize every row of ``x``, whatever ``keep_first`` (for sampled rows)."""
        return x if self.bits is None else quant.fake_quantize(x, self.config())

    def _kv_config(self, width: int) -> quant.KVQuantConfig:
        # the grid of config(), in rows of ``width`` values, with the first tokens kept
        return quant.KVQuantConfig(self.bits, head_dim=self.group_size or width, symmetric=self.symmetric,
                                   clip_ratio=float(self.clip_ratio), keep_first=self.keep_first)

    def extra_repr(self) -> str:
        kept = f", keep_first={self.keep_first}" if self.keep_first else ""
        return f"bits={self.bits}, symmetric={self.symmetric}, group_size={self.group_size}, clip_ratio={self.clip_ratio}{kept}"


class QuantizedLinear(nn.Module):
    """Online rotation (optional), input quantizer, then a linear layer.

    Parameters
    ----------
    linear : torch.nn.Linear or RotatedLinear
        The layer to wrap; its weight is copied (quantized later by
        :meth:`set_quantized_weight`).
    input_quantizer : ActivationQuantizer

    Attributes
    ----------
    quantized : quant.QuantizedTensor or None
        Codes and scales of the weight once quantized.
    """

    def __init__(self, linear: nn.Module, input_quantizer: ActivationQuantizer):
        super().__init__()
        rotation, linear = unwrap_rotated(linear)
        self.rotation = rotation
        self.input_quantizer = input_quantizer
        self.weight = nn.Parameter(linear.weight.detach(), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.quantized = None

    def set_quantized_weight(self, qt: quant.QuantizedTensor) -> None:
        """Replace the weight by the dequantized ``qt`` and keep ``qt``."""
        self.weight.data = qt.dequantize(self.weight.dtype).to(self.weight.device)
        self.quantized = qt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rotation is not None:
            x = self.rotation(x)
        return nn.functional.linear(self.input_quantizer(x), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, weight_quantized={self.quantized is not None}"


@dataclasses.dataclass(frozen=True)
class QuantizationConfig:
    """How to quantize weights, activations and the KV cache of a decoder LLM.

    Parameters
    ----------
    weights : quant.QuantConfig or None
        Weight quantizer ("channel" = per output row, or "group" along the
        input dimension); None keeps weights in high precision.
    method : {"rtn", "gptq"}
        Round-to-nearest or GPTQ (GPTQ needs calibration data).
    mse_clip : bool
        Choose weight scales by MSE clip search (else ``weights.clip_ratio``).
    act_order, block_size, damp, static_groups :
        GPTQ options (see ``quant.gptq_quantize``).
    activations : quant.QuantConfig or None
        Quantizer of the input of every projection (granularity "token" or
        "group"); None for none.
    kv : quant.KVQuantConfig, quant.QuantConfig or None
        K/V cache quantizer, one scale per token and head.
    clip_ratios : mapping of str to float
        Per-site clip-ratio overrides: shell patterns over site names
        (``"layers.*.down_proj"``, ``"layers.3.k_cache"``), later entries win.
    clip_search : bool
        Calibrate each activation/KV site's clip ratio on calibration data
        (grid search on the site's local output error) before GPTQ.
    clip_grid : tuple of float
        Ratios tried by the clip search.
    gptq_target : {"quantized-input", "float-input", "float-model"}
        The output GPTQ reproduces.  "quantized-input": ``X_q W^T`` with
        ``X_q`` the quantized input the weight multiplies (plain GPTQ);
        "float-input": ``X W^T`` with ``X`` the same input before activation
        quantization, so the weight also compensates the activation error;
        "float-model": ``X_fp W^T`` with ``X_fp`` the input of the same
        projection in the unquantized model (compensates all upstream error
        too, as GPTAQ).  See ``cross`` in :func:`quant.gptq_quantize`.
    target_damp : float
        Ridge of the least-squares fit behind a float target (fraction of
        the mean Hessian diagonal; see ``quant.gptq_quantize``).

    Examples
    --------
    >>> import quant
    >>> cfg = QuantizationConfig.w_a_kv(3)
    >>> cfg.weights.bits, cfg.activations.bits, cfg.kv.bits
    (3, 3, 3)
    >>> QuantizationConfig(method="awq")
    Traceback (most recent call last):
    ...
    ValueError: method must be one of ('rtn', 'gptq'), got 'awq'
    """

    weights: quant.QuantConfig | None = quant.QuantConfig(bits=3)
    method: str = "gptq"
    mse_clip: bool = True
    act_order: bool = True
    block_size: int = 128
    damp: float = 0.01
    static_groups: bool = False
    activations: quant.QuantConfig | None = quant.QuantConfig(bits=3, granularity="token")
    kv: object = quant.KVQuantConfig(bits=3)
    clip_ratios: Mapping[str, float] = dataclasses.field(default_factory=dict)
    clip_search: bool = False
    clip_grid: tuple[float, ...] = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5)
    gptq_target: str = "quantized-input"
    target_damp: float = 1.0

    def __post_init__(self):
        if self.weights is not None and not isinstance(self.weights, quant.QuantConfig):
            raise TypeError(f"weights must be a quant.QuantConfig or None, got {type(self.weights).__name__}")
        if self.method not in WEIGHT_METHODS:
            raise ValueError(f"method must be one of {WEIGHT_METHODS}, got {self.method!r}")
        ActivationQuantizer.from_config(self.activations)
        ActivationQuantizer.from_config(self.kv)
        for pattern, ratio in dict(self.clip_ratios).items():
            if not isinstance(pattern, str) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
                raise ValueError(f"clip_ratios maps site patterns to ratios in (0, 1]; got {pattern!r}: {ratio!r}")
        if not self.clip_grid or any(not 0 < r <= 1 for r in self.clip_grid):
            raise ValueError(f"clip_grid must be a non-empty tuple of ratios in (0, 1], got {self.clip_grid!r}")
        if self.gptq_target not in GPTQ_TARGETS:
            raise ValueError(f"gptq_target must be one of {GPTQ_TARGETS}, got {self.gptq_target!r}")
        quant.check_target_damp(self.target_damp)  # gptq_quantize's rule, so a bad config fails when it is made

    @classmethod
    def w_a_kv(cls, bits: int, **changes) -> "QuantizationConfig":
        """The WbAbKVb configuration at one bit width (per-channel weights, per-token activations)."""
        base = dict(
            weights=quant.QuantConfig(bits=bits),
            activations=quant.QuantConfig(bits=bits, granularity="token"),
            kv=quant.KVQuantConfig(bits=bits),
        )
        base.update(changes)
        return cls(**base)


def install_quantizers(model: nn.Module, config: QuantizationConfig) -> dict[str, ActivationQuantizer]:
    """Wrap every projection and attach K/V quantizers (weights untouched).

    Returns the sites, as :func:`quantizer_sites`.  Idempotent on the
    structure: an already wrapped projection keeps its module and gets fresh
    quantizer settings.
    """
    family_of(model)
    for layer in model.model.layers:
        for name, module in layer_linears(layer).items():
            quantizer = ActivationQuantizer.from_config(config.activations)
            if isinstance(module, QuantizedLinear):
                module.input_quantizer = quantizer
            else:
                set_layer_linear(layer, name, QuantizedLinear(module, quantizer))
        layer.self_attn.k_cache_quantizer = ActivationQuantizer.from_config(config.kv)
        layer.self_attn.v_cache_quantizer = ActivationQuantizer.from_config(config.kv)
    use_rotated_attention(model)
    sites = quantizer_sites(model)
    for pattern, ratio in dict(config.clip_ratios).items():
        matched = fnmatch.filter(sites, pattern)
        if not matched:
            raise ValueError(f"clip_ratios pattern {pattern!r} matches no site; sites look like {next(iter(sites))!r}")
        for name in matched:
            sites[name].clip_ratio = float(ratio)
    return sites


def quantizer_sites(model: nn.Module) -> dict[str, ActivationQuantizer]:
    """The activation and KV-cache quantizers of a quantized model, by site name.

    Names are ``"layers.{i}.{proj}"`` for the input of each projection
    (``q_proj`` ... ``down_proj``; the input of ``down_proj`` is taken after
    R4) and ``"layers.{i}.k_cache"`` / ``"layers.{i}.v_cache"`` for the
    caches (keys after RoPE and R3).  Each value has a mutable ``bits``
    (None = off) and ``clip_ratio``; changing them changes the model's next
    forward pass.

    Raises
    ------
    ValueError
        The model has no quantizers (call :func:`quantize_model` first).
    """
    family_of(model)
    sites: dict[str, ActivationQuantizer] = {}
    for i, layer in enumerate(model.model.layers):
        linears = layer_linears(layer)
        for name in LINEAR_NAMES:
            module = linears[name]
            if isinstance(module, QuantizedLinear):
                sites[f"layers.{i}.{name}"] = module.input_quantizer
            if name == "k_proj" and "k_cache_quantizer" in layer.self_attn._modules:
                sites[f"layers.{i}.k_cache"] = layer.self_attn.k_cache_quantizer
                sites[f"layers.{i}.v_cache"] = layer.self_attn.v_cache_quantizer
    if not sites:
        raise ValueError("the model has no quantizers; call integrations.quantize_model(model, config) first")
    return sites


def quantized_linears(model: nn.Module) -> dict[str, QuantizedLinear]:
    """Every :class:`QuantizedLinear` by site name."""
    out = {}
    for i, layer in enumerate(model.model.layers):
        for name, module in layer_linears(layer).items():
            if isinstance(module, QuantizedLinear):
                out[f"layers.{i}.{name}"] = module
    return out


def weight_bits(model: nn.Module) -> float | None:
    """Average storage bits per weight of the quantized projections (codes + scales).

    None when no weight is quantized.
    """
    total_bits = total = 0
    for module in quantized_linears(model).values():
        if module.quantized is not None:
            n = module.weight.numel()
            total_bits += module.quantized.bits_per_element() * n
            total += n
    return total_bits / total if total else None


def check_weight_groups(widths: Mapping[str, int], weights: quant.QuantConfig | None) -> None:
    """Raise ValueError unless ``weights``' group size divides every projection's in-features.

    ``widths``: projection name -> in-features, the model's own (``_families.input_widths``) or those a
    rotation will give (:func:`integrations._rotation.rotated_input_widths`). Checked before
    any calibration, so a bad group size fails at once, not at the first GPTQ of a long run.
    """
    if weights is None or weights.granularity != "group":
        return
    size = weights.group_size
    bad = {name: width for name, width in widths.items() if width % size}
    if bad:
        common = math.gcd(*widths.values())
        fits = max(d for d in range(1, min(size, common) + 1) if common % d == 0)
        raise ValueError(
            f"weight group_size={size} does not divide the input width of "
            + ", ".join(f"{name} ({width})" for name, width in bad.items())
            + f"; every projection's width is a multiple of {common}, so use a divisor of {common} (e.g. {fits})"
        )

