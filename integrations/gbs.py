"""Gradual Binary Search of clipping ratios on a rotated, quantized LLM.

Drives :func:`quant.gbs.gradual_binary_search` on the quantizer sites of a
model prepared by ``integrations.quantize_model`` (weights already
quantized).  Every activation and KV site starts off; sites are switched on
one at a time, in the paper's order, and each gets the clip ratio the
bisection finds for an objective:

``"faithful"``
    The paper's objective: perplexity of the whole model on the calibration
    windows, one full forward pass per probe.
``"prefix"``
    The same perplexity, but the hidden states entering the current layer
    are cached, so a probe runs only layers l..L-1 (same objective, less work).
``"kl"``
    Prefix caching, scored by the KL divergence of the logits to those of
    the model with every activation/KV site off.
``"fast"``
    Prefix caching and a local objective: the relative squared error of the
    hidden state ``window`` blocks after the current one, against the same
    model with every activation/KV site off, per token and averaged over
    tokens (so that attention-sink tokens with huge norms do not decide
    alone).  A probe runs ``window`` blocks.

References
----------
.. [1] L. Maisonnave et al., "Gradual Binary Search and Dimension Expansion",
   arXiv:2504.13989, 2025.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
from typing import Mapping

import torch

from quant import gbs

from ._calibration import SiteRows, site_output_error
from ._families import input_widths, layer_linears
from ._quantized import check_weight_groups

__all__ = [
    "METHODS",
    "calibrate_clip_ratios",
    "quantize_with_gbs",
    "apply_clip_ratios",
    "save_clip_ratios",
    "load_clip_ratios",
]

METHODS = ("fast", "faithful", "prefix", "kl", "local")

#: Sites of one layer searched by ``method="local"``: the V cache gets its own ratio.
LOCAL_SITES = gbs.LAYER_SITES[:4] + ("v_cache",) + gbs.LAYER_SITES[4:]


def calibrate_clip_ratios(
    model,
    calibration: torch.Tensor,
    *,
    method: str = "local",
    bits: int | None = None,
    kv_bits: int | None = None,
    state_path: str | os.PathLike | None = None,
    max_iter: int = 10,
    tol: float = 1e-3,
    reverse: bool = False,
    window: int = 1,
    layers: int | None = None,
    batch_size: int = 8,
    tokens: int = 2048,
    progress: bool = True,
) -> dict:
    """Search a clip ratio for every activation and KV-cache quantizer.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A model with quantizer sites (``integrations.quantize_model``);
        its weights are not changed.
    calibration : torch.Tensor
        Token ids, shape ``(windows, seqlen)`` (``integrations.tokenize_windows``).
    method : {"fast", "faithful", "prefix", "kl", "local"}
        The objective (see the module docstring).
    bits, kv_bits : int or None
        Bit width of the activation and KV sites once switched on; None
        keeps each site's current ``bits`` (as set by ``quantize_model``).
    state_path : path-like or None
        JSON state written after each layer; an existing one is resumed.
    max_iter, tol, reverse : see :class:`quant.gbs.GBSConfig`
    window : int
        Blocks run per probe by ``method="fast"``.
    layers : int or None
        Search only the first ``layers`` layers and leave the sites of the
        later ones off.  With the forward order the ratios found are exactly
        those the full search gives these layers (the greedy search never
        looks back), so a truncated run measures the cost and choices of a
        full one on a budget.
    batch_size : int
        Calibration windows per forward pass (bounds memory).
    tokens : int
        Tokens of each site's captured input scored by ``method="local"``.
    progress : bool
        Show a progress bar (layer, site, ratio, objective).

    Returns
    -------
    dict of str to float
        Ratio of every searched site (``"layers.{i}.{site}"``, V caches
        included).  On return every searched site is on at its ratio (the
        model is calibrated); with ``layers``, the later sites are off.

    Raises
    ------
    ValueError
        Unknown method, bad calibration ids, a site with no bit width, or a
        state file of another search.
    """
    from integrations import quantizer_sites

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_int("tokens", tokens, 1)
    ids = _check_calibration(model, calibration)
    if method == "local":  # only the first ``tokens`` tokens are scored: run no more windows than they fill
        ids = ids[: -(-tokens // ids.shape[1])]
    _check_int("window", window, 1)
    _check_int("batch_size", batch_size, 1)
    sites = quantizer_sites(model)
    target_bits = _target_bits(sites, bits, kv_bits)
    if method == "local":
        config = gbs.GBSConfig(max_iter=max_iter, tol=tol, reverse=reverse, sites=LOCAL_SITES, shared=())
    else:
        config = gbs.GBSConfig(max_iter=max_iter, tol=tol, reverse=reverse)
    switch = _SiteSwitch(sites, target_bits, config.shared)
    before = {name: (site.bits, site.clip_ratio) for name, site in sites.items()}
    num_layers = len(model.model.layers)
    if layers is not None:
        _check_int("layers", layers, 1)
        if layers > num_layers:
            raise ValueError(f"layers must be at most the model's {num_layers} layers, got {layers}")
        num_layers = layers
    objective = _make_objective(method, model, ids, switch, window, batch_size, tokens)
    fingerprint = {
        "method": method,
        "window": window if method == "fast" else None,
        "tokens": tokens if method == "local" else None,
        "layers": layers,
        "bits": {name: b for name, b in sorted(target_bits.items())},
        "calibration": [list(ids.shape), hashlib.sha256(ids.numpy().tobytes()).hexdigest()[:16]],
    }
    try:
        result = gbs.gradual_binary_search(
            objective, num_layers, config, state_path=state_path,
            fingerprint=fingerprint, progress=progress,
        )
    except BaseException:
        for name, (b, r) in before.items():  # leave the model as it came
            sites[name].bits, sites[name].clip_ratio = b, r
        raise
    switch.set(result.ratios)
    return result.ratios


def quantize_with_gbs(
    model,
    config,
    calibration: torch.Tensor,
    *,
    gbs_calibration: torch.Tensor | None = None,
    method: str = "local",
    max_iter: int = 8,
    window: int = 1,
    tokens: int = 2048,
    device=None,
    progress: bool = True,
) -> dict:
    """Search every clip ratio by GBS on the float-weight model, then quantize with them.

    The search runs first, with the activation/KV quantizers of ``config``
    installed and the weights still in float, so its objectives compare
    against the unquantized model; the weights are then quantized by
    ``integrations.quantize_model`` with the ratios fixed, so GPTQ sees (and,
    with a float ``gptq_target``, compensates) exactly the clipping the
    model will run with.  The paper searches after quantizing the weights;
    with weights fitted to their clipped inputs, changing the ratios
    afterwards undoes part of that fit (measured in docs/gbs.md).

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Usually rotated (``integrations.rotate_model``); quantized in place.
    config : integrations.QuantizationConfig
        Its ``clip_search`` and ``clip_ratios`` are replaced by the search.
    calibration : torch.Tensor
        ``(windows, seqlen)`` token ids for GPTQ.
    gbs_calibration : torch.Tensor, optional
        Token ids for the search (default: ``calibration`` for ``method="local"``,
        which scores its first ``tokens`` tokens, else its first window).
    method, max_iter, window, tokens :
        As in :func:`calibrate_clip_ratios`.
    device, progress :
        As in ``integrations.quantize_model``.

    Returns
    -------
    dict of str to float
        The ratio of every site, as applied.
    """
    from integrations import QuantizationConfig, install_quantizers, quantize_model

    if not isinstance(config, QuantizationConfig):
        raise TypeError(f"config must be an integrations.QuantizationConfig, got {type(config).__name__}")
    if gbs_calibration is not None:
        search_ids = gbs_calibration
    else:
        search_ids = calibration if method == "local" else calibration[:1]
    check_weight_groups(input_widths(model), config.weights)  # before the search, not after it
    install_quantizers(model, dataclasses.replace(config, weights=None, clip_ratios={}))
    ratios = calibrate_clip_ratios(model, search_ids, method=method, max_iter=max_iter, window=window,
                                   tokens=tokens, progress=progress)
    final = dataclasses.replace(config, clip_search=False, clip_ratios=ratios)
    quantize_model(model, final, calibration, device=device, progress=progress)
    return ratios


def apply_clip_ratios(model, ratios: Mapping[str, float], *, bits: int | None = None) -> None:
    """Set the clip ratio of each named quantizer site of ``model``.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A model with quantizer sites.
    ratios : mapping of str to float
        Site name to ratio in (0, 1], e.g. from :func:`load_clip_ratios`.
    bits : int or None
        Also set this bit width on those sites.

    Raises
    ------
    KeyError
        A name is not a site of ``model``.
    ValueError
        A ratio is outside (0, 1].
    """
    from integrations import quantizer_sites

    for name, r in ratios.items():
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1:
            raise ValueError(f"the ratio of {name!r} must be in (0, 1], got {r!r}")
    gbs.GBSResult(dict(ratios), {}).apply(quantizer_sites(model), bits=bits)


def save_clip_ratios(path: str | os.PathLike, ratios: Mapping[str, float], **metadata) -> None:
    """Write ratios (and JSON-ready metadata) to ``path`` atomically."""
    gbs.GBSResult(dict(ratios), {}).save(path, **metadata)


def load_clip_ratios(path: str | os.PathLike) -> dict:
    """Read ratios written by :func:`save_clip_ratios` or a search state file."""
    return gbs.load_ratios(path)


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def _check_calibration(model, calibration):
    if not isinstance(calibration, torch.Tensor):
        raise TypeError(f"calibration must be a torch.Tensor of token ids, got {type(calibration).__name__}")
    if calibration.dim() != 2 or calibration.shape[0] < 1 or calibration.shape[1] < 2:
        raise ValueError(f"calibration must have shape (windows, seqlen>=2), got {tuple(calibration.shape)}")
    if calibration.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"calibration must hold integer token ids, got {calibration.dtype}")
    vocab = model.get_input_embeddings().weight.shape[0]
    if int(calibration.min()) < 0 or int(calibration.max()) >= vocab:
        raise ValueError(f"calibration token ids must be in [0, {vocab}), got [{int(calibration.min())}, {int(calibration.max())}]")
    return calibration.to(torch.int64).cpu().contiguous()


def _target_bits(sites, bits, kv_bits):
    out = {}
    for name, site in sites.items():
        is_kv = name.endswith("_cache")
        b = (kv_bits if kv_bits is not None else bits) if is_kv else bits
        b = site.bits if b is None else b
        if b is None:
            raise ValueError(
                f"site {name!r} is off and no bit width was given; pass bits=/kv_bits= "
                "or quantize the model with activation and KV quantizers"
            )
        out[name] = int(b)
    return out


class _SiteSwitch:
    """Turns sites on (at a ratio) or off, following the greedy search."""

    def __init__(self, sites, target_bits, shared):
        self.sites, self.bits = sites, target_bits
        self.followers = dict(shared)  # follower -> leader

    def set(self, frozen: Mapping[str, float], probe: str | None = None, ratio: float | None = None):
        """Frozen sites on at their ratios, ``probe`` (and its followers) at ``ratio``, others off."""
        for name, site in self.sites.items():
            r = frozen.get(name)
            if probe is not None and (name == probe or self._leader(name) == probe):
                r = ratio
            site.bits = None if r is None else self.bits[name]
            site.clip_ratio = 1.0 if r is None else float(r)

    def state(self, names) -> tuple:
        return tuple((self.sites[n].bits, self.sites[n].clip_ratio) for n in names)

    def _leader(self, name):
        prefix, _, leaf = name.rpartition(".")
        leader = self.followers.get(leaf)
        return None if leader is None else f"{prefix}.{leader}"


def _make_objective(method, model, ids, switch, window, batch_size, tokens):
    runner = _LayerRunner(model, ids, batch_size)
    if method == "local":
        return _LocalObjective(runner, switch, tokens)
    if method == "faithful":
        return _FullPerplexity(runner, switch)
    if method == "prefix":
        return _CachedObjective(runner, switch, "ppl", None)
    if method == "kl":
        return _CachedObjective(runner, switch, "kl", None)
    return _CachedObjective(runner, switch, "mse", window)


class _LayerRunner:
    """Runs a decoder LLM piece by piece on fixed calibration windows."""

    def __init__(self, model, ids, batch_size):
        self.model, self.ids, self.batch_size = model, ids, batch_size
        self.layers = model.model.layers
        self.device = next(model.parameters()).device
        seqlen = ids.shape[1]
        self.position_ids = torch.arange(seqlen, device=self.device)[None]

    @torch.no_grad()
    def embed(self) -> torch.Tensor:
        return self.model.model.embed_tokens(self.ids.to(self.device))

    @torch.no_grad()
    def layers_forward(self, h: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Hidden states after layers ``start..stop-1`` from those entering ``start``."""
        if start >= stop:
            return h
        pe = self.model.model.rotary_emb(h, self.position_ids)
        out = []
        for chunk in h.split(self.batch_size):
            for layer in self.layers[start:stop]:
                chunk = layer(chunk, attention_mask=None, position_ids=self.position_ids,
                              position_embeddings=pe)
                chunk = chunk[0] if isinstance(chunk, tuple) else chunk
            out.append(chunk)
        return torch.cat(out)

    @torch.no_grad()
    def head_scores(self, h: torch.Tensor, reference_logprobs: list | None = None) -> float:
        """Perplexity of the windows from the last hidden states, or KL to a reference."""
        total, count = 0.0, 0
        for k, chunk in enumerate(h.split(self.batch_size)):
            logp = self._logprobs(chunk)
            if reference_logprobs is None:
                ids = self.ids[k * self.batch_size:(k + 1) * self.batch_size, 1:].to(self.device)
                total -= float(logp.gather(-1, ids[..., None]).sum())
            else:
                ref = reference_logprobs[k]
                total += float((ref.exp() * (ref - logp)).sum())
            count += logp.shape[0] * logp.shape[1]
        mean = total / count
        return math.exp(mean) if reference_logprobs is None else mean

    def reference_logprobs(self, h: torch.Tensor) -> list:
        with torch.no_grad():
            return [self._logprobs(chunk) for chunk in h.split(self.batch_size)]

    def _logprobs(self, chunk):
        logits = self.model.lm_head(self.model.model.norm(chunk))[:, :-1]
        return torch.log_softmax(logits.float(), dim=-1)


