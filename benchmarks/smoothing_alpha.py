"""SmoothQuant migration strength before the online rotation, at 3-bit activations (SmolLM2-135M).

For each ``alpha`` (and without smoothing): ``integrations.smooth_model(model, calibration,
alpha)``, then ``rotate_model(RotationConfig(r1="online"))``, then weights left in float and
every activation and KV site at 3 bits (asymmetric per token), each site's clip ratio set by
the grid search on its local output error (``clip_search=True``); PPL, KL divergence to the FP
model and top-1 agreement on the evaluation part of the pydoc text.  Leaving the weights in
float isolates what smoothing does to the activations; the weights' side (they take the
scales) is in the whole pipeline, ``python -m integrations --smooth-alpha A``.

Run: ``python benchmarks/smoothing_alpha.py [--alphas none 0.3 0.5 0.65 0.8] [--eval-windows 2]``
"""

from __future__ import annotations

import argparse
import copy

import torch

import integrations as I
import quant


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alphas", nargs="+", default=["none", "0.3", "0.5", "0.65", "0.8"])
    p.add_argument("--eval-windows", type=int, default=2, help="evaluation windows of 2048 tokens (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base, tok = I.load_model(), I.load_tokenizer()
    ev = I.tokenize_windows(I.load_text(split="eval"), tok, seqlen=2048, max_windows=args.eval_windows)
    cal = I.tokenize_windows(I.load_text(split="calibration"), tok, seqlen=512, max_windows=8)
    fp = I.evaluate(base, ev, keep_logits=True, progress=False)
    reference = fp.pop("logprobs")
    config = I.QuantizationConfig(weights=None, activations=quant.QuantConfig(bits=3, granularity="token", symmetric=False),
                                  kv=quant.KVQuantConfig(bits=3), clip_search=True)
    print(f"FP PPL {fp['ppl']:.2f} on {ev.numel()} tokens; weights in float, A3KV3, online rotation\n")
    print("| alpha | PPL | KLD | top-1 |")
    print("|---|---|---|---|")
    for alpha in args.alphas:
        model = copy.deepcopy(base)
        if alpha != "none":
            I.smooth_model(model, cal, float(alpha), progress=False)
        I.rotate_model(model, I.RotationConfig(r1="online"))
        I.quantize_model(model, config, calibration=cal, progress=False)
        r = I.evaluate(model, ev, fp_logits=reference, progress=False)
        print(f"| {alpha} | {r['ppl']:.2f} | {r['kld']:.3f} | {r['top1']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
