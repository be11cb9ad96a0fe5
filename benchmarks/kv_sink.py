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

import copy

import integrations as I
import quant
from _smollm2_eval import parse_and_load


def main() -> None:
    _, setup = parse_and_load(__doc__.splitlines()[0], eval_windows=4)
    print(f"FP PPL {setup.fp_ppl:.2f} on {setup.eval_windows.numel()} tokens\n")
    print("| setting | rotation | keep_first | PPL | KLD | top-1 |")
    print("|---|---|---|---|---|---|")

    def row(setting, rotation, config, calibration=None):
        model = copy.deepcopy(setup.base)
        if rotation is not None:
            I.rotate_model(model, rotation)
        I.quantize_model(model, config, calibration=calibration, progress=False)
        r = setup.evaluate(model)
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
        row("A3KV3, grid-searched clips", online, config, setup.calibration)


if __name__ == "__main__":
    main()