class _FullPerplexity:
    """The paper's objective: calibration perplexity of the whole model."""

    def __init__(self, runner, switch):
        self.runner, self.switch = runner, switch

    def __call__(self, site, candidates, frozen):
        values = []
        n = len(self.runner.layers)
        for r in candidates:
            self.switch.set(frozen, site, r)
            h = self.runner.layers_forward(self.runner.embed(), 0, n)
            values.append(self.runner.head_scores(h))
        return values


class _HiddenStates:
    """Hidden states entering each layer, kept for as long as the earlier sites keep their settings."""

    def __init__(self, runner, switch):
        self.runner, self.switch = runner, switch
        n = len(runner.layers)
        self.layer_sites = [[s for s in switch.sites if s.startswith(f"layers.{i}.")] for i in range(n)]
        self.inputs = {0: ((), runner.embed())}  # layer -> (state of earlier sites, hidden states)

    def entering(self, layer):
        """Hidden states entering ``layer`` under the current site settings."""
        start = max(k for k, (sig, _) in self.inputs.items() if k <= layer and sig == self._signature(k))
        h = self.inputs[start][1]
        for k in range(start, layer):
            h = self.runner.layers_forward(h, k, k + 1)
            self.inputs[k + 1] = (self._signature(k + 1), h)
        return h

    def _signature(self, layer):
        return self.switch.state([s for i in range(layer) for s in self.layer_sites[i]])


