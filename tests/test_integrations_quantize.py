"""Quantizing tiny random models: sites, RTN/GPTQ, clip search, evaluation, errors."""

import copy

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import quant  # noqa: E402
import integrations  # noqa: E402
from integrations import QuantizationConfig, RotationConfig, quantize_model, quantizer_sites, rotate_model  # noqa: E402
from test_integrations_rotation import ids, tiny  # noqa: E402

VOCAB = 64


def windows(n=2, length=32, seed=2):
    return torch.randint(0, VOCAB, (n, length), generator=torch.Generator().manual_seed(seed))


def small(family="llama"):
    return tiny(family, hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=128, layers=2)


def test_sites_are_named_per_layer_and_mutable():
    model = rotate_model(small())
    quantize_model(model, QuantizationConfig(weights=None))
    sites = quantizer_sites(model)
    expected = {f"layers.{i}.{s}" for i in range(2) for s in
                ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "k_cache", "v_cache")}
    assert set(sites) == expected
    x = ids(VOCAB)
    quantized = model(x).logits
    for site in sites.values():
        site.bits = None  # all off: the rotated FP model again
    fp = model(x).logits
    assert not torch.allclose(quantized, fp, atol=1e-3)
    sites["layers.1.k_cache"].bits = 2
    sites["layers.1.k_cache"].clip_ratio = 0.5
    assert not torch.allclose(model(x).logits, fp, atol=1e-4)


def test_sites_need_quantizers():
    with pytest.raises(ValueError, match="quantize_model"):
        quantizer_sites(small())


def test_clip_ratio_overrides_by_pattern():
    model = small()
    cfg = QuantizationConfig(weights=None, clip_ratios={"layers.*.down_proj": 0.7, "layers.1.k_cache": 0.5})
    quantize_model(model, cfg)
    sites = quantizer_sites(model)
    assert sites["layers.0.down_proj"].clip_ratio == 0.7 and sites["layers.1.down_proj"].clip_ratio == 0.7
    assert sites["layers.1.k_cache"].clip_ratio == 0.5 and sites["layers.0.k_cache"].clip_ratio == 1.0
    with pytest.raises(ValueError, match="matches no site"):
        quantize_model(small(), QuantizationConfig(weights=None, clip_ratios={"layer.0.q": 0.5}))


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_rtn_weights_are_on_the_grid_and_bits_reported(family):
    model = rotate_model(small(family))
    cfg = QuantizationConfig.w_a_kv(4, method="rtn", weights=quant.QuantConfig(bits=4, granularity="group", group_size=32))
    quantize_model(model, cfg)
    linears = integrations.quantized_linears(model)
    assert len(linears) == 14
    for m in linears.values():
        assert torch.equal(m.weight, m.quantized.dequantize())
        codes = m.quantized.codes
        assert int(codes.min()) >= -7 and int(codes.max()) <= 7
    assert 4 < integrations.weight_bits(model) < 5.5
    assert torch.isfinite(model(ids(VOCAB)).logits).all()


def test_gptq_beats_rtn_on_the_layer_outputs():
    # Same model, same activations: GPTQ (Hessian-aware) must give a lower
    # output error than RTN, measured against the FP model.
    x = windows(4, 32)
    ref = rotate_model(small())
    fp = integrations.evaluate(ref, x, keep_logits=True, progress=False)
    errs = {}
    for method in ("rtn", "gptq"):
        model = rotate_model(small())
        cfg = QuantizationConfig(weights=quant.QuantConfig(bits=3), method=method, act_order=True,
                                 activations=None, kv=None)
        quantize_model(model, cfg, calibration=x, progress=False)
        errs[method] = integrations.evaluate(model, x, fp_logits=fp["logprobs"], progress=False)["kld"]
    assert errs["gptq"] < errs["rtn"], errs


