"""Tests of the GBS driver on a tiny rotated, quantized Llama (integrations/gbs.py)."""

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
integrations = pytest.importorskip("integrations")

from integrations import gbs  # noqa: E402
from quant.gbs import bisect_ratio, site_order  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    # Tiny matrices: one thread avoids thread thrashing on a loaded 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield _tiny_model()
    finally:
        torch.set_num_threads(threads)


def _tiny_model():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, vocab_size=50,
    )
    model = transformers.LlamaForCausalLM(cfg).eval()
    integrations.rotate_model(model)
    integrations.quantize_model(
        model, integrations.QuantizationConfig.w_a_kv(3, method="rtn"), progress=False
    )
    ids = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(1))
    return model, ids


def test_layer_runner_matches_the_model(tiny):
    model, ids = tiny
    runner = gbs._LayerRunner(model, ids, batch_size=1)
    h = runner.layers_forward(runner.embed(), 0, 1)
    h = runner.layers_forward(h, 1, 2)
    ref = integrations.evaluate(model, ids, progress=False)["ppl"]
    assert runner.head_scores(h) == pytest.approx(ref, rel=1e-5)


def test_prefix_cache_gives_exactly_the_faithful_ratios(tiny):
    model, ids = tiny
    faithful = gbs.calibrate_clip_ratios(model, ids, method="faithful", max_iter=2, progress=False)
    prefix = gbs.calibrate_clip_ratios(model, ids, method="prefix", max_iter=2, progress=False)
    assert faithful == prefix
    sites = integrations.quantizer_sites(model)
    assert set(faithful) == set(sites)


@pytest.mark.parametrize("method", ["fast", "kl", "local"])
def test_calibration_leaves_every_site_on_at_its_ratio(tiny, method):
    model, ids = tiny
    ratios = gbs.calibrate_clip_ratios(model, ids, method=method, max_iter=3, progress=False)
    sites = integrations.quantizer_sites(model)
    for name, site in sites.items():
        assert site.bits == 3
        assert site.clip_ratio == ratios[name]
        assert 0 < ratios[name] < 1
    if method != "local":  # the local objective searches the V cache on its own
        for i in range(2):
            assert ratios[f"layers.{i}.v_cache"] == ratios[f"layers.{i}.v_proj"]


def _site_input(model, ids, site):
    """The input of one quantizer site in a plain forward pass (token-major rows)."""
    rows = []

    def hook(module, args):
        x = args[0].detach()
        if x.dim() == 4:
            x = x.transpose(1, 2)
        rows.append(x.reshape(-1, x.shape[-1]).float())

    handle = integrations.quantizer_sites(model)[site].register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for row in ids:
                model(row[None], use_cache=False)
    finally:
        handle.remove()
    return torch.cat(rows)


@pytest.mark.parametrize("site, weight", [("layers.0.q_proj", "self_attn.q_proj"), ("layers.0.k_cache", None)])
def test_local_objective_is_the_site_output_error_under_the_papers_bisection(tiny, site, weight):
    model, ids = tiny
    sites = integrations.quantizer_sites(model)
    for s in sites.values():  # the first searched sites see the model with every site off
        s.bits = None
    x = _site_input(model, ids, site)
    w = None if weight is None else model.model.layers[0].get_submodule(weight).weight.detach()
    q = sites[site]

    def error(r):
        q.bits, q.clip_ratio = 3, r
        delta = q(x) - x
        ref = x if w is None else x @ w.T
        if w is not None:
            delta = delta @ w.T
        q.bits = None
        return float(delta.pow(2).sum() / ref.pow(2).sum())

    expected = bisect_ratio(error, max_iter=4).ratio
    for s in sites.values():
        s.bits = 3
    ratios = gbs.calibrate_clip_ratios(model, ids, method="local", max_iter=4, progress=False)
    assert ratios[site] == expected


def test_the_local_search_visits_the_v_cache_as_a_site_of_its_own(tiny, monkeypatch):
    model, ids = tiny
    probed = []
    original = gbs._SiteSwitch.set

    def spy(self, frozen, probe=None, ratio=None):
        original(self, frozen, probe, ratio)
        if probe is not None and probe not in probed:
            probed.append(probe)
            on = {n for n, s in self.sites.items() if s.bits is not None}
            assert on == set(frozen) | {probe}

    monkeypatch.setattr(gbs._SiteSwitch, "set", spy)
    gbs.calibrate_clip_ratios(model, ids, method="local", max_iter=1, progress=False)
    assert probed == [f"layers.{i}.{s}" for i in range(2) for s in gbs.LOCAL_SITES]


def test_the_search_switches_sites_on_one_at_a_time(tiny, monkeypatch):
    model, ids = tiny
    seen = []
    original = gbs._SiteSwitch.set

    def spy(self, frozen, probe=None, ratio=None):
        original(self, frozen, probe, ratio)
        if probe is not None:
            seen.append((probe, sorted(n for n, s in self.sites.items() if s.bits is not None)))

    monkeypatch.setattr(gbs._SiteSwitch, "set", spy)
    gbs.calibrate_clip_ratios(model, ids, method="fast", max_iter=1, progress=False)
    order = list(dict.fromkeys(p for p, _ in seen))
    assert order == site_order(2)
    for probe, on in seen:
        earlier = order[: order.index(probe) + 1]
        expected = set(earlier) | {n.replace("v_proj", "v_cache") for n in earlier if "v_proj" in n}
        assert set(on) == expected