class _CachedObjective:
    """Objectives that reuse the hidden states entering the current layer."""

    def __init__(self, runner, switch, loss, window):
        self.runner, self.switch, self.loss, self.window = runner, switch, loss, window
        self.hidden = _HiddenStates(runner, switch)
        self.reference = None

    def __call__(self, site, candidates, frozen):
        layer = int(site.split(".")[1])
        self._extend_reference(layer)
        self.switch.set(frozen)
        h = self.hidden.entering(layer)
        values = []
        for r in candidates:
            self.switch.set(frozen, site, r)
            values.append(self._score(h, layer))
        return values

    def _extend_reference(self, layer):
        """Hidden states (mse) or log-probs (kl) with every site off, as far as needed."""
        n = len(self.runner.layers)
        if self.loss == "ppl" or (self.reference is not None and self.loss == "kl"):
            return
        self.switch.set({})
        if self.loss == "kl":
            self.reference = self.runner.reference_logprobs(self.hidden.entering(n))
            return
        self.reference = self.reference or []
        for depth in range(len(self.reference), min(layer + self.window, n) + 1):
            self.reference.append(self.hidden.entering(depth))

    def _score(self, h, layer):
        n = len(self.runner.layers)
        if self.loss == "mse":
            stop = min(layer + self.window, n)
            out = self.runner.layers_forward(h, layer, stop)
            ref = self.reference[stop]
            # per-token relative error, averaged over tokens: a plain ratio of sums is dominated by
            # the few tokens with massive residual norms (attention sinks), whose best clip is not
            # the one the other tokens need
            err = (out - ref).pow(2).sum(-1) / ref.pow(2).sum(-1).clamp_min(torch.finfo(ref.dtype).tiny)
            return float(err.mean())
        out = self.runner.layers_forward(h, layer, n)
        return self.runner.head_scores(out, None if self.loss == "ppl" else self.reference)


