"""Rotate a decoder LLM with Hadamard matrices, exactly in floating point.

Where the rotations go (QuaRot/SpinQuant naming, see docs/llm.md):

* RMSNorm weights are first fused into the linears that read the norm, so
  each norm only computes ``x / rms(x)``, which commutes with an orthogonal
  map of the residual stream.
* R1 (hidden size): the residual stream ``x`` becomes ``pad(x) @ M1``:
  embeddings and every linear writing the stream (``o_proj``,
  ``down_proj``) are rotated on their output side, every linear reading it
  (q/k/v, gate/up, lm_head) on their input side.  Tied embeddings are
  untied first.  With ``r1="online"`` the stream is left alone instead:
  each RMSNorm keeps its weight and the input of q/k/v and of gate/up is
  rotated online (fast transform) after the norm, the weights absorbing the
  transpose; the o_proj input is then also rotated online across heads.
  The quantized signal is then ``H (x * g)`` rather than ``H x`` with
  ``g`` folded into the weights, which on SmolLM2 cuts the 3-bit output
  error of gate/up 2.5-3.6x (docs/llm.md).
* R2 (head_dim): per head on ``v_proj``'s output and ``o_proj``'s input.
* R3 (head_dim): online on queries and keys after RoPE (attention function).
* R4 (intermediate size): online before ``down_proj``, whose weight absorbs
  the transpose.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ._attention import use_rotated_attention
from ._expansion import EXPANSIONS, DimensionPlan, ExpandedRMSNorm, plan_dimension
from ._families import family_of, input_widths
from ._transforms import OnlineRotation, random_signs, rotation_matrix


R1_MODES = ("fused", "online")


@dataclasses.dataclass(frozen=True)
class RotationConfig:
    """Which rotations to apply and how.

    Parameters
    ----------
    randomized : bool
        Multiply random signs in before each Hadamard matrix (``diag(s) H``),
        as QuaRot's randomized Hadamard; False gives the plain matrix.
    seed : int
        Seed of the random signs (each rotation site gets its own stream).
    expansion : {"pad", "block_diagonal", "none"}
        For a dimension with no Hadamard order: zero-pad it to the nearest
        buildable order (the FP model stays exact), use a block-diagonal
        Hadamard, or raise.  R2 never pads (the value head size is fixed by
        the model code); it falls back to block-diagonal under ``"pad"``.
    r1 : bool or {"fused", "online"}
        True or ``"fused"``: R1 on the residual stream, RMSNorm weights
        fused into the linears (QuaRot); ``"online"``: no stream rotation,
        the norms keep their weights and the inputs of q/k/v and gate/up are
        rotated online after the norm, and the o_proj input across heads;
        False: neither.
    r2, r3, r4 : bool
        Enable each rotation.  Norms are fused into the linears reading them
        unless ``r1="online"``.

    Examples
    --------
    >>> RotationConfig(randomized=True, seed=3)
    RotationConfig(randomized=True, seed=3, expansion='pad', r1=True, r2=True, r3=True, r4=True)
    >>> RotationConfig(expansion="zeros")
    Traceback (most recent call last):
    ...
    ValueError: expansion must be one of ('pad', 'block_diagonal', 'none'), got 'zeros'
    """

    randomized: bool = False
    seed: int = 0
    expansion: str = "pad"
    r1: bool | str = True
    r2: bool = True
    r3: bool = True
    r4: bool = True

    def __post_init__(self):
        if not isinstance(self.r1, bool) and self.r1 not in R1_MODES:
            raise ValueError(f"RotationConfig.r1 must be True, False, 'fused' or 'online', got {self.r1!r}")
        for name in ("randomized", "r2", "r3", "r4"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"RotationConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"RotationConfig.seed must be a non-negative int, got {self.seed!r}")
        if self.expansion not in EXPANSIONS:
            raise ValueError(f"expansion must be one of {EXPANSIONS}, got {self.expansion!r}")


class RotatedLinear(nn.Module):
    """A linear layer whose input is rotated online first (R4 before down_proj).

    Parameters
    ----------
    rotation : OnlineRotation
    linear : torch.nn.Linear
        Its weight already multiplied by the rotation on the input side.
    """

    def __init__(self, rotation: OnlineRotation, linear: nn.Linear):
        super().__init__()
        self.rotation, self.linear = rotation, linear

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.rotation(x))


@dataclasses.dataclass(frozen=True)
class RotationPlan:
    """The dimensions of a rotated model (stored as ``model.hadamard_rotation``)."""

    config: RotationConfig
    hidden: DimensionPlan | None
    head: DimensionPlan | None
    value_head: DimensionPlan | None
    intermediate: DimensionPlan | None
    attention_output: DimensionPlan | None = None  # o_proj input, rotated online with r1="online"


def unwrap_rotated(linear: nn.Module) -> tuple[OnlineRotation | None, nn.Linear]:
    """Split a projection into its online input rotation (or None) and its ``nn.Linear``.

    Raises
    ------
    TypeError
        ``linear`` is neither an ``nn.Linear`` nor a :class:`RotatedLinear`.
    """
    rotation = None
    if isinstance(linear, RotatedLinear):
        rotation, linear = linear.rotation, linear.linear
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"expected nn.Linear or RotatedLinear, got {type(linear).__name__}")
    return rotation, linear


def rotate_model(model: nn.Module, config: RotationConfig | None = None) -> nn.Module:
    """Fuse norms and apply R1..R4 to a causal LM in place.

    The floating-point function of the model is unchanged (up to rounding):
    ``model(ids).logits`` before and after agree to ~1e-4 in float32.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A Llama, Mistral, Qwen2/2.5 or Qwen3 ``*ForCausalLM``.
    config : RotationConfig, optional
        Default ``RotationConfig()``: plain Hadamard R1-R4, padding when needed.

    Returns
    -------
    The same model, rotated.

    Raises
    ------
    UnsupportedModelError
        Unknown architecture.
    DimensionError
        A dimension has no Hadamard order and ``expansion="none"``.
    ValueError
        The model was already rotated.

    Examples
    --------
    >>> import torch, transformers
    >>> from integrations import rotate_model
    >>> cfg = transformers.LlamaConfig(hidden_size=90, intermediate_size=160, num_hidden_layers=1,
    ...     num_attention_heads=2, num_key_value_heads=1, head_dim=32, vocab_size=50)
    >>> model = transformers.LlamaForCausalLM(cfg).eval()
    >>> ids = torch.tensor([[1, 5, 7, 9]])
    >>> before = model(ids).logits
    >>> _ = rotate_model(model)           # no Hadamard order 90: padded to 92
    >>> model.lm_head.weight.shape
    torch.Size([50, 92])
    >>> bool((model(ids).logits - before).abs().max() < 1e-4)
    True
    """
    config = RotationConfig() if config is None else config
    if not isinstance(config, RotationConfig):
        raise TypeError(f"config must be a RotationConfig, got {type(config).__name__}")
    family_of(model)
    if getattr(model, "hadamard_rotation", None) is not None:
        raise ValueError("this model is already rotated (model.hadamard_rotation is set)")
    plan = _plan(model, config)
    _untie_embeddings(model)
    M1 = _matrix(plan.hidden, config, 1) if plan.hidden and not _online_inputs(config) else None
    hidden_size = model.model.embed_tokens.weight.shape[1]
    with torch.no_grad():
        if M1 is not None:
            _set_weight(model.model.embed_tokens, _rotate_inputs(model.model.embed_tokens.weight, None, M1))
        for index, layer in enumerate(model.model.layers):
            _rotate_layer(layer, plan, M1, config, index, hidden_size)
        eps = _norm_eps(model.model.norm)
        _set_weight(model.lm_head, _rotate_inputs(model.lm_head.weight, model.model.norm.weight, M1))
        stream = _order(plan.hidden, hidden_size) if M1 is not None else hidden_size
        model.model.norm = ExpandedRMSNorm(stream, hidden_size, eps)
    if plan.head is not None:
        use_rotated_attention(model)
    model.hadamard_rotation = plan
    return model


def rotated_input_widths(model: nn.Module, config: RotationConfig | None = None) -> dict[str, int]:
    """In-features of each projection (``q_proj`` ... ``down_proj``, the same in every layer)
    once ``rotate_model(model, config)`` has run, without rotating anything: padded
    dimensions are wider than the model's. For a model already rotated, its widths.

    Lets a caller check settings that depend on them (a weight group size) before any work.
    """
    widths = input_widths(model)
    if getattr(model, "hadamard_rotation", None) is not None:
        return widths
    plan = _plan(model, RotationConfig() if config is None else config)
    for names, dims in ((("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"), plan.hidden),
                        (("o_proj",), plan.attention_output), (("down_proj",), plan.intermediate)):
        for name in names:
            widths[name] = _order(dims, widths[name])
    return widths


def _plan(model, config: RotationConfig) -> RotationPlan:
    hidden = model.model.embed_tokens.weight.shape[1]
    attn = model.model.layers[0].self_attn
    head_dim = attn.head_dim
    intermediate = model.model.layers[0].mlp.down_proj.weight.shape[1]
    value_expansion = "block_diagonal" if config.expansion == "pad" else config.expansion
    return RotationPlan(
        config=config,
        hidden=plan_dimension(hidden, config.expansion, what="hidden size") if config.r1 else None,
        head=plan_dimension(head_dim, config.expansion, what="head_dim") if config.r3 else None,
        value_head=plan_dimension(head_dim, value_expansion, what="head_dim (R2)") if config.r2 else None,
        intermediate=plan_dimension(intermediate, config.expansion, what="intermediate size") if config.r4 else None,
        attention_output=(plan_dimension(attn.o_proj.weight.shape[1], config.expansion, what="o_proj input")
                          if _online_inputs(config) else None),
    )


def _order(plan: DimensionPlan | None, size: int) -> int:
    return size if plan is None else plan.order


def _signs(plan: DimensionPlan, config: RotationConfig, site: int):
    return random_signs(plan.order, (config.seed, site)) if config.randomized else None


def _matrix(plan: DimensionPlan, config: RotationConfig, site: int) -> torch.Tensor:
    return rotation_matrix(plan.order, kind=plan.kind, signs=_signs(plan, config, site))


def _online(plan: DimensionPlan, config: RotationConfig, site: int, copies: int = 1) -> tuple[list[OnlineRotation], torch.Tensor]:
    """``copies`` online rotations of one site (fast transform for a Hadamard rotation) and its matrix.

    Several projections reading the same input (q/k/v, gate/up) share the
    matrix, but each gets its own module so that no tensor is shared between
    state-dict entries.
    """
    signs = _signs(plan, config, site)
    M = rotation_matrix(plan.order, kind=plan.kind, signs=signs)
    fast = None
    if plan.kind == "hadamard":
        fast = True if signs is None else signs
    return [OnlineRotation(plan.size, M, hadamard_signs=fast) for _ in range(copies)], M


def _online_inputs(config: RotationConfig) -> bool:
    return config.r1 == "online"


def _rotate_norm_inputs_online(layer, plan: RotationPlan, config: RotationConfig, index: int) -> None:
    """``r1="online"``: rotate the inputs of q/k/v and gate/up after their (unchanged) norms."""
    attn, mlp = layer.self_attn, layer.mlp
    # site numbers 1 + 4(i+1) are free (R1 uses 1, R2-R4 use 2..4 + 4(i+1)); the MLP input takes
    # a disjoint range
    # The o_proj input: R2 only mixes within each head; a full-width online rotation also mixes
    # heads of different scales (QuaRot's online Hadamard across heads, here for any head count).
    for owner, names, dims, site in ((attn, ("q_proj", "k_proj", "v_proj"), plan.hidden, 1 + 4 * (index + 1)),
                                     (mlp, ("gate_proj", "up_proj"), plan.hidden, 10**6 + index),
                                     (attn, ("o_proj",), plan.attention_output, 2 * 10**6 + index)):
        rotations, M = _online(dims, config, site, copies=len(names))
        for name, rotation in zip(names, rotations):
            linear = getattr(owner, name)
            _set_weight(linear, _rotate_inputs(linear.weight, None, M))
            setattr(owner, name, RotatedLinear(rotation, linear))


def _rotate_layer(layer, plan: RotationPlan, M1, config: RotationConfig, index: int, hidden: int) -> None:
    attn, mlp = layer.self_attn, layer.mlp
    if _online_inputs(config):
        _rotate_rest(layer, plan, None, config, index)  # R2 edits v_proj's rows: before it is wrapped
        _rotate_norm_inputs_online(layer, plan, config, index)
        return
    order = _order(plan.hidden, hidden)
    g = layer.input_layernorm.weight
    for name in ("q_proj", "k_proj", "v_proj"):
        _set_weight(getattr(attn, name), _rotate_inputs(getattr(attn, name).weight, g, M1))
    layer.input_layernorm = ExpandedRMSNorm(order, hidden, _norm_eps(layer.input_layernorm))
    g = layer.post_attention_layernorm.weight
    for name in ("gate_proj", "up_proj"):
        _set_weight(getattr(mlp, name), _rotate_inputs(getattr(mlp, name).weight, g, M1))
    layer.post_attention_layernorm = ExpandedRMSNorm(order, hidden, _norm_eps(layer.post_attention_layernorm))
    _rotate_rest(layer, plan, M1, config, index)


def _rotate_rest(layer, plan: RotationPlan, M1, config: RotationConfig, index: int) -> None:
    """R1 on the outputs writing the stream, then R2, R3 and R4."""
    attn, mlp = layer.self_attn, layer.mlp
    if M1 is not None:
        _rotate_outputs(attn.o_proj, M1)
        _rotate_outputs(mlp.down_proj, M1)
    if plan.value_head is not None:
        _rotate_heads(attn, _matrix(plan.value_head, config, 2 + 4 * (index + 1)))
    if plan.head is not None:
        (attn.qk_rotation,), _ = _online(plan.head, config, 3 + 4 * (index + 1))
    if plan.intermediate is not None:
        (rotation,), M4 = _online(plan.intermediate, config, 4 + 4 * (index + 1))
        down = mlp.down_proj
        _set_weight(down, _rotate_inputs(down.weight, None, M4))
        mlp.down_proj = RotatedLinear(rotation, down)


def _rotate_inputs(weight: torch.Tensor, norm_weight, M) -> torch.Tensor:
    """``pad(W diag(g)) @ M`` for a weight ``(out, n)`` reading a rotated input."""
    W = weight.detach().to(torch.float64)
    if norm_weight is not None:
        W = W * norm_weight.detach().to(device=W.device, dtype=torch.float64)
    if M is None:
        return W
    M = M.to(W.device)
    W = nn.functional.pad(W, (0, M.shape[0] - W.shape[1]))
    return W @ M


def _rotate_outputs(linear: nn.Linear, M) -> None:
    """``M^T pad(W)`` (and ``pad(b) @ M``) for a linear writing the rotated stream."""
    M = M.to(linear.weight.device)
    W = linear.weight.detach().to(torch.float64)
    W = nn.functional.pad(W, (0, 0, 0, M.shape[0] - W.shape[0]))
    _set_weight(linear, M.T @ W)
    if linear.bias is not None:
        b = nn.functional.pad(linear.bias.detach().to(torch.float64), (0, M.shape[0] - linear.bias.shape[0]))
        linear.bias = nn.Parameter((b @ M).to(linear.bias.dtype), requires_grad=False)
    linear.out_features = M.shape[0]


def _rotate_heads(attn, M2) -> None:
    """R2: rotate each value head (v_proj rows, bias) and each o_proj input head."""
    d = attn.head_dim
    M2 = M2.to(attn.v_proj.weight.device)
    v = attn.v_proj
    W = v.weight.detach().to(torch.float64)
    heads = W.shape[0] // d
    W = torch.einsum("ij,hjk->hik", M2.T, W.reshape(heads, d, -1)).reshape(heads * d, -1)
    _set_weight(v, W)
    if v.bias is not None:
        b = v.bias.detach().to(torch.float64).reshape(heads, d) @ M2
        v.bias = nn.Parameter(b.reshape(-1).to(v.bias.dtype), requires_grad=False)
    o = attn.o_proj
    Wo = o.weight.detach().to(torch.float64)
    out, cols = Wo.shape
    Wo = (Wo.reshape(out, cols // d, d) @ M2).reshape(out, cols)
    _set_weight(o, Wo)


def _set_weight(module: nn.Module, W: torch.Tensor) -> None:
    old = module.weight
    module.weight = nn.Parameter(W.to(device=old.device, dtype=old.dtype).contiguous(), requires_grad=False)
    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif isinstance(module, nn.Embedding):
        module.embedding_dim = module.weight.shape[1]


def _norm_eps(norm: nn.Module) -> float:
    for name in ("variance_epsilon", "eps"):
        if hasattr(norm, name):
            return float(getattr(norm, name))
    raise ValueError(f"cannot find the epsilon of norm {type(norm).__name__}")


def _untie_embeddings(model) -> None:
    if model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr():
        model.lm_head.weight = nn.Parameter(model.lm_head.weight.detach().clone(), requires_grad=False)
    for cfg in {id(model.config): model.config, id(model.config.get_text_config()): model.config.get_text_config()}.values():
        cfg.tie_word_embeddings = False
