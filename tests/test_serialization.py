"""Save/reload: rotated FP models as plain HF checkpoints, quantized models with our format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

import quant  # noqa: E402

from integrations import (  # noqa: E402
    QuantizationConfig,
    RotationConfig,
    quantize_model,
    quantizer_sites,
    rotate_model,
)
from integrations.serialization import (  # noqa: E402
    CheckpointError,
    _write_directory,
    load_quantized,
    save_quantized,
    save_rotated_pretrained,
)


def tiny_llama(hidden=576, intermediate=1536, heads=9, kv_heads=3, head_dim=64, layers=1, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=96, hidden_size=hidden, intermediate_size=intermediate,
                                   num_hidden_layers=layers, num_attention_heads=heads,
                                   num_key_value_heads=kv_heads, head_dim=head_dim)
    model = transformers.LlamaForCausalLM(cfg).eval()
    for name, p in model.named_parameters():
        if "norm" in name:  # non-trivial norm weights, so norm fusion matters
            p.data.uniform_(0.5, 1.5)
    return model


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def perplexity(model, ids) -> float:
    out = logits(model, ids)
    nll = torch.nn.functional.cross_entropy(out[:, :-1].reshape(-1, out.shape[-1]), ids[:, 1:].reshape(-1))
    return float(torch.exp(nll))


IDS = torch.randint(0, 96, (2, 24), generator=torch.Generator().manual_seed(7))

PLAIN_LOADER = textwrap.dedent("""
    import sys, torch, transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
    ids = torch.load(sys.argv[2])
    with torch.no_grad():
        torch.save(model(ids).logits, sys.argv[3])
    ours = [m for m in sys.modules if m.split(".")[0] in ("hadamard", "integrations", "quant")]
    assert not ours, ours
