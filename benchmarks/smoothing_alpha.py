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

import copy

import integrations as I
import quant
from _smollm2_eval import parse_and_load


def main() -> None:
    def options(p):
        p.add_argument("--alphas", nargs="+", default=["none", "0.3", "0.5", "0.65", "0.8"])

    args, setup = parse_and_load(__doc__.splitlines()[0], eval_windows=2, add_arguments=options)
    config = I.QuantizationConfig(weights=None, activations=quant.QuantConfig(bits=3, granularity="token", symmetric=False),
                                  kv=quant.KVQuantConfig(bits=3), clip_search=True)
    print(f"FP PPL {setup.fp_ppl:.2f} on {setup.eval_windows.numel()} tokens; weights in float, A3KV3, online rotation\n")
    print("| alpha | PPL | KLD | top-1 |")
    print("|---|---|---|---|")
    for alpha in args.alphas:
        model = copy.deepcopy(setup.base)
        if alpha != "none":
            I.smooth_model(model, setup.calibration, float(alpha), progress=False)
        I.rotate_model(model, I.RotationConfig(r1="online"))
        I.quantize_model(model, config, calibration=setup.calibration, progress=False)
        r = setup.evaluate(model)
        print(f"| {alpha} | {r['ppl']:.2f} | {r['kld']:.3f} | {r['top1']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
