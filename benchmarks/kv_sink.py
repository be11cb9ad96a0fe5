"""Keeping the attention sink's K/V in full precision (``KVQuantConfig(keep_first=N)``) on SmolLM2-135M.

Two settings, each with every token quantized (``keep_first=0``) and with the first
token's keys and values kept (``keep_first=1``); PPL, KL divergence to the FP model and
top-1 agreement on the evaluation part of the pydoc text:

1. KV cache only (weights and activations in float), 2 and 3 bits, clip ratio 1, with
   and without the main job's rotations (``RotationConfig(r1="online")``).
2. Weights in float, every activation and KV site at 3 bits (asymmetric per token),
   rotated, each site's clip ratio set by the grid search on its local output error
   (``clip_search=True``, calibration on 8 x 512 tokens; the kept tokens are left out of
   the samples).

The whole pipeline (GPTQ, GBS clips) is ``python -m integrations --rows fp,ours
--kv-keep-first 1``.

Run: ``python benchmarks/kv_sink.py [--eval-windows 4] [--threads 2]``
"""

from __future__ import annotations

import argparse
import copy

import torch

import integrations as I
import quant


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--eval-windows", type=int, default=4, help="evaluation windows of 2048 tokens (default 4)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base, tok = I.load_model(), I.load_tokenizer()
    ev = I.tokenize_windows(I.load_text(split="eval"), tok, seqlen=2048, max_windows=args.eval_windows)
    cal = I.tokenize_windows(I.load_text(split="calibration"), tok, seqlen=512, max_windows=8)
    fp = I.evaluate(base, ev, keep_logits=True, progress=False)
    reference = fp.pop("logprobs")
    print(f"FP PPL {fp['ppl']:.2f} on {ev.numel()} tokens\n")
    print("| setting | rotation | keep_first | PPL | KLD | top-1 |")
    print("|---|---|---|---|---|---|")

    def row(setting, rotation, config, calibration=None):
        model = copy.deepcopy(base)
        if rotation is not None:
            I.rotate_model(model, rotation)
        I.quantize_model(model, config, calibration=calibration, progress=False)
        r = I.evaluate(model, ev, fp_logits=reference, progress=False)
        print(f"| {setting} | {'online' if rotation else 'none'} | {config.kv.keep_first} | {r['ppl']:.2f} | "
              f"{r['kld']:.3f} | {r['top1']:.3f} |", flush=True)

    online = I.RotationConfig(r1="online")
    for rotation in (None, online):
        for bits in (2, 3):
            for keep in (0, 1):
                kv = quant.KVQuantConfig(bits=bits, keep_first=keep)
                row(f"KV{bits} only", rotation, I.QuantizationConfig(weights=None, activations=None, kv=kv))
    for keep in (0, 1):
        config = I.QuantizationConfig(
            weights=None, activations=quant.QuantConfig(bits=3, granularity="token", symmetric=False),
            kv=quant.KVQuantConfig(bits=3, keep_first=keep), clip_search=True)
        row("A3KV3, grid-searched clips", online, config, cal)


if __name__ == "__main__":
    main()
