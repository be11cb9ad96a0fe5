"""Which sites make the gap between two GBS searches: swap their ratios by site type.

Reads a results file of ``bench_gbs.py`` (``--out``), quantizes the model again
the way that run did (its recorded arguments: rotations, weights, calibration),
then evaluates the two searches' ratios and mixtures of them: A with B's cache
ratios, B with A's cache ratios, A with B's MLP-input ratios, A with B's
attention-input ratios, and B with every ratio lowered by 0.05. The results
file may come from another machine (e.g. a GPU run of the faithful search):
ratios carry over, PPLs are re-measured here.

Run from the repository root::

    python benchmarks/gbs_ratio_swap.py benchmarks/results/h100_2026-11-23_gbs_main.json \
        --a "GBS faithful" --b "GBS local"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_gbs import prepare, quantization_config  # noqa: E402

import integrations  # noqa: E402
from integrations import gbs  # noqa: E402

MLP = ("gate_proj", "up_proj", "down_proj")
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


def mix(base, other, leaves):
    """``base`` with the ratios of the sites whose last name part is in ``leaves`` taken from ``other``."""
    return {k: (other[k] if k.rsplit(".", 1)[1] in leaves else v) for k, v in base.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", help="a bench_gbs.py --out file")
    p.add_argument("--a", default="GBS faithful", help="method name of the first search's row")
    p.add_argument("--b", default="GBS local", help="method name of the second search's row")
    p.add_argument("--bits", type=int, default=None, help="bit width of the rows (default: the first in the file)")
    args = p.parse_args(argv)
    with open(args.results, encoding="utf-8") as fh:
        payload = json.load(fh)
    run = argparse.Namespace(**payload["args"])
    bits = args.bits or run.bits[0]
    rows = {r["method"]: r["ratios"] for r in payload["rows"] if r["bits"] == bits and "ratios" in r}
    for name in (args.a, args.b):
        if name not in rows:
            raise SystemExit(f"no row {name!r} with ratios at {bits} bits in {args.results}; found {sorted(rows)}")
    a, b = rows[args.a], rows[args.b]
    caches = ("k_cache", "v_cache")
    sets = {
        args.a: a,
        args.b: b,
        f"{args.a}, caches from {args.b}": mix(a, b, caches),
        f"{args.b}, caches from {args.a}": mix(b, a, caches),
        f"{args.a}, MLP inputs from {args.b}": mix(a, b, MLP),
        f"{args.a}, attention inputs from {args.b}": mix(a, b, ATTENTION),
        f"{args.b}, every ratio - 0.05": {k: max(0.05, v - 0.05) for k, v in b.items()},
    }

    start = time.perf_counter()
    # the embedded model on this machine, whatever path the run recorded
    model, calib, data, fp = prepare(run)
    integrations.quantize_model(model, quantization_config(bits, run), calib, progress=False)
    print(f"quantized W{bits}A{bits}KV{bits} as {args.results} did, in {time.perf_counter() - start:.0f} s; "
          f"FP PPL {fp['ppl']:.3f}", flush=True)
    print("| clip ratios | PPL | KLD |\n|---|---|---|")
    for name, ratios in sets.items():
        gbs.apply_clip_ratios(model, ratios)
        res = integrations.evaluate(model, data, fp_logits=fp["logprobs"], progress=False)
        print(f"| {name} | {res['ppl']:.2f} | {res['kld']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
