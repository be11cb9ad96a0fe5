"""Tests of the model-agnostic gradual binary search (quant/gbs.py)."""

import json
import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.gbs import (
    LAYER_SITES,
    GBSConfig,
    GBSResult,
    bisect_ratio,
    bisect_ratio_batched,
    gradual_binary_search,
    load_ratios,
    site_order,
)

targets = st.floats(min_value=0.002, max_value=0.998)
shapes = st.sampled_from(
    [
        lambda x, t: (x - t) ** 2,
        lambda x, t: abs(x - t),
        lambda x, t: math.log1p(50 * abs(x - t)),  # flat far away, sharp near t
        lambda x, t: -math.exp(-((x - t) ** 2) / 0.01),
    ]
)


def reference_bisection(f, max_iter, tol):
    """The issue's rules, transcribed independently of quant.gbs."""
    a, b, m = 0.0, 1.0, 0.5
    fm = f(m)
    seen = [m]
    k = 0
    while k < max_iter and b - a > tol:
        x = (a + m) / 2 if k % 2 == 0 else (m + b) / 2
        fx = f(x)
        seen.append(x)
        if fx < fm:
            if x < m:
                b = m
            else:
                a = m
            m, fm = x, fx
        elif x < m:
            a = x
        else:
            b = x
        k += 1
    return m, seen


@settings(max_examples=200, deadline=None)
@given(t=targets, shape=shapes)
def test_bisection_finds_minimum_of_unimodal_function_within_tol(t, shape):
    res = bisect_ratio(lambda x: shape(x, t), max_iter=64, tol=1e-3)
    a, b = res.interval
    assert b - a <= 1e-3
    assert a <= t <= b
    assert abs(res.ratio - t) <= 1e-3


@settings(max_examples=100, deadline=None)
@given(t=targets, shape=shapes, max_iter=st.integers(0, 20))
def test_bisection_follows_the_papers_rules(t, shape, max_iter):
    ratio, seen = reference_bisection(lambda x: shape(x, t), max_iter, 1e-3)
    res = bisect_ratio(lambda x: shape(x, t), max_iter=max_iter)
    assert res.ratio == ratio
    assert [x for x, _ in res.probes] == seen
    assert len(res.probes) <= max_iter + 1


def test_bisection_first_probes_alternate_sides():
    # Objective that always prefers the probe: m walks 0.5 -> 0.25 -> 0.375...
    res = bisect_ratio(lambda x: -len(str(x)) if x != 0.5 else 0.0, max_iter=3)
    assert [x for x, _ in res.probes][:3] == [0.5, 0.25, 0.375]
    # Objective that never prefers the probe: cuts on both sides of 0.5.
    res = bisect_ratio(lambda x: abs(x - 0.5), max_iter=4)
    assert [x for x, _ in res.probes] == [0.5, 0.25, 0.75, 0.375, 0.625]
    assert res.ratio == 0.5


@settings(max_examples=100, deadline=None)
@given(t=targets, shape=shapes, max_iter=st.integers(0, 16), lookahead=st.integers(1, 4))
def test_batched_bisection_equals_sequential(t, shape, max_iter, lookahead):
    calls = []

    def batch(xs):
        calls.append(len(xs))
        return [shape(x, t) for x in xs]

    seq = bisect_ratio(lambda x: shape(x, t), max_iter=max_iter)
    bat = bisect_ratio_batched(batch, max_iter=max_iter, lookahead=lookahead)
    assert bat == seq
    assert all(n <= 2**lookahead - 1 for n in calls)
    # lookahead steps per call (after the midpoint's own call)
    assert len(calls) - 1 <= math.ceil(max_iter / lookahead)


def test_bisection_ties_and_infinity_do_not_move_the_midpoint():
    res = bisect_ratio(lambda x: 1.0, max_iter=10)
    assert res.ratio == 0.5
    res = bisect_ratio(lambda x: 0.0 if x == 0.5 else math.inf, max_iter=10)
    assert res.ratio == 0.5


@pytest.mark.parametrize("bad", [math.nan, -math.inf, "x", None])
def test_bisection_refuses_bad_objective_values(bad):
    with pytest.raises(ValueError, match="objective returned"):
        bisect_ratio(lambda x: bad)