def test_truncated_search_is_a_prefix_and_leaves_later_sites_off(tiny):
    model, ids = tiny
    full = gbs.calibrate_clip_ratios(model, ids, method="prefix", max_iter=2, progress=False)
    first = gbs.calibrate_clip_ratios(model, ids, method="faithful", max_iter=2, layers=1, progress=False)
    assert first == {k: v for k, v in full.items() if k.startswith("layers.0.")}
    sites = integrations.quantizer_sites(model)
    assert all(s.bits is None for n, s in sites.items() if n.startswith("layers.1."))
    for site in sites.values():
        site.bits = 3


def test_resume_and_save_load(tiny, tmp_path):
    model, ids = tiny
    state = tmp_path / "state.json"
    ratios = gbs.calibrate_clip_ratios(model, ids, max_iter=2, state_path=state, progress=False)
    assert json.loads(state.read_text())["layers_done"] == [0, 1]
    again = gbs.calibrate_clip_ratios(model, ids, max_iter=2, state_path=state, progress=False)
    assert again == ratios
    with pytest.raises(ValueError, match="another search"):
        gbs.calibrate_clip_ratios(model, ids, max_iter=3, state_path=state, progress=False)
    path = tmp_path / "ratios.json"
    gbs.save_clip_ratios(path, ratios, model="tiny")
    loaded = gbs.load_clip_ratios(path)
    assert loaded == ratios
    sites = integrations.quantizer_sites(model)
    for site in sites.values():
        site.clip_ratio = 1.0
    gbs.apply_clip_ratios(model, loaded)
    assert all(sites[n].clip_ratio == r for n, r in loaded.items())


def test_an_interrupted_search_leaves_the_model_as_it_came(tiny, monkeypatch):
    model, ids = tiny
    sites = integrations.quantizer_sites(model)
    before = {n: (s.bits, s.clip_ratio) for n, s in sites.items()}

    def boom(self, site, candidates, frozen):
        raise KeyboardInterrupt

    monkeypatch.setattr(gbs._CachedObjective, "__call__", boom)
    with pytest.raises(KeyboardInterrupt):
        gbs.calibrate_clip_ratios(model, ids, method="fast", progress=False)
    monkeypatch.setattr(gbs._LocalObjective, "__call__", boom)
    with pytest.raises(KeyboardInterrupt):
        gbs.calibrate_clip_ratios(model, ids, progress=False)
    assert {n: (s.bits, s.clip_ratio) for n, s in sites.items()} == before


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"method": "grid"}, ValueError, "method must be one of"),
        ({"window": 0}, ValueError, "window"),
        ({"method": "local", "tokens": 0}, ValueError, "tokens must be"),
        ({"layers": 3}, ValueError, "at most"),
        ({"max_iter": -1}, ValueError, "max_iter"),
    ],
)
def test_bad_settings(tiny, kwargs, exc, msg):
    model, ids = tiny
    with pytest.raises(exc, match=msg):
        gbs.calibrate_clip_ratios(model, ids, progress=False, **kwargs)


@pytest.mark.parametrize(
    "ids, exc, msg",
    [
        ([[1, 2, 3]], TypeError, "torch.Tensor"),
        (torch.zeros(2, 4), TypeError, "integer token ids"),
        (torch.zeros(4, dtype=torch.long), ValueError, "shape"),
        (torch.full((1, 4), 50), ValueError, r"\[0, 50\)"),
    ],
)
def test_bad_calibration(tiny, ids, exc, msg):
    model, _ = tiny
    with pytest.raises(exc, match=msg):
        gbs.calibrate_clip_ratios(model, ids, progress=False)


def test_apply_refuses_bad_ratios_and_unknown_sites(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        gbs.apply_clip_ratios(model, {"layers.0.q_proj": 0.0})
    with pytest.raises(KeyError, match="no quantizer site"):
        gbs.apply_clip_ratios(model, {"layers.9.q_proj": 0.5})


def test_a_site_without_bits_needs_a_bit_width(tiny):
    model, ids = tiny
    sites = integrations.quantizer_sites(model)
    sites["layers.0.q_proj"].bits = None
    try:
        with pytest.raises(ValueError, match="is off and no bit width"):
            gbs.calibrate_clip_ratios(model, ids, progress=False)
    finally:
        sites["layers.0.q_proj"].bits = 3


def test_quantize_with_gbs_searches_first_then_fits_the_weights_to_the_ratios():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, vocab_size=50,
    )
    model = integrations.rotate_model(transformers.LlamaForCausalLM(cfg).eval())
    ids = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(1))
    config = integrations.QuantizationConfig.w_a_kv(3, clip_search=True, gptq_target="float-input")
    ratios = gbs.quantize_with_gbs(model, config, ids, max_iter=2, progress=False)
    sites = integrations.quantizer_sites(model)
    assert set(ratios) == set(sites)
    assert all(sites[n].clip_ratio == r and sites[n].bits == 3 for n, r in ratios.items())
    assert all(m.quantized is not None for m in integrations.quantized_linears(model).values())
    with pytest.raises(TypeError, match="QuantizationConfig"):
        gbs.quantize_with_gbs(model, {"bits": 3}, ids)