""")


def load_in_plain_transformers(path, tmp_path, ids):
    """Logits of the checkpoint as a fresh interpreter computes them with transformers alone."""
    torch.save(ids, tmp_path / "ids.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", PLAIN_LOADER, str(path), str(tmp_path / "ids.pt"),
                           str(tmp_path / "out.pt")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return torch.load(tmp_path / "out.pt")


# ---------------------------------------------------------------- plain HF checkpoint


def test_rotated_fp_model_reloads_in_plain_transformers(tmp_path, randomized=True):
    model = tiny_llama()
    reference = logits(model, IDS)
    rotate_model(model, RotationConfig(randomized=randomized, seed=3, r3=False, r4=False))
    assert (model.model.layers[0].self_attn.q_proj.weight.abs().max()) > 0
    path = save_rotated_pretrained(model, tmp_path / "rotated")
    config = json.loads((path / "config.json").read_text())
    assert config["tie_word_embeddings"] is False
    out = load_in_plain_transformers(path, tmp_path, IDS)
    assert (out - reference).abs().max().item() <= 1e-3
    assert (out - logits(model, IDS)).abs().max().item() <= 1e-4
    # the saved weights are the rotated ones and the norms are unit (fused)
    plain = transformers.AutoModelForCausalLM.from_pretrained(path)
    torch.testing.assert_close(plain.model.layers[0].self_attn.q_proj.weight,
                               model.model.layers[0].self_attn.q_proj.weight, rtol=0, atol=0)
    assert torch.equal(plain.model.norm.weight, torch.ones(576))


def test_plain_checkpoint_refuses_what_transformers_cannot_run(tmp_path):
    online = rotate_model(tiny_llama(), RotationConfig())  # R3, R4 are online
    with pytest.raises(ValueError, match="online rotation"):
        save_rotated_pretrained(online, tmp_path / "a")
    padded = rotate_model(tiny_llama(hidden=90, intermediate=160, heads=2, kv_heads=1, head_dim=32),
                          RotationConfig(r3=False, r4=False))  # 90 -> 92
    with pytest.raises(ValueError, match="zero-padded"):
        save_rotated_pretrained(padded, tmp_path / "b")
    quantized = quantize_model(tiny_llama(), QuantizationConfig.w_a_kv(4, method="rtn"), progress=False)
    with pytest.raises(ValueError, match="quantized"):
        save_rotated_pretrained(quantized, tmp_path / "c")
    assert not any(tmp_path.iterdir())  # nothing half-written


# ---------------------------------------------------------------- quantized checkpoint


@pytest.fixture(scope="module")
def quantized_model():
    """R1-R4 randomized rotation, RTN W3A3KV3, one clip ratio changed (as a search would)."""
    model = rotate_model(tiny_llama(), RotationConfig(randomized=True, seed=5))
    quantize_model(model, QuantizationConfig.w_a_kv(3, method="rtn"), progress=False)
    quantizer_sites(model)["layers.0.down_proj"].clip_ratio = 0.85
    quantizer_sites(model)["layers.0.v_cache"].bits = None
    quantizer_sites(model)["layers.0.k_cache"].keep_first = 1
    return model


def test_quantized_save_load_gives_identical_outputs_and_ppl(tmp_path, quantized_model):
    reference = logits(quantized_model, IDS)
    path = save_quantized(quantized_model, tmp_path / "q")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "hadamard_quant.json", "model.safetensors"]
    loaded = load_quantized(path)
    assert torch.equal(logits(loaded, IDS), reference)
    assert f"{perplexity(loaded, IDS)!r}" == f"{perplexity(quantized_model, IDS)!r}"  # to the last digit
    sites = quantizer_sites(loaded)
    assert sites["layers.0.down_proj"].clip_ratio == 0.85 and sites["layers.0.v_cache"].bits is None
    assert sites["layers.0.k_cache"].keep_first == 1 and sites["layers.0.q_proj"].keep_first == 0
    q = loaded.model.layers[0].self_attn.q_proj.quantized
    assert torch.equal(q.codes, quantized_model.model.layers[0].self_attn.q_proj.quantized.codes)
    # packed codes: about 3 bits a weight on disk, not 32
    n_weights = sum(m.weight.numel() for m in loaded.model.layers[0].modules() if hasattr(m, "quantized"))
    float_bytes = sum(p.numel() * 4 for n, p in loaded.named_parameters() if "embed" in n or "lm_head" in n)
    assert (path / "model.safetensors").stat().st_size - float_bytes < n_weights * 3.6 / 8


def test_gptq_act_order_permutation_round_trips(tmp_path):
    model = rotate_model(tiny_llama(hidden=64, intermediate=128, heads=2, kv_heads=1, head_dim=32, layers=2),
                         RotationConfig())
    calibration = torch.randint(0, 96, (2, 32), generator=torch.Generator().manual_seed(1))
    weights = quant.QuantConfig(bits=3, granularity="group", group_size=32)  # groups keep the act-order perm
    quantize_model(model, QuantizationConfig.w_a_kv(3, weights=weights, act_order=True, kv=None),
                   calibration=calibration, progress=False)
    assert model.model.layers[0].self_attn.q_proj.quantized.perm is not None
    loaded = load_quantized(save_quantized(model, tmp_path / "g"))
    assert torch.equal(logits(loaded, IDS), logits(model, IDS))


def test_unrotated_quantized_model_round_trips(tmp_path):
    model = quantize_model(tiny_llama(hidden=64, intermediate=128, heads=2, kv_heads=1, head_dim=32),
                           QuantizationConfig.w_a_kv(4, method="rtn"), progress=False)
    loaded = load_quantized(save_quantized(model, tmp_path / "u"))
    assert torch.equal(logits(loaded, IDS), logits(model, IDS))


def test_damaged_or_mismatched_checkpoints_are_clear_errors(tmp_path, quantized_model):
    path = save_quantized(quantized_model, tmp_path / "q")
    blob = bytearray((path / "model.safetensors").read_bytes())

    def variant(name, edit):
        target = tmp_path / name
        target.mkdir()
        for f in path.iterdir():
            (target / f.name).write_bytes(f.read_bytes())
        edit(target)
        return target

    def flip_byte(d):
        data = bytearray(blob)
        data[len(data) // 2] ^= 0xFF
        (d / "model.safetensors").write_bytes(bytes(data))

    def edit_meta(change):
        def edit(d):
            meta = json.loads((d / "hadamard_quant.json").read_text())
            change(meta)
            (d / "hadamard_quant.json").write_text(json.dumps(meta))
        return edit

    cases = {
        "checksum": flip_byte,
        "missing": lambda d: (d / "model.safetensors").unlink(),
        "not valid JSON": lambda d: (d / "hadamard_quant.json").write_text("{oops"),
        "format version": edit_meta(lambda m: m.update(format_version=99)),
        "differs from the saved one": edit_meta(lambda m: m["rotation"].update(seed=6)),
        "invalid rotation recipe": edit_meta(lambda m: m["rotation"].update(expansion="zeros")),
        "changed since the checkpoint was written": lambda d: (d / "config.json").write_text(
            (d / "config.json").read_text().replace('"rope_theta"', '"rope_theta_old"')),
        # as a checkpoint written before config.json was checksummed
        "sites differ": lambda d: (edit_meta(lambda m: m.pop("config_file_sha256"))(d), (d / "config.json").write_text(
            (d / "config.json").read_text().replace('"num_hidden_layers": 1', '"num_hidden_layers": 2'))),
        "invalid quantizer settings": edit_meta(lambda m: m["sites"]["layers.0.q_proj"].update(clip_ratio=2.0)),
        "invalid quantizer settings.*'bits'": edit_meta(lambda m: m["sites"]["layers.0.k_proj"].pop("bits")),
        "invalid quantizer settings.*keep_first": edit_meta(lambda m: m["sites"]["layers.0.k_cache"].update(keep_first=-1)),
    }
    for message, edit in cases.items():
        with pytest.raises(CheckpointError, match=message):
            load_quantized(variant("".join(c if c.isalnum() else "_" for c in message), edit))
    with pytest.raises(CheckpointError, match="missing"):
        load_quantized(tmp_path / "nothing-here")


def test_format_version_1_checkpoints_load_without_kept_tokens(tmp_path, quantized_model):
    path = save_quantized(quantized_model, tmp_path / "q")
    meta = json.loads((path / "hadamard_quant.json").read_text())
    assert meta["format_version"] == 2
    meta["format_version"] = 1  # as written before sites carried keep_first
    for settings in meta["sites"].values():
        del settings["keep_first"]
    (path / "hadamard_quant.json").write_text(json.dumps(meta))
    loaded = load_quantized(path)
    assert all(q.keep_first == 0 for q in quantizer_sites(loaded).values())


def test_writes_are_atomic(tmp_path):
    target = tmp_path / "ckpt"
    _write_directory(target, lambda d: (d / "config.json").write_text("first"))

    def failing(d):
        (d / "config.json").write_text("second, half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _write_directory(target, failing)
    assert (target / "config.json").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary directories left
    _write_directory(target, lambda d: (d / "model.safetensors").write_text("third"))
    assert [p.name for p in target.iterdir()] == ["model.safetensors"]


def test_saving_never_deletes_what_is_not_a_checkpoint(tmp_path, quantized_model):
    runs = tmp_path / "runs"
    (runs / "exp1").mkdir(parents=True)
    (runs / "exp1" / "results.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not part of a checkpoint"):
        save_quantized(quantized_model, runs)
    (tmp_path / "afile").write_text("precious")
    with pytest.raises(FileExistsError, match="not a directory"):
        save_quantized(quantized_model, tmp_path / "afile")
    assert (runs / "exp1" / "results.txt").read_text() == "precious"
    assert (tmp_path / "afile").read_text() == "precious"
    assert sorted(p.name for p in runs.iterdir()) == ["exp1"]  # nothing temporary left either
    (tmp_path / "empty").mkdir()
    save_quantized(quantized_model, tmp_path / "empty")  # an empty directory is filled
    save_quantized(quantized_model, tmp_path / "empty")  # and a checkpoint replaced
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["config.json", "hadamard_quant.json",
                                                                       "model.safetensors"]


def test_checkpoints_get_the_modes_of_the_umask(tmp_path, quantized_model):
    old = os.umask(0o022)
    try:
        path = save_quantized(quantized_model, tmp_path / "q")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o755
    assert {f.name: f.stat().st_mode & 0o777 for f in path.iterdir()} == dict.fromkeys(
        ["config.json", "hadamard_quant.json", "model.safetensors"], 0o644)


# ---------------------------------------------------------------- the real model


@pytest.mark.slow
def test_smollm2_rotated_and_quantized_round_trips(tmp_path):
    from integrations import evaluate, load_model, load_text, load_tokenizer, tokenize_windows

    model = load_model()
    tokens = tokenize_windows(load_text(split="eval"), load_tokenizer(), seqlen=256, max_windows=2)
    reference = logits(model, tokens)
    rotate_model(model, RotationConfig(r3=False, r4=False))
    path = save_rotated_pretrained(model, tmp_path / "fp")
    out = load_in_plain_transformers(path, tmp_path, tokens)
    print(f"SmolLM2 rotated (R1+R2) FP, reloaded by plain transformers: max |dlogit| "
          f"{(out - reference).abs().max().item():.3g}")
    assert (out - reference).abs().max().item() <= 1e-3

    quantized = rotate_model(load_model(), RotationConfig(randomized=True))
    quantize_model(quantized, QuantizationConfig.w_a_kv(4, method="rtn"), progress=False)
    before = evaluate(quantized, tokens, progress=False)["ppl"]
    loaded = load_quantized(save_quantized(quantized, tmp_path / "q"))
    after = evaluate(loaded, tokens, progress=False)["ppl"]
    print(f"SmolLM2 W4A4KV4 RTN ppl before save {before!r}, after load {after!r}")
    assert f"{after!r}" == f"{before!r}"


def test_docstring_examples():
    import doctest

    from integrations import serialization

    result = doctest.testmod(serialization, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


def test_online_norm_input_rotation_round_trips(tmp_path):
    from test_integrations_rotation import ids, tiny

    import integrations

    model = tiny("llama", hidden=576, head_dim=64, intermediate=384, vocab=48)
    integrations.rotate_model(model, integrations.RotationConfig(r1="online", randomized=True))
    integrations.quantize_model(model, integrations.QuantizationConfig.w_a_kv(4, method="rtn"), progress=False)
    x = ids()
    before = model(x).logits
    integrations.save_quantized(model, tmp_path / "q")
    reloaded = integrations.load_quantized(tmp_path / "q")
    assert torch.equal(reloaded(x).logits, before)
