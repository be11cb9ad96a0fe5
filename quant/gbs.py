"""Gradual Binary Search (GBS): greedy per-site search of clipping ratios.

The seed paper (Maisonnave et al., arXiv 2504.13989) reaches W3A3KV3 by
choosing one clipping ratio for every activation and KV-cache quantizer of a
rotated model.  The quantizers ("sites") are switched on one at a time, in a
fixed order, while every later site stays in high precision; the ratio of the
site being switched on is found by an alternating-side bisection of an
objective (the calibration perplexity in the paper), then frozen (greedy).

This module is the model-agnostic part: the bisection, the visiting order,
the greedy loop, a resumable JSON state and the result.  It knows no model:
the objective is a callable supplied by the caller (``integrations.gbs``
builds the model objectives).  Lower objective values are better.

References
----------
.. [1] L. Maisonnave, C. Moineau, O. Bichler, F. Rastello, "Gradual Binary
   Search and Dimension Expansion: a general method for activation
   quantization in LLMs", arXiv:2504.13989, 2025.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from typing import Callable, Iterable, Mapping, Sequence

__all__ = [
    "LAYER_SITES",
    "SHARED_SITES",
    "GBSConfig",
    "Bisection",
    "GBSResult",
    "bisect_ratio",
    "bisect_ratio_batched",
    "site_order",
    "gradual_binary_search",
    "load_ratios",
]

#: Sites of one decoder layer in the order the authors' released code visits
#: them: the inputs of q, k and v, the K cache (quantized after the online
#: rotation of Q and K), then the inputs of o, gate, up and down.
LAYER_SITES = (
    "q_proj",
    "k_proj",
    "v_proj",
    "k_cache",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)

#: Sites that are not searched but take the ratio of another site of the same
#: layer: the V cache is the output of v_proj and shares its ratio.
SHARED_SITES = (("v_cache", "v_proj"),)

_STATE_FORMAT = "gbs-state"
_STATE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class GBSConfig:
    """Knobs of the gradual binary search.

    Parameters
    ----------
    max_iter : int
        Bisection probes per site after the midpoint (the paper uses 8 to 10).
        0 keeps every ratio at the starting midpoint.
    tol : float
        Stop a site's bisection once the interval is no wider than this.
    reverse : bool
        Visit the layers from last to first, and the sites of a layer in
        reverse order (the authors' ``--inv`` option).
    sites : tuple of str
        Sites of one layer, in visiting order.
    shared : tuple of (str, str)
        ``(follower, leader)`` pairs: ``follower`` is not searched and takes
        the ratio chosen for ``leader`` in the same layer.
    lookahead : int
        Bisection steps decided per call of the objective: each call gets the
        ``2**lookahead - 1`` candidate ratios the next ``lookahead`` steps
        could probe (speculative, same result as one probe per call).

    Raises
    ------
    TypeError, ValueError
        If a field has the wrong type or is out of range.

    Examples
    --------
    >>> GBSConfig(max_iter=8).max_iter
    8
    >>> GBSConfig(tol=0)
    Traceback (most recent call last):
    ...
    ValueError: tol must be a finite float in (0, 1), got 0
    """

    max_iter: int = 10
    tol: float = 1e-3
    reverse: bool = False
    sites: tuple = LAYER_SITES
    shared: tuple = SHARED_SITES
    lookahead: int = 1

    def __post_init__(self):
        _check_int("max_iter", self.max_iter, 0, 64)
        _check_int("lookahead", self.lookahead, 1, 6)
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float)):
            raise TypeError(f"tol must be a float, got {self.tol!r}")
        if not (math.isfinite(self.tol) and 0 < self.tol < 1):
            raise ValueError(f"tol must be a finite float in (0, 1), got {self.tol!r}")
        if not isinstance(self.reverse, bool):
            raise TypeError(f"reverse must be a bool, got {self.reverse!r}")
        _check_sites(self.sites, self.shared)

    def to_dict(self) -> dict:
        """Return the configuration as JSON-ready plain data."""
        return {
            "max_iter": self.max_iter,
            "tol": self.tol,
            "reverse": self.reverse,
            "sites": list(self.sites),
            "shared": [list(pair) for pair in self.shared],
            "lookahead": self.lookahead,
        }


def _check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")


def _check_sites(sites, shared):
    if not isinstance(sites, tuple) or not sites:
        raise TypeError(f"sites must be a non-empty tuple of str, got {sites!r}")
    if not all(isinstance(s, str) and s and "." not in s for s in sites):
        raise ValueError(f"site names must be non-empty str without '.', got {sites!r}")
    if len(set(sites)) != len(sites):
        raise ValueError(f"site names must be unique, got {sites!r}")
    if not isinstance(shared, tuple):
        raise TypeError(f"shared must be a tuple of (follower, leader) pairs, got {shared!r}")
    for pair in shared:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"shared must hold (follower, leader) pairs, got {pair!r}")
        follower, leader = pair
        if leader not in sites:
            raise ValueError(f"shared site {follower!r} follows {leader!r}, which is not in sites")
        if follower in sites:
            raise ValueError(f"shared site {follower!r} is also a searched site")


@dataclasses.dataclass(frozen=True)
class Bisection:
    """Outcome of one alternating-side bisection.

    Attributes
    ----------
    ratio : float
        Best ratio found (the final midpoint).
    value : float
        Objective at ``ratio``.
    probes : tuple of (float, float)
        Every ``(ratio, value)`` the search used, in the order of the
        sequential algorithm, the starting midpoint first.
    interval : tuple of (float, float)
        Final ``(a, b)``.
    """

    ratio: float
    value: float
    probes: tuple
    interval: tuple


@dataclasses.dataclass(frozen=True)
class _State:
    a: float
    b: float
    m: float
    fm: float
    step: int

    def probe(self) -> float:
        # Even steps look below the midpoint, odd steps above it.
        return (self.a + self.m) / 2 if self.step % 2 == 0 else (self.m + self.b) / 2

    def after(self, x: float, fx: float, better: bool) -> "_State":
        if better:
            # x beats m: keep the half of the interval on x's side of m.
            a, b = (self.a, self.m) if x < self.m else (self.m, self.b)
            return _State(a, b, x, fx, self.step + 1)
        # x does not beat m: the minimum is not beyond x, cut there.
        a, b = (x, self.b) if x < self.m else (self.a, x)
        return _State(a, b, self.m, self.fm, self.step + 1)

    def running(self, max_iter: int, tol: float) -> bool:
        return self.step < max_iter and self.b - self.a > tol


def bisect_ratio(
    objective: Callable[[float], float], *, max_iter: int = 10, tol: float = 1e-3
) -> Bisection:
    """Minimize ``objective`` over (0, 1) with the paper's alternating bisection.

    Start at ``m = 0.5`` in ``[a, b] = [0, 1]``.  Step ``k`` probes
    ``x = (a + m) / 2`` when ``k`` is even and ``x = (m + b) / 2`` when odd.
    If ``objective(x) < objective(m)``, ``m`` moves to ``x`` and the interval
    shrinks to the half on ``x``'s side of the old ``m``; otherwise the
    interval is cut at ``x``.  Stop after ``max_iter`` probes or once
    ``b - a <= tol``.

    Parameters
    ----------
    objective : callable
        ``objective(ratio) -> float``, lower is better.  NaN and -inf are refused;
        ``+inf`` is allowed (worse than any finite value).
    max_iter : int
        Probes after the midpoint.
    tol : float
        Interval width at which the search stops.

    Returns
    -------
    Bisection
        Best ratio, its value, and every probe.

    Raises
    ------
    ValueError
        If the objective returns NaN, -inf or a non-number, or a knob is out
        of range.

    Examples
    --------
    >>> res = bisect_ratio(lambda r: (r - 0.8) ** 2, max_iter=20)
    >>> abs(res.ratio - 0.8) < 1e-3
    True
    >>> [round(x, 3) for x, _ in res.probes[:4]]
    [0.5, 0.25, 0.75, 0.625]
    """
    return bisect_ratio_batched(
        lambda xs: [objective(x) for x in xs], max_iter=max_iter, tol=tol, lookahead=1
    )


def bisect_ratio_batched(
    objective: Callable[[Sequence[float]], Sequence[float]],
    *,
    max_iter: int = 10,
    tol: float = 1e-3,
    lookahead: int = 2,
) -> Bisection:
    """The bisection of :func:`bisect_ratio`, several candidate ratios per call.

    Each call of ``objective`` receives every ratio the next ``lookahead``
    steps could probe (both outcomes of each comparison: ``2**lookahead - 1``
    candidates, fewer near the end), so an objective that evaluates a batch
    in one pass (one batched forward) advances ``lookahead`` steps per pass.
    The result is the same as the sequential search.

    Parameters
    ----------
    objective : callable
        ``objective(list_of_ratios) -> sequence of floats`` of the same length.
    max_iter, tol : see :func:`bisect_ratio`
    lookahead : int
        Steps decided per call, 1 to 6.

    Returns
    -------
    Bisection

    Raises
    ------
    ValueError
        If the objective returns the wrong number of values or a NaN.

    Examples
    --------
    >>> calls = []
    >>> def f(xs):
    ...     calls.append(len(xs))
    ...     return [abs(x - 0.3) for x in xs]
    >>> res = bisect_ratio_batched(f, max_iter=8, lookahead=2)
    >>> res.ratio == bisect_ratio(lambda x: abs(x - 0.3), max_iter=8).ratio
    True
    >>> calls
    [1, 3, 3, 3, 3]
    """
    _check_int("max_iter", max_iter, 0, 64)
    _check_int("lookahead", lookahead, 1, 6)
    GBSConfig(tol=tol)  # validates tol with the same message
    (fm,) = _evaluate(objective, [0.5])
    state = _State(0.0, 1.0, 0.5, fm, 0)
    probes = [(0.5, fm)]
    while state.running(max_iter, tol):
        candidates = _candidates(state, lookahead, max_iter, tol)
        values = dict(zip(candidates, _evaluate(objective, candidates)))
        for _ in range(lookahead):
            if not state.running(max_iter, tol):
                break
            x = state.probe()
            probes.append((x, values[x]))
            state = state.after(x, values[x], values[x] < state.fm)
    return Bisection(state.m, state.fm, tuple(probes), (state.a, state.b))


def _candidates(state, depth, max_iter, tol):
    """Ratios the next ``depth`` steps may probe, in breadth-first order."""
    out, frontier = [], [state]
    for _ in range(depth):
        nxt = []
        for s in frontier:
            if not s.running(max_iter, tol):
                continue
            x = s.probe()
            if x not in out:
                out.append(x)
            # Both outcomes: the successor probes depend only on a, b, m.
            nxt += [s.after(x, math.nan, True), s.after(x, math.nan, False)]
        frontier = nxt
    return out


def _evaluate(objective, xs):
    values = list(objective(list(xs)))
    if len(values) != len(xs):
        raise ValueError(
            f"the objective returned {len(values)} values for {len(xs)} candidate ratios"
        )
    out = []
    for x, v in zip(xs, values):
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"the objective returned a non-number {v!r} at ratio {x}") from None
        if math.isnan(v) or v == -math.inf:
            raise ValueError(f"the objective returned {v} at ratio {x}; expected a number or +inf")
        out.append(v)
    return out


def site_order(num_layers: int, config: GBSConfig = GBSConfig()) -> list:
    """Names ``"layers.{i}.{site}"`` of the searched sites, in visiting order.

    Parameters
    ----------
    num_layers : int
        Number of decoder layers.
    config : GBSConfig
        Gives the sites of a layer and whether the order is reversed.

    Returns
    -------
    list of str

    Examples
    --------
    >>> site_order(2)[:5]
    ['layers.0.q_proj', 'layers.0.k_proj', 'layers.0.v_proj', 'layers.0.k_cache', 'layers.0.o_proj']
    >>> site_order(2, GBSConfig(reverse=True))[:2]
    ['layers.1.down_proj', 'layers.1.up_proj']
    """
    return [f"layers.{i}.{s}" for i in _layer_order(num_layers, config) for s in _sites(config)]


def _layer_order(num_layers, config):
    _check_int("num_layers", num_layers, 1, 10_000)
    order = range(num_layers)
    return list(reversed(order)) if config.reverse else list(order)


def _sites(config):
    return list(reversed(config.sites)) if config.reverse else list(config.sites)


@dataclasses.dataclass(frozen=True)
class GBSResult:
    """Clipping ratios chosen by a gradual binary search.

    Attributes
    ----------
    ratios : dict of str to float
        Ratio of every site, shared ones included, keyed ``"layers.{i}.{site}"``.
    values : dict of str to float
        Objective value reached when each searched site was frozen.
    probes : int
        Objective evaluations (candidate ratios) spent by this run,
        layers resumed from a state file excluded.
    """

    ratios: dict
    values: dict
    probes: int = 0

    def apply(self, sites: Mapping[str, object], *, bits: int | None = None) -> None:
        """Set ``clip_ratio`` (and ``bits`` if given) on each named site.

        Parameters
        ----------
        sites : mapping of str to object
            Objects with a mutable ``clip_ratio`` (and ``bits``) attribute.
        bits : int or None
            If given, also set this bit width on every site that gets a ratio.

        Raises
        ------
        KeyError
            If a ratio names a site that ``sites`` lacks.

        Examples
        --------
        >>> class Site:
        ...     clip_ratio, bits = 1.0, None
        >>> sites = {"layers.0.q_proj": Site()}
        >>> GBSResult({"layers.0.q_proj": 0.75}, {}).apply(sites, bits=3)
        >>> sites["layers.0.q_proj"].clip_ratio, sites["layers.0.q_proj"].bits
        (0.75, 3)
        """
        missing = sorted(set(self.ratios) - set(sites))
        if missing:
            raise KeyError(f"no quantizer site named {missing[:3]} (of {len(missing)} missing)")
        for name, ratio in self.ratios.items():
            sites[name].clip_ratio = ratio
            if bits is not None:
                sites[name].bits = bits

    def save(self, path: str | os.PathLike, **metadata) -> None:
        """Write the ratios to a JSON file atomically (temp file, then rename)."""
        _write_json_atomic(path, {"ratios": self.ratios, "values": self.values, **metadata})


def load_ratios(path: str | os.PathLike) -> dict:
    """Read the ratios written by :meth:`GBSResult.save` or a search state.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict of str to float

    Raises
    ------
    ValueError
        If the file holds no ``"ratios"`` mapping of names to ratios in (0, 1].
    """
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    ratios = data.get("ratios") if isinstance(data, dict) else None
    if not isinstance(ratios, dict):
        raise ValueError(f"{os.fspath(path)!r} has no 'ratios' mapping")
    for name, r in ratios.items():
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1:
            raise ValueError(f"{os.fspath(path)!r}: ratio of {name!r} must be in (0, 1], got {r!r}")
    return {name: float(r) for name, r in ratios.items()}


def _write_json_atomic(path, data):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gbs-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def gradual_binary_search(
    objective: Callable[[str, Sequence[float], Mapping[str, float]], Sequence[float]],
    num_layers: int,
    config: GBSConfig = GBSConfig(),
    *,
    state_path: str | os.PathLike | None = None,
    fingerprint: Mapping | None = None,
    progress: bool = False,
    on_layer_done: Callable[[int, Mapping[str, float]], None] | None = None,
) -> GBSResult:
    """Choose a clipping ratio for every site, greedily, in the paper's order.

    Sites are visited as :func:`site_order` lists them.  For each, the
    bisection of :func:`bisect_ratio` (or its batched form, with
    ``config.lookahead > 1``) calls ``objective(site, candidates, frozen)``:
    the objective values when ``site`` is switched on with each candidate
    ratio, the sites in ``frozen`` on at their chosen ratios, and every other
    site off (high precision).  The best ratio is then frozen.

    Parameters
    ----------
    objective : callable
        ``objective(site, candidates, frozen) -> values``; lower is better.
        ``frozen`` maps the names of the sites already chosen to their
        ratios.  A shared site (``config.shared``) is frozen with its leader,
        and the objective should switch it on together with the leader
        while the leader is probed (the V cache moves with v_proj).
    num_layers : int
        Number of layers.
    config : GBSConfig
        Bisection and visiting-order knobs.
    state_path : path-like or None
        JSON file written atomically after every layer.  If it exists, the
        layers it records as done are skipped (resume after a kill).
    fingerprint : mapping or None
        JSON-ready data identifying the run (model, bits, calibration...);
        a state file with another fingerprint or config is refused.
    progress : bool
        Show a tqdm bar with the current layer, site, ratio and objective.
    on_layer_done : callable or None
        Called as ``on_layer_done(layer, frozen)`` after each layer.

    Returns
    -------
    GBSResult

    Raises
    ------
    ValueError
        If the state file belongs to another search, or the objective
        returns a bad value.

    Examples
    --------
    >>> best = {"q_proj": 0.3, "k_proj": 0.6}
    >>> def objective(site, candidates, frozen):
    ...     return [abs(r - best[site.split(".")[-1]]) for r in candidates]
    >>> cfg = GBSConfig(max_iter=12, sites=("q_proj", "k_proj"), shared=())
    >>> res = gradual_binary_search(objective, 2, cfg)
    >>> {k: round(v, 2) for k, v in res.ratios.items()}
    {'layers.0.q_proj': 0.3, 'layers.0.k_proj': 0.6, 'layers.1.q_proj': 0.3, 'layers.1.k_proj': 0.6}
    """
    header = {"num_layers": num_layers, "config": config.to_dict(), "fingerprint": dict(fingerprint or {})}
    try:  # compared with what the state file holds, so in the form JSON gives back
        header = json.loads(json.dumps(header))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"fingerprint must hold JSON values (str keys, numbers, strings, lists): {exc}") from None
    layers = _layer_order(num_layers, config)
    done, frozen, values = _resume(state_path, header, num_layers)
    todo = [i for i in layers if i not in done]
    bar = _progress_bar(len(todo) * len(config.sites), progress)
    probes = 0
    try:
        for layer in todo:
            for site in _sites(config):
                name = f"layers.{layer}.{site}"
                res, evaluated = _search_site(objective, name, frozen, config)
                probes += evaluated
                frozen[name], values[name] = res.ratio, res.value
                for follower in _followers(config, site):
                    frozen[f"layers.{layer}.{follower}"] = res.ratio
                _update_bar(bar, layer, site, res)
            done.append(layer)
            if state_path is not None:
                _write_json_atomic(
                    state_path,
                    {**header, "format": _STATE_FORMAT, "version": _STATE_VERSION,
                     "layers_done": done, "ratios": frozen, "values": values},
                )
            if on_layer_done is not None:
                on_layer_done(layer, dict(frozen))
    finally:
        if bar is not None:
            bar.close()
    return GBSResult(dict(frozen), dict(values), probes)


def _followers(config, site):
    return [follower for follower, leader in config.shared if leader == site]


def _search_site(objective, name, frozen, config):
    """The site's bisection and how many candidate ratios the objective was given (with
    lookahead, more than the bisection's probes: both outcomes of each step are scored)."""
    evaluated = 0

    def batch(xs):
        nonlocal evaluated
        evaluated += len(xs)
        return objective(name, xs, dict(frozen))

    res = bisect_ratio_batched(batch, max_iter=config.max_iter, tol=config.tol, lookahead=config.lookahead)
    return res, evaluated


def _resume(state_path, header, num_layers):
    if state_path is None or not os.path.exists(state_path):
        return [], {}, {}
    with open(state_path, encoding="utf-8") as fh:
        state = json.load(fh)
    if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
        raise ValueError(f"{os.fspath(state_path)!r} is not a GBS state file")
    for key, expected in header.items():
        if state.get(key) != expected:
            raise ValueError(
                f"{os.fspath(state_path)!r} belongs to another search: its {key} is "
                f"{state.get(key)!r}, this run has {expected!r}; delete it or pass "
                "another state_path"
            )
    done = [int(i) for i in state["layers_done"]]
    if any(not 0 <= i < num_layers for i in done):
        raise ValueError(f"{os.fspath(state_path)!r} lists layers outside 0..{num_layers - 1}")
    return done, dict(state["ratios"]), dict(state["values"])


def _progress_bar(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm  # optional dependency, only for the bar

    return tqdm(total=total, desc="GBS", unit="site")


def _update_bar(bar, layer, site, res):
    if bar is None:
        return
    bar.set_postfix(layer=layer, site=site, ratio=f"{res.ratio:.3f}", obj=f"{res.value:.4g}")
    bar.update(1)