class _Captured(Exception):
    """Stops a forward pass once a site's input has been captured."""


class _LocalObjective:
    """Output error of the probed site alone, on its input captured once."""

    def __init__(self, runner, switch, tokens):
        self.runner, self.switch, self.tokens = runner, switch, tokens
        self.linears = [layer_linears(layer) for layer in runner.layers]
        self.hidden = _HiddenStates(runner, switch)
        self.captured = None  # (site and frozen ratios, input, weight, squared norm of the output)

    @torch.no_grad()
    def __call__(self, site, candidates, frozen):
        layer, leaf = int(site.split(".")[1]), site.rsplit(".", 1)[1]
        self.switch.set(frozen)
        key = (site, tuple(sorted(frozen.items())))
        if self.captured is None or self.captured[0] != key:  # the bisection calls once per probe
            x = self._capture(layer, site)
            linear = self.linears[layer].get(leaf)
            weight = None if linear is None else linear.weight.detach().to(torch.float32)
            reference = x @ weight.T if weight is not None else x
            self.captured = (key, x, weight, float(reference.pow(2).sum()) or 1.0)
        _, x, weight, scale = self.captured
        quantizer, values = self.switch.sites[site], []
        for r in candidates:
            self.switch.set(frozen, site, r)
            values.append(site_output_error(quantizer, x, weight) / scale)
        self.switch.set(frozen)
        return values

    @torch.no_grad()
    def _capture(self, layer, site):
        """Up to ``tokens`` tokens of the site's input, as rows of its last dimension."""
        h = self.hidden.entering(layer)
        rows = SiteRows(self.tokens, self.switch.sites[site].keep_first)

        def hook(module, args):
            rows.add(args[0])
            raise _Captured  # the rest of the layer is not needed

        handle = self.switch.sites[site].register_forward_pre_hook(hook)
        try:
            for chunk in h.split(self.runner.batch_size):
                with contextlib.suppress(_Captured):
                    self.runner.layers_forward(chunk, layer, layer + 1)
        finally:
            handle.remove()
        captured = rows.tensor()
        if captured is None:
            raise RuntimeError(f"site {site!r} saw no input during a forward pass of layer {layer}")
        return captured