def test_clip_search_picks_ratios_from_the_grid():
    model = rotate_model(small())
    cfg = QuantizationConfig.w_a_kv(3, clip_search=True, clip_grid=(1.0, 0.8, 0.6))
    quantize_model(model, cfg, calibration=windows(2, 32), progress=False)
    ratios = {s.clip_ratio for s in quantizer_sites(model).values()}
    assert ratios <= {1.0, 0.8, 0.6}
    assert ratios != {1.0}  # 3-bit per-token quantizers of Gaussian-like inputs prefer clipping


def test_gptq_without_calibration_names_the_fix():
    with pytest.raises(ValueError, match="calibration=tokenize_windows"):
        quantize_model(small(), QuantizationConfig())


def test_bad_configs_are_refused():
    with pytest.raises(ValueError):
        quant.QuantConfig(bits=9)
    with pytest.raises(ValueError, match="granularity 'token' or 'group'"):
        QuantizationConfig(activations=quant.QuantConfig(bits=3, granularity="channel"))
    with pytest.raises(ValueError, match="clip_ratios"):
        QuantizationConfig(clip_ratios={"layers.*": 1.5})
    with pytest.raises(TypeError):
        QuantizationConfig(weights=3)
    with pytest.raises(TypeError, match="integer torch tensor"):
        quantize_model(small(), QuantizationConfig(), calibration=[[1, 2, 3]])


def test_evaluate_matches_a_direct_computation():
    model = small()
    x = windows(2, 16)
    res = integrations.evaluate(model, x, keep_logits=True, progress=False)
    logits = model(x).logits[:, :-1]
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), x[:, 1:].reshape(-1))
    assert res["ppl"] == pytest.approx(float(nll.exp()), rel=1e-4)
    same = integrations.evaluate(model, x, fp_logits=res["logprobs"], progress=False)
    assert same["kld"] == pytest.approx(0, abs=1e-3) and same["top1"] == 1.0
    with pytest.raises(ValueError, match="windows"):
        integrations.evaluate(model, x[:1], fp_logits=res["logprobs"], progress=False)


def test_text_and_windows():
    cal, ev = integrations.load_text(split="calibration"), integrations.load_text(split="eval")
    assert len(cal) > 100_000 and len(ev) > 2 * len(cal) - 10_000
    assert ev[:1000] not in cal
    with pytest.raises(ValueError, match="split"):
        integrations.load_text(split="train")
    with pytest.raises(FileNotFoundError, match="text file"):
        integrations.load_text("/nonexistent/file.txt")

    class Tok:
        def __call__(self, text, return_tensors):
            return type("E", (), {"input_ids": torch.arange(len(text.split()))[None]})()

    w = integrations.tokenize_windows("a " * 100, Tok(), seqlen=30)
    assert w.shape == (3, 30) and int(w[1, 0]) == 30
    with pytest.raises(ValueError, match="fewer than one window"):
        integrations.tokenize_windows("a " * 10, Tok(), seqlen=30)


def _kld_after(cfg, x, fp):
    model = rotate_model(small())
    quantize_model(model, cfg, calibration=x, progress=False)
    out = integrations.evaluate(model, x, fp_logits=fp["logprobs"], progress=False)
    return model, out["kld"]


def test_float_input_target_without_activation_quantizers_is_plain_gptq():
    x = windows(2, 32)
    fp = integrations.evaluate(rotate_model(small()), x, keep_logits=True, progress=False)
    base = QuantizationConfig(weights=quant.QuantConfig(bits=3), activations=None, kv=None)
    plain, _ = _kld_after(base, x, fp)
    same, _ = _kld_after(QuantizationConfig(**{**base.__dict__, "gptq_target": "float-input"}), x, fp)
    for (name, a), b in zip(integrations.quantized_linears(plain).items(), integrations.quantized_linears(same).values()):
        assert torch.allclose(a.weight, b.weight, atol=1e-5), name


