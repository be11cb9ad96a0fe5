"""Which modules of a Hugging Face decoder play which role in the rotations.

Llama, Mistral, Qwen2/2.5 and Qwen3 share one layout (pre-norm decoder
layers of attention + gated MLP, RMSNorm, RoPE); they differ in details the
rotations must respect: Qwen2's q/k/v biases, Qwen3's per-head q_norm/k_norm
(applied before RoPE, so R3 after RoPE leaves them alone), GQA, tied
embeddings.  Other architectures (LayerNorm with bias, Gemma's ``1 + w``
norms, parallel blocks...) would make the norm fusion wrong, so they are
refused rather than silently mishandled.
"""

from __future__ import annotations

import dataclasses

from torch import nn

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")


class UnsupportedModelError(ValueError):
    """The model's architecture is not one whose rotations we know."""


@dataclasses.dataclass(frozen=True)
class Family:
    """Attribute names of the roles in one decoder family.

    Attributes
    ----------
    name : str
        ``config.model_type``.
    attention_inputs : tuple of str
        Linears of ``self_attn`` that read the normalized residual stream.
    mlp_inputs : tuple of str
        Linears of ``mlp`` that read the normalized residual stream.
    has_qk_norm : bool
        Per-head RMSNorm on q and k before RoPE (Qwen3).
    """

    name: str
    attention_inputs: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")
    mlp_inputs: tuple[str, ...] = ("gate_proj", "up_proj")
    has_qk_norm: bool = False


_FAMILIES = {
    "llama": Family("llama"),
    "mistral": Family("mistral"),
    "qwen2": Family("qwen2"),
    "qwen3": Family("qwen3", has_qk_norm=True),
}

LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def family_of(model: nn.Module) -> Family:
    """The :class:`Family` of a causal LM, or a clear error.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A ``*ForCausalLM`` model.

    Returns
    -------
    Family

    Raises
    ------
    TypeError
        ``model`` is not a transformers model with a config.
    UnsupportedModelError
        The architecture is not supported; the message names the ones that are.
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type is None:
        raise TypeError(f"expected a transformers causal LM with a .config, got {type(model).__name__}")
    family = _FAMILIES.get(model_type)
    if family is None:
        raise UnsupportedModelError(
            f"model type {model_type!r} is not supported; supported model types: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)} (Llama-style pre-norm decoders with RMSNorm)"
        )
    if not hasattr(model, "model") or not hasattr(model.model, "layers") or not hasattr(model, "lm_head"):
        raise UnsupportedModelError(
            f"{type(model).__name__} has no .model.layers/.lm_head; pass the *ForCausalLM model"
        )
    return family


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a supported causal LM."""
    family_of(model)
    return model.model.layers


def input_widths(model: nn.Module) -> dict[str, int]:
    """In-features of each projection of the model as it is (the same in every layer)."""
    return {name: int(module.weight.shape[1]) for name, module in layer_linears(decoder_layers(model)[0]).items()}


def layer_linears(layer: nn.Module) -> dict[str, nn.Module]:
    """The seven projections of a decoder layer by name (``q_proj`` ... ``down_proj``)."""
    attn, mlp = layer.self_attn, layer.mlp
    return {name: getattr(attn if name in ("q_proj", "k_proj", "v_proj", "o_proj") else mlp, name) for name in LINEAR_NAMES}


def set_layer_linear(layer: nn.Module, name: str, module: nn.Module) -> None:
    """Replace one projection of a decoder layer by ``module``."""
    parent = layer.self_attn if name in ("q_proj", "k_proj", "v_proj", "o_proj") else layer.mlp
    setattr(parent, name, module)
