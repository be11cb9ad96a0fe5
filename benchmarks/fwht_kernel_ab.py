"""Same-process A/B of the FWHT kernels: this working tree against another git revision.

The kernel module ``hadamard/_fwht_kernels.py`` of ``--base`` (a git revision) is
loaded beside the current one, under another name and without numba's disk cache, and
both transform the same array in turn, ``--repeats`` times each; the medians and their
ratio are printed (and the median of the ratios of each repeat's two timings, which are
taken moments apart), and whether the two results are the same bits. Timing both in one
process, alternately, is what makes a 5-10 % change visible on a machine whose
run-to-run noise is larger than that. Run from the repository root::

    python benchmarks/fwht_kernel_ab.py --base HEAD~1 --cases float32:2^13 float64:2^10 float32:12x64
    python benchmarks/fwht_kernel_ab.py --base 7df9231 --cases float32:28x64:signs float64:36x16:inverse

A case is ``dtype:2^k`` (a power of two, ``sylvester_serial``, unnormalized as the peers
are; ``:normalized`` scales by ``2^(-k/2)`` as ``hadamard.fwht`` does by default) or ``dtype:MxP`` with
optional ``:signs``, ``:inverse`` and ``:raw`` (unnormalized) flags (the serial driver
``hadamard.fwht`` would take for it, with the arguments it would pass; for the base, the
driver its own revision's ``hadamard/_fwht.py`` chose, so a change of route is timed too:
the routes are printed). One thread, unless ``--threads`` (powers of two only, through the
parallel driver ``hadamard.fwht`` takes for large batches); ``--offset`` places the arrays
that many bytes past a 64-byte boundary (default: where numpy puts them).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import subprocess
import sys
import tempfile

import numba
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench_fwht import add_offset_argument, check_offset, placement, timings  # noqa: E402
from hadamard import _fwht  # noqa: E402
from hadamard import _fwht_kernels as current  # noqa: E402

KERNELS = "hadamard/_fwht_kernels.py"
LOGIC = "hadamard/_fwht.py"


def _load(rev: str, source: str, name: str, folder: str):
    """File ``source`` of git revision ``rev`` as the uncached module ``hadamard.<name>``."""
    try:
        text = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{source}"], check=True,
                              capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"cannot read {source} at revision {rev!r}: {exc.stderr.strip()}") from exc
    path = os.path.join(folder, f"{name}.py")
    with open(path, "w") as f:
        # numba's cache is keyed by file: a second copy must not share (or pollute) it
        f.write(text.replace("cache=True", "cache=False"))
    # named as a submodule of hadamard, so that its relative imports resolve
    spec = importlib.util.spec_from_file_location(f"hadamard.{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_revision(rev: str, folder: str):
    """``(kernels, route)`` of git revision ``rev``: its kernel module, separate and uncached,
    and ``route(m, p, itemsize)``, whether that revision's ``hadamard.fwht`` sent such rows
    to the straight-line product (its own ``_register_product_fits`` on its own kernel
    constants), so that the base is timed on the route it took."""
    module = _load(rev, KERNELS, "fwht_kernels_base", folder)
    try:
        logic = _load(rev, LOGIC, "fwht_base", folder)
    except ImportError as exc:  # a revision whose _fwht.py needs modules this tree no longer has
        print(f"note: {LOGIC} of {rev} does not load here ({exc}); the base takes this tree's routes")
        return module, _fwht._register_product_fits
    logic._kernels = lambda: module
    fits = getattr(logic, "_register_product_fits", None)
    return module, ((lambda m, p, itemsize: False) if fits is None else fits)


def straight_line(module, route, m, p, itemsize) -> bool:
    return m > 1 and hasattr(module, "register_product_drivers") and route(m, p, itemsize)


def product_drivers(module, m, transposed, rows_in_l1):
    """``module.register_product_drivers`` as ``hadamard.fwht`` calls it, for revisions whose
    drivers take whether the rows fit in L1 and for those before."""
    if "rows_in_l1" in inspect.signature(module.register_product_drivers).parameters:
        return module.register_product_drivers(m, transposed, rows_in_l1)
    return module.register_product_drivers(m, transposed)


def parse_case(text: str):
    """``(dtype, m, p, flags)`` from ``float32:2^13`` or ``float64:12x64:signs:inverse``."""
    parts = text.split(":")
    if len(parts) < 2 or parts[0] not in ("float32", "float64"):
        raise SystemExit(f"bad case {text!r}: want dtype:2^k[:normalized] or dtype:MxP[:signs][:inverse][:raw], dtype float32/float64")
    size, flags = parts[1], set(parts[2:])
    unknown = flags - {"signs", "inverse", "raw", "normalized"}
    if unknown:
        raise SystemExit(f"bad case {text!r}: unknown flags {sorted(unknown)} (accepted: signs, inverse, raw, normalized)")
    try:
        if size.startswith("2^"):
            return np.dtype(parts[0]), 1, 1 << int(size[2:]), flags
        m, _, p = size.partition("x")
        return np.dtype(parts[0]), int(m), int(p), flags
    except ValueError:
        raise SystemExit(f"bad case {text!r}: the size must be 2^k or MxP with integers k, M, P") from None


def runner(module, route, dtype, m, p, flags, threads=1):
    reg, block = module.IN_REGISTER[dtype.itemsize], module.L1_BLOCK[dtype.itemsize]
    if m == 1 and not flags & {"signs", "inverse"}:
        scale = dtype.type(p ** -0.5 if "normalized" in flags else 1.0)
        if threads > 1:  # as hadamard.fwht splits a batch
            return lambda a: module.sylvester_parallel(a, scale, reg, block, _fwht._rows_per_task(a.shape[0], threads))
        return lambda a: module.sylvester_serial(a, scale, reg, block)
    if threads > 1:
        raise SystemExit("--threads above 1 times powers of two only (cases dtype:2^k[:normalized])")
    n = m * p
    signs = _fwht.random_signs(n, 0) if "signs" in flags else None
    spec = _fwht._Spec.build(n, m, p, dtype, normalized="raw" not in flags, signs=signs, inverse="inverse" in flags)
    if straight_line(module, route, m, p, dtype.itemsize):
        # the route hadamard.fwht takes (or took, at the base revision)
        serial = product_drivers(module, m, spec.transposed, _fwht._rows_in_l1(m, p, dtype.itemsize))[0]
        return lambda a: serial(a, spec.p, spec.pre, spec.post, spec.scale, reg, block)
    return lambda a: module.transform_serial(a, spec.p, spec.codes, spec.gsigns, spec.w, spec.pre, spec.post,
                                             spec.scale, reg, block)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision whose kernels are compared with the working tree's")
    ap.add_argument("--cases", nargs="+", required=True, help="dtype:2^k[:normalized] or dtype:MxP[:signs][:inverse][:raw]")
    ap.add_argument("--mib", type=int, default=64, help="array size in MiB (default 64)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1,
                    help="numba threads, each side through its parallel driver (powers of two only; default 1)")
    add_offset_argument(ap)
    args = ap.parse_args(argv)
    check_offset(ap, args.offset)
    if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
        ap.error(f"--threads must be 1 to {numba.config.NUMBA_NUM_THREADS} (numba's threads here), got {args.threads}")
    numba.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        base, base_route = load_revision(args.base, folder)
        sides = {"base": (base, base_route), "this": (current, _fwht._register_product_fits)}
        print(f"ns per element, median of {args.repeats}, ~{args.mib} MiB, placed {placement(args.offset)}, {args.threads} thread(s);"
              f" base = {args.base}")
        for text in args.cases:
            dtype, m, p, flags = parse_case(text)
            n = m * p
            src = np.random.default_rng(n).standard_normal((max(1, (args.mib << 20) // (n * dtype.itemsize)), n)).astype(dtype)
            fns = {k: runner(mod, route, dtype, m, p, flags, args.threads) for k, (mod, route) in sides.items()}
            routes = {k: "straight-line" if straight_line(mod, route, m, p, dtype.itemsize) else "table"
                      for k, (mod, route) in sides.items()} if m > 1 else None
            results = {}
            for name, fn in fns.items():  # compiles too; each result kept for the bit comparison
                results[name] = src.copy()
                fn(results[name])
            taken = timings({k: (fn, src) for k, fn in fns.items()}, args.repeats, args.offset)
            med = {k: float(np.median(v)) / src.size * 1e9 for k, v in taken.items()}
            # the ratio of the two timings of each repeat, taken moments apart: steadier than
            # the ratio of the medians when the machine's speed drifts
            paired = float(np.median(np.array(taken["base"]) / np.array(taken["this"])))
            same = np.array_equal(results["base"].view(np.uint8), results["this"].view(np.uint8))
            print(f"  {text:28s} base {med['base']:.3f}  this {med['this']:.3f}  this/base speed {med['base'] / med['this']:.2f}x (paired {paired:.3f}x)"
                  f"  {'same bits' if same else 'bits differ'}" + (f"  (routes: base {routes['base']}, this {routes['this']})" if routes else ""),
                  flush=True)


if __name__ == "__main__":
    main()