def test_batched_bisection_refuses_wrong_number_of_values():
    with pytest.raises(ValueError, match="returned 1 values for 3"):
        bisect_ratio_batched(lambda xs: [0.0], lookahead=2)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"max_iter": -1}, ValueError, "max_iter"),
        ({"max_iter": 2.0}, TypeError, "max_iter"),
        ({"tol": 0.0}, ValueError, "tol"),
        ({"tol": math.nan}, ValueError, "tol"),
        ({"tol": "1e-3"}, TypeError, "tol"),
        ({"reverse": 1}, TypeError, "reverse"),
        ({"lookahead": 0}, ValueError, "lookahead"),
        ({"sites": ()}, TypeError, "sites"),
        ({"sites": ("q_proj", "q_proj")}, ValueError, "unique"),
        ({"sites": ("layers.q",)}, ValueError, "'.'"),
        ({"shared": (("v_cache", "nope"),)}, ValueError, "not in sites"),
        ({"shared": (("q_proj", "k_proj"),)}, ValueError, "also a searched"),
    ],
)
def test_config_validation(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        GBSConfig(**kwargs)


def test_site_order_is_the_papers():
    order = site_order(3)
    assert order[:8] == [f"layers.0.{s}" for s in LAYER_SITES]
    assert LAYER_SITES == (
        "q_proj", "k_proj", "v_proj", "k_cache", "o_proj", "gate_proj", "up_proj", "down_proj"
    )
    assert [n.split(".")[1] for n in order] == [str(i) for i in range(3) for _ in range(8)]
    rev = site_order(3, GBSConfig(reverse=True))
    assert rev == list(reversed(order))
    with pytest.raises(ValueError, match="num_layers"):
        site_order(0)


class RecordingObjective:
    """Separable synthetic objective: each site's best ratio is known."""

    def __init__(self, num_layers, sites=LAYER_SITES, fail_after=None):
        self.best = {
            f"layers.{i}.{s}": 0.05 + 0.9 * ((7 * i + 3 * j) % 11) / 10
            for i in range(num_layers)
            for j, s in enumerate(sites)
        }
        self.calls = []
        self.fail_after = fail_after

    def __call__(self, site, candidates, frozen):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append((site, tuple(candidates), dict(frozen)))
        base = sum((r - self.best[n]) ** 2 for n, r in frozen.items() if n in self.best)
        return [base + (r - self.best[site]) ** 2 for r in candidates]


def test_greedy_visits_sites_in_order_with_later_sites_off():
    obj = RecordingObjective(3)
    res = gradual_binary_search(obj, 3, GBSConfig(max_iter=6))
    visited = []
    for site, _, frozen in obj.calls:
        if not visited or visited[-1] != site:
            visited.append(site)
            # every earlier searched site is frozen, no later one
            earlier = set(visited[:-1])
            followers = {n.replace("v_proj", "v_cache") for n in earlier if n.endswith("v_proj")}
            assert set(frozen) == earlier | followers
    assert visited == site_order(3)
    for i in range(3):
        assert res.ratios[f"layers.{i}.v_cache"] == res.ratios[f"layers.{i}.v_proj"]
    assert set(res.ratios) == set(site_order(3)) | {f"layers.{i}.v_cache" for i in range(3)}
    assert res.probes == sum(len(c) for _, c, _ in obj.calls)


def test_greedy_reversed_visits_last_layer_first():
    obj = RecordingObjective(2)
    gradual_binary_search(obj, 2, GBSConfig(max_iter=2, reverse=True))
    visited = list(dict.fromkeys(site for site, _, _ in obj.calls))
    assert visited == site_order(2, GBSConfig(reverse=True))
    assert visited[0] == "layers.1.down_proj"


def test_greedy_finds_each_sites_minimum():
    obj = RecordingObjective(2)
    res = gradual_binary_search(obj, 2, GBSConfig(max_iter=30))
    for name, best in obj.best.items():
        assert abs(res.ratios[name] - best) <= 1e-3


def test_resume_after_kill_gives_the_same_result(tmp_path):
    cfg = GBSConfig(max_iter=5)
    full = gradual_binary_search(RecordingObjective(4), 4, cfg)
    state = tmp_path / "state.json"
    per_layer = len(LAYER_SITES) * 6  # 1 + max_iter calls per site
    killed = RecordingObjective(4, fail_after=2 * per_layer + 17)  # mid layer 2
    with pytest.raises(KeyboardInterrupt):
        gradual_binary_search(killed, 4, cfg, state_path=state, fingerprint={"m": "x"})
    saved = json.loads(state.read_text())
    assert saved["layers_done"] == [0, 1]
    assert [p for p in os.listdir(tmp_path)] == ["state.json"]  # no temp file left
    again = RecordingObjective(4)
    res = gradual_binary_search(again, 4, cfg, state_path=state, fingerprint={"m": "x"})
    assert res.ratios == full.ratios
    assert res.values == full.values
    assert {c[0].split(".")[1] for c in again.calls} == {"2", "3"}  # layers 0, 1 skipped
    assert load_ratios(state) == res.ratios


def test_resume_refuses_a_state_of_another_search(tmp_path):
    state = tmp_path / "state.json"
    gradual_binary_search(RecordingObjective(2), 2, GBSConfig(max_iter=1), state_path=state)
    with pytest.raises(ValueError, match="another search"):
        gradual_binary_search(RecordingObjective(2), 2, GBSConfig(max_iter=2), state_path=state)
    with pytest.raises(ValueError, match="another search"):
        gradual_binary_search(
            RecordingObjective(2), 2, GBSConfig(max_iter=1), state_path=state,
            fingerprint={"bits": 3},
        )
    other = tmp_path / "other.json"
    other.write_text('{"ratios": {}}')
    with pytest.raises(ValueError, match="not a GBS state"):
        gradual_binary_search(RecordingObjective(2), 2, GBSConfig(max_iter=1), state_path=other)


def test_on_layer_done_and_progress_bar(capsys):
    seen = []
    gradual_binary_search(
        RecordingObjective(2), 2, GBSConfig(max_iter=1), progress=True,
        on_layer_done=lambda layer, frozen: seen.append((layer, len(frozen))),
    )
    assert seen == [(0, 9), (1, 18)]
    assert "GBS" in capsys.readouterr().err


def test_result_apply_save_load(tmp_path):
    class Site:
        clip_ratio, bits = 1.0, None

    res = GBSResult({"layers.0.q_proj": 0.5, "layers.0.v_cache": 0.25}, {"layers.0.q_proj": 1.0})
    sites = {"layers.0.q_proj": Site(), "layers.0.v_cache": Site(), "layers.0.k_proj": Site()}
    res.apply(sites, bits=4)
    assert (sites["layers.0.q_proj"].clip_ratio, sites["layers.0.q_proj"].bits) == (0.5, 4)
    assert sites["layers.0.k_proj"].clip_ratio == 1.0
    with pytest.raises(KeyError, match="no quantizer site"):
        res.apply({"layers.0.q_proj": Site()})
    path = tmp_path / "ratios.json"
    res.save(path, model="test")
    assert load_ratios(path) == res.ratios
    assert json.loads(path.read_text())["model"] == "test"


@pytest.mark.parametrize(
    "text, msg",
    [
        ("[]", "no 'ratios'"),
        ('{"ratios": 3}', "no 'ratios'"),
        ('{"ratios": {"a": 0}}', r"in \(0, 1\]"),
        ('{"ratios": {"a": 1.5}}', r"in \(0, 1\]"),
        ('{"ratios": {"a": true}}', r"in \(0, 1\]"),
    ],
)
def test_load_ratios_refuses_bad_files(tmp_path, text, msg):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=msg):
        load_ratios(path)


@pytest.mark.parametrize("lookahead", [1, 2, 3])
def test_probes_count_every_candidate_the_objective_scored(lookahead):
    obj = RecordingObjective(2)
    res = gradual_binary_search(obj, 2, GBSConfig(max_iter=8, lookahead=lookahead))
    assert res.probes == sum(len(candidates) for _, candidates, _ in obj.calls)


def test_resume_accepts_a_fingerprint_that_json_reshapes(tmp_path):
    state = tmp_path / "state.json"
    fingerprint = {"shape": (3, 3), 1: "one"}  # JSON gives back a list and a str key
    first = gradual_binary_search(RecordingObjective(2), 2, GBSConfig(max_iter=2), state_path=state,
                                  fingerprint=fingerprint)
    again = RecordingObjective(2)
    res = gradual_binary_search(again, 2, GBSConfig(max_iter=2), state_path=state, fingerprint=fingerprint)
    assert res.ratios == first.ratios and again.calls == []
    with pytest.raises(TypeError, match="JSON"):
        gradual_binary_search(RecordingObjective(2), 2, GBSConfig(max_iter=2), fingerprint={"f": object()})
