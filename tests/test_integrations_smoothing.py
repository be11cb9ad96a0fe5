"""SmoothQuant channel smoothing before the online rotation: exact in FP, the scales it picks, errors."""

import copy

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from integrations import (  # noqa: E402
    QuantizationConfig, RotationConfig, UnsupportedModelError, load_quantized, quantize_model, rotate_model,
    save_quantized, smooth_model,
)
from test_integrations_rotation import ids, tiny  # noqa: E402

SMALL = dict(hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=128, vocab=48)


def logits(model, tokens):
    with torch.no_grad():
        return model(tokens).logits


def smoothed_activations(model, tokens):
    """Per layer, the (tokens, width) outputs of the two norms and the input of down_proj."""
    seen, handles = {}, []

    def keep(key, x):
        seen.setdefault(key, []).append(x.reshape(-1, x.shape[-1]))

    for i, layer in enumerate(model.model.layers):
        for kind in ("input_layernorm", "post_attention_layernorm"):
            handles.append(getattr(layer, kind).register_forward_hook(
                lambda m, a, o, key=f"layers.{i}.{kind}": keep(key, o)))
        handles.append(layer.mlp.down_proj.register_forward_pre_hook(
            lambda m, a, key=f"layers.{i}.down_proj": keep(key, a[0])))
    logits(model, tokens)
    for h in handles:
        h.remove()
    return {k: torch.cat(v) for k, v in seen.items()}


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "qwen3"])
def test_smoothing_then_online_rotation_leaves_the_model_exact(family):
    model = tiny(family, **SMALL).eval()
    tokens = ids()
    before = logits(model, tokens)
    scales = smooth_model(model, tokens, alpha=0.65, progress=False)
    assert len(scales) == 3 * len(model.model.layers)
    assert not all(torch.allclose(s, torch.ones_like(s)) for s in scales.values())  # it did change the weights
    assert (logits(model, tokens) - before).abs().max() < 1e-4
    rotate_model(model, RotationConfig(r1="online"))
    assert (logits(model, tokens) - before).abs().max() < 1e-4


def test_scales_follow_the_smoothquant_formula():
    model = tiny("llama", **SMALL).eval()
    tokens = ids()
    peaks = {k: v.abs().amax(0) for k, v in smoothed_activations(model, tokens).items()}
    layer = model.model.layers[1]
    w_attn = torch.cat([getattr(layer.self_attn, n).weight for n in ("q_proj", "k_proj", "v_proj")]).abs().amax(0)
    w_mlp = torch.cat([layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight]).abs().amax(0)
    w_down = layer.mlp.down_proj.weight.abs().amax(0)
    scales = smooth_model(copy.deepcopy(model), tokens, alpha=0.3, progress=False)
    for kind, w in (("input_layernorm", w_attn), ("post_attention_layernorm", w_mlp), ("down_proj", w_down)):
        expected = peaks[f"layers.1.{kind}"].detach().pow(0.3) / w.detach().pow(0.7)
        torch.testing.assert_close(scales[f"layers.1.{kind}"], expected, rtol=1e-5, atol=0)


def test_alpha_one_flattens_every_channel_of_the_calibration_activations():
    model = tiny("qwen2", **SMALL).eval()
    tokens = ids()
    smooth_model(model, tokens, alpha=1.0, progress=False)
    for name, out in smoothed_activations(model, tokens).items():
        torch.testing.assert_close(out.abs().amax(0), torch.ones(out.shape[1]), rtol=1e-5, atol=0, msg=name)


def test_smoothed_quantized_model_round_trips(tmp_path):
    model = tiny("llama", **SMALL).eval()
    tokens = ids()
    smooth_model(model, tokens, progress=False)
    rotate_model(model, RotationConfig(r1="online"))
    quantize_model(model, QuantizationConfig.w_a_kv(3, method="rtn"), progress=False)
    loaded = load_quantized(save_quantized(model, tmp_path / "q"))
    assert torch.equal(logits(loaded, tokens), logits(model, tokens))


def test_bad_input_is_refused():
    tokens = ids()
    model = tiny("llama", **SMALL).eval()
    for alpha in (-0.1, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\]"):
            smooth_model(model, tokens, alpha=alpha, progress=False)
    rotated = rotate_model(copy.deepcopy(model), RotationConfig(r1="online"))
    with pytest.raises(ValueError, match="before rotate_model"):
        smooth_model(rotated, tokens, progress=False)
    quantized = quantize_model(copy.deepcopy(model), QuantizationConfig.w_a_kv(3, method="rtn"), progress=False)
    with pytest.raises(ValueError, match="already wrapped"):
        smooth_model(quantized, tokens, progress=False)
    with pytest.raises(ValueError, match="windows must have shape"):
        smooth_model(model, tokens[0], progress=False)
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.model.layers[1].mlp.up_proj.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        smooth_model(broken, tokens, progress=False)
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=48))
    with pytest.raises(UnsupportedModelError):
        smooth_model(gpt2, tokens, progress=False)
