"""Rotated models compute the same function as the originals (tiny random models, no download)."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hadamard  # noqa: E402
import integrations  # noqa: E402
from integrations import RotationConfig, rotate_model  # noqa: E402


def tiny(family="llama", hidden=576, heads=4, kv_heads=2, head_dim=64, intermediate=256, layers=2, vocab=64, **extra):
    common = dict(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        **extra,
    )
    cls = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM),
    }[family]
    torch.manual_seed(0)
    model = cls[1](cls[0](**common)).eval().requires_grad_(False)
    # Random norm weights and biases, so that fusing them is actually tested.
    for name, p in model.named_parameters():
        if "norm" in name:
            p.copy_(1 + 0.3 * torch.randn_like(p))
        if name.endswith("bias"):
            p.copy_(0.1 * torch.randn_like(p))
    return model


def ids(vocab=48, length=24, batch=2):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(1))


CASES = [
    ("llama", dict(hidden=576, head_dim=64, intermediate=384, vocab=48)),
    ("mistral", dict(hidden=896, heads=2, kv_heads=1, head_dim=128, intermediate=256)),
    ("qwen2", dict(hidden=896, heads=4, kv_heads=2, head_dim=64, intermediate=4864 // 4)),
    ("qwen3", dict(hidden=1536, heads=2, kv_heads=1, head_dim=80, intermediate=256)),
]


@pytest.mark.parametrize(
    "family,dims,randomized",
    [(*case, False) for case in CASES] + [(*CASES[2], True)],
    ids=[c[0] for c in CASES] + ["qwen2-randomized"],
)
def test_rotated_model_gives_the_same_logits(family, dims, randomized):
    model = tiny(family, **dims)
    x = ids()
    before = model(x).logits
    rotate_model(model, RotationConfig(randomized=randomized, seed=5))
    after = model(x).logits
    assert torch.allclose(after, before, atol=1e-4, rtol=0), (after - before).abs().max()
    # The rotations really happened: the embeddings changed and R3 is attached.
    assert model.config._attn_implementation == "hadamard_quant"
    assert "qk_rotation" in model.model.layers[0].self_attn._modules
    assert isinstance(model.model.layers[0].mlp.down_proj, integrations.RotatedLinear)


def test_rotation_flattens_an_outlier_channel():
    model = tiny("llama", hidden=576, intermediate=256)
    model.model.embed_tokens.weight[:, 7] = 50.0  # a massive outlier feature
    x = ids()
    hidden = model.model.embed_tokens(x)
    ratio_before = float(hidden.abs().amax(-1).mean() / hidden.pow(2).mean(-1).sqrt().mean())
    rotate_model(model)
    rotated = model.model.embed_tokens(x)
    ratio_after = float(rotated.abs().amax(-1).mean() / rotated.pow(2).mean(-1).sqrt().mean())
    assert ratio_before > 15 and ratio_after < 5


def test_expansion_pads_and_stays_exact():
    # No Hadamard matrix of order 90 or 150 exists (not multiples of 4): both are padded.
    model = tiny("qwen2", hidden=90, heads=2, kv_heads=1, head_dim=32, intermediate=150)
    x = ids()
    before = model(x).logits
    rotate_model(model, RotationConfig(expansion="pad"))
    assert model.model.embed_tokens.weight.shape[1] == hadamard.nearest_orders(90)[1]
    assert model.model.layers[0].mlp.down_proj.rotation.out_features == hadamard.nearest_orders(150)[1]
    assert torch.allclose(model(x).logits, before, atol=1e-4, rtol=0)


def test_block_diagonal_option_stays_exact():
    model = tiny("llama", hidden=90, heads=2, kv_heads=1, head_dim=32, intermediate=150)
    x = ids()
    before = model(x).logits
    rotate_model(model, RotationConfig(expansion="block_diagonal"))
    assert model.model.embed_tokens.weight.shape[1] == 90
    assert torch.allclose(model(x).logits, before, atol=1e-4, rtol=0)


def test_no_expansion_raises_naming_the_fix():
    model = tiny("llama", hidden=90, heads=2, kv_heads=1, head_dim=32, intermediate=128)
    with pytest.raises(integrations.DimensionError, match="hidden size 90.*expansion='pad'"):
        rotate_model(model, RotationConfig(expansion="none"))


def test_unknown_family_is_refused_with_the_supported_list():
    cfg = transformers.GPT2Config(n_embd=64, n_layer=1, n_head=2, vocab_size=32)
    model = transformers.GPT2LMHeadModel(cfg)
    with pytest.raises(integrations.UnsupportedModelError, match="llama, mistral, qwen2, qwen3"):
        rotate_model(model)


def test_double_rotation_and_bad_config_are_refused():
    model = tiny("llama", hidden=64, head_dim=16, intermediate=128)
    rotate_model(model)
    with pytest.raises(ValueError, match="already rotated"):
        rotate_model(model)
    with pytest.raises(TypeError):
        rotate_model(tiny("llama", hidden=64, head_dim=16, intermediate=128), config={"r1": True})
    with pytest.raises(ValueError):
        RotationConfig(seed=-1)


@pytest.mark.parametrize("family,dims", CASES, ids=[c[0] for c in CASES])
def test_online_input_rotation_gives_the_same_logits(family, dims):
    # r1="online": norms keep their weights, q/k/v and gate/up inputs are rotated after them.
    model = tiny(family, **dims)
    x = ids()
    before = model(x).logits
    norm_weight = model.model.layers[0].post_attention_layernorm.weight.clone()
    rotate_model(model, RotationConfig(r1="online", randomized=True, seed=2))
    assert torch.allclose(model(x).logits, before, atol=1e-4, rtol=0)
    layer = model.model.layers[0]
    assert torch.equal(layer.post_attention_layernorm.weight, norm_weight)  # not fused
    for module in (layer.self_attn.q_proj, layer.self_attn.v_proj, layer.self_attn.o_proj, layer.mlp.gate_proj, layer.mlp.up_proj):
        assert isinstance(module, integrations.RotatedLinear) and module.rotation.fast


def test_online_input_rotation_pads_without_expanding_the_stream():
    model = tiny("qwen2", hidden=90, heads=2, kv_heads=1, head_dim=32, intermediate=150)
    x = ids()
    before = model(x).logits
    rotate_model(model, RotationConfig(r1="online"))
    assert model.model.embed_tokens.weight.shape[1] == 90  # the residual stream keeps its size
    assert model.model.layers[0].mlp.up_proj.rotation.out_features == hadamard.nearest_orders(90)[1]
    assert torch.allclose(model(x).logits, before, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="'fused' or 'online'"):
        RotationConfig(r1="sideways")