@pytest.mark.parametrize("target", ["float-input", "float-model"])
def test_float_targets_lower_the_error_of_w3a3(target):
    x = windows(4, 64)
    fp = integrations.evaluate(rotate_model(small()), x, keep_logits=True, progress=False)
    cfg = QuantizationConfig.w_a_kv(3, activations=quant.QuantConfig(bits=3, granularity="token", clip_ratio=0.8))
    _, plain = _kld_after(cfg, x, fp)
    _, better = _kld_after(QuantizationConfig(**{**cfg.__dict__, "gptq_target": target}), x, fp)
    assert better < plain, (better, plain)


def test_bad_gptq_target_is_refused():
    with pytest.raises(ValueError, match="gptq_target must be one of"):
        QuantizationConfig(gptq_target="fp")
    for damp in (0.0, True, float("nan"), float("inf")):  # the rules of quant.gptq_quantize
        with pytest.raises(ValueError, match="target_damp"):
            QuantizationConfig(target_damp=damp)


def test_site_rows_keep_every_head_of_the_tokens_they_keep():
    from integrations._calibration import SiteRows

    cache = torch.arange(2 * 3 * 5 * 4, dtype=torch.float16).reshape(2, 3, 5, 4)  # (batch, heads, seq, head_dim)
    rows = SiteRows(tokens=7)
    rows.add(cache)
    rows.add(cache)  # over budget: ignored
    got = rows.tensor()
    assert got.dtype == torch.float32 and got.shape == (21, 4)
    tokens = cache.transpose(1, 2).reshape(10, 3, 4)[:7]  # (token, head, head_dim)
    assert torch.equal(got, tokens.reshape(21, 4).float())
    projection = SiteRows(tokens=3)
    projection.add(torch.ones(2, 2, 8))
    assert projection.tensor().shape == (3, 8)
    assert SiteRows(tokens=3).tensor() is None


def test_kept_sink_token_sees_its_own_float_keys_and_values():
    # Position 0 attends only to itself: with its K/V kept (and nothing else
    # quantized) its output is the float model's; without, it is not.
    base = small()
    ids_ = windows(1, 24)
    with torch.no_grad():
        reference = base(ids_).logits
    outputs = {}
    for keep in (0, 1):
        model = copy.deepcopy(base)
        config = QuantizationConfig(weights=None, activations=None, kv=quant.KVQuantConfig(bits=2, head_dim=16, keep_first=keep))
        quantize_model(model, config, progress=False)
        assert all(q.keep_first == (keep if name.endswith("_cache") else 0) for name, q in quantizer_sites(model).items())
        with torch.no_grad():
            outputs[keep] = model(ids_).logits
    assert torch.allclose(outputs[1][0, 0], reference[0, 0], atol=1e-5)
    assert not torch.allclose(outputs[0][0, 0], reference[0, 0], atol=1e-3)
    assert not torch.allclose(outputs[1][0, 1:], reference[0, 1:], atol=1e-3)  # later tokens still quantized


def test_clip_search_leaves_kept_tokens_out_of_its_samples():
    from integrations._calibration import SiteRows, site_output_error
    from integrations._quantized import ActivationQuantizer

    cache = torch.randn(1, 2, 5, 8)
    cache[:, :, 0] *= 100  # a sink token: kept in full precision, so no error to fit
    rows = SiteRows(tokens=10, skip_first=1)
    rows.add(cache)
    assert torch.equal(rows.tensor(), cache[:, :, 1:].transpose(1, 2).reshape(8, 8))
    quantizer = ActivationQuantizer.from_config(quant.KVQuantConfig(bits=3, head_dim=8, keep_first=1))
    samples = rows.tensor()
    # sampled rows are all quantized, whatever their position in the sample
    assert site_output_error(quantizer, samples, None) == float((quantizer.quantize_rows(samples) - samples).pow(2).sum()) > 0
    assert torch.equal(quantizer(cache)[:, :, :1], cache[:, :, :1])
    with pytest.raises(ValueError, match="keep_first"):
        ActivationQuantizer(3, keep_first=-2)
    assert "keep_first=1" in repr(quantizer)
