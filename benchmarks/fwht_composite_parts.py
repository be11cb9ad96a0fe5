"""Where the time of a composite FWHT (n = m * 2^k) goes: its parts, on one row kept in cache.

For each order, one row is transformed over and over (so memory bandwidth is out of the
picture) by the table kernels, one part at a time:

* butterflies: ``H_p`` on the m sub-rows of length p = 2^k (``_sylvester_rows``);
* table: the Four-Russians sums of every group of 4 sub-rows (``_group_table``);
* dense: the whole ``H_m`` part, table included (``_dense_part``).

Prints nanoseconds per element (median of repeats), one thread. The output passes of the
dense part cost ``dense - table``. ``hadamard.fwht`` runs these table kernels for rows
longer than 32 KiB (most ``m < 100``) and for ``m > 172``; other orders take the
straight-line product (``_register_product_rows``), which this script does not time
(``fwht_kernel_ab.py`` and ``bench_fwht.py`` do), but the table figures stay the baseline
it is compared with.

``--bundled``: instead, the driver of short sub-rows (``_bundled_rows``, p <= 64, which
``hadamard.fwht`` now takes only for ``m > 172``; with sub-rows
of at least one run of registers, written straight back to the rows) on a ~64 MiB batch,
stopped after each stage -- the copy into the scratch with the butterflies, then the
table, then the whole transform -- the three timed in turn. Run from the repository root::

``--register``: instead, the product that ``hadamard.fwht`` runs for most orders up to
``m = 172`` (``_hm_columns``: straight-line code, or the circulant-block loop for
Williamson's orders) alone, on one row kept in cache, column after column. The ``m``
sub-rows are laid out twice: ``p`` values apart, as in a row, and one cache line further
apart; the difference is what the ``m`` sub-rows cost by crowding the same L1 sets::

    python benchmarks/fwht_composite_parts.py [--dtype float32] [--orders 12x64 28x64 12x1024]
    python benchmarks/fwht_composite_parts.py --bundled --orders 12x64 28x64 172x64
    python benchmarks/fwht_composite_parts.py --register --orders 172x64 172x1024 28x64
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_fwht import measure_cases  # noqa: E402
from hadamard import _fwht  # noqa: E402


def parse_order(text: str) -> tuple[int, int]:
    m, _, p = text.partition("x")
    return int(m), int(p)


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--orders", nargs="+", default=["12x64", "28x64", "12x1024", "28x1024"],
                    help="m x p pairs (p a power of two, m a Hadamard order with a dense factor)")
    ap.add_argument("--elements", type=int, default=1 << 25, help="elements transformed per timing")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bundled", action="store_true", help="stages of the bundled driver on a ~64 MiB batch instead")
    ap.add_argument("--register", action="store_true",
                    help="the straight-line / circulant H_m product alone, at the row's stride and one cache line more")
    args = ap.parse_args(argv)
    numba.set_num_threads(1)
    kernels = _fwht._kernels()
    dtype = np.dtype(args.dtype)
    if args.bundled and args.register:
        ap.error("--bundled and --register are two different measurements: pick one")
    if args.bundled:
        bundled_stages(args, kernels, dtype)
        return
    if args.register:
        register_product(args, kernels, dtype)
        return
    reg, block = kernels.IN_REGISTER[dtype.itemsize], kernels.L1_BLOCK[dtype.itemsize]

    @numba.njit
    def butterflies(row, p, reps):
        for _ in range(reps):
            kernels._sylvester_rows(row, p, reg, block, 0.5)

    @numba.njit
    def tables(row, p, w, table, reps):
        for _ in range(reps):
            for c0 in range(0, p, w):
                kernels._group_table(row, p, c0, w, table)

    @numba.njit
    def dense(row, p, codes, signs, w, table, offsets, reps):
        for _ in range(reps):
            kernels._dense_part(row, p, codes, signs, w, table, offsets, row, 0, p, 0, p)
            row[0] *= 0.5  # keeps the values bounded (H_m grows them by sqrt(m) per pass)

    print(f"{args.dtype}, one thread, one row kept in cache; ns per element (median of {args.repeats})")
    print("| m x p | butterflies | table | dense (table included) | output passes |")
    print("|---|---|---|---|---|")
    for text in args.orders:
        m, p = parse_order(text)
        n = m * p
        spec = _fwht._Spec.build(n, m, p, dtype, normalized=True, signs=None, inverse=False)
        if spec.codes.shape[1] == 0:
            raise SystemExit(f"{text}: m = {m} has no dense factor to profile")
        if p < kernels.VECTORS * 32 // dtype.itemsize:
            raise SystemExit(f"{text}: p must be at least {kernels.VECTORS * 32 // dtype.itemsize} for {args.dtype} "
                             "(one run of the product's registers; shorter sub-rows go through the bundled driver, see --bundled)")
        row = np.random.default_rng(0).standard_normal(n).astype(dtype)
        w = min(p, spec.w)
        table = np.empty((spec.codes.shape[1], 8, w), dtype=dtype)
        offsets = kernels.table_offsets(spec.codes, w)
        signs = np.ascontiguousarray(spec.gsigns).reshape(-1)
        reps = max(1, args.elements // n)
        butterflies(row, p, 1)
        tables(row, p, w, table, 1)
        dense(row, p, spec.codes, signs, w, table, offsets, 1)
        per = 1e9 / (reps * n)
        tb = median_seconds(lambda: butterflies(row, p, reps), args.repeats) * per
        tt = median_seconds(lambda: tables(row, p, w, table, reps), args.repeats) * per
        td = median_seconds(lambda: dense(row, p, spec.codes, signs, w, table, offsets, reps), args.repeats) * per
        print(f"| {m} x {p} | {tb:.3f} | {tt:.3f} | {td:.3f} | {td - tt:.3f} |", flush=True)


def bundled_stages(args, kernels, dtype):
    """ns per element of ``_bundled_rows`` stopped after the copy-in, after the table, and whole."""
    lanes = 32 // dtype.itemsize

    @numba.njit
    def stages(x, p, codes, signs, w, stop):
        m = codes.shape[0]
        n = m * p
        bundle = kernels.BUNDLE_WIDTH // p
        width = bundle * p
        w = min(width, w)
        scratch = np.zeros(m * width, dtype=x.dtype)
        table = np.empty((codes.shape[1], 8, w), dtype=x.dtype)
        offsets = kernels.table_offsets(codes, w)
        span = min(p, kernels.IN_REGISTER_BYTES // x.itemsize)
        flat = x.reshape(x.size)
        for r0 in range(0, x.shape[0], bundle):
            count = min(bundle, x.shape[0] - r0)
            kernels._gather_bundle(x, r0, count, m, p, None, scratch, width, span)
            if stop == 0:
                continue
            if stop == 1:
                for c0 in range(0, width, w):
                    kernels._group_table(scratch, width, c0, w, table)
                continue
            kernels._dense_part(scratch, width, codes, signs, w, table, offsets, flat, r0 * n, p, n, count * p)

    print(f"{args.dtype}, one thread, ~64 MiB batch, bundled driver stopped after each stage; ns per element (median of {args.repeats})")
    print("| m x p | copy in + butterflies | + table | whole |")
    print("|---|---|---|---|")
    for text in args.orders:
        m, p = parse_order(text)
        if p != kernels.VECTORS * lanes:
            raise SystemExit(f"{text}: --bundled needs p = {kernels.VECTORS * lanes} for {args.dtype} (one in-register block, written straight back)")
        n = m * p
        spec = _fwht._Spec.build(n, m, p, dtype, normalized=True, signs=None, inverse=False)
        signs = kernels._product_signs(spec.gsigns, spec.post, spec.scale)
        src = np.random.default_rng(0).standard_normal(((64 << 20) // (n * dtype.itemsize), n)).astype(dtype)
        cases = {stop: ((lambda a, stop=stop: stages(a, p, spec.codes, signs, spec.w, stop)), src) for stop in range(3)}
        t = {k: s / src.size * 1e9 for k, s in measure_cases(cases, args.repeats).items()}
        print(f"| {m} x {p} | {t[0]:.3f} | {t[1]:.3f} | {t[2]:.3f} |", flush=True)


def register_product(args, kernels, dtype):
    """ns per element of ``_hm_columns`` alone on one ``(m, p)`` row in cache, its sub-rows
    ``p`` apart and ``p`` plus one cache line apart."""
    lanes = kernels.VECTOR_BYTES // dtype.itemsize
    line = 64 // dtype.itemsize
    print(f"{args.dtype}, one thread, one row kept in cache, the H_m product alone; ns per element (median of {args.repeats})")
    print("| m x p | product kind | sub-rows p apart | p + one cache line apart | crowding |")
    print("|---|---|---|---|---|")
    for text in args.orders:
        m, p = parse_order(text)
        if not (m % 4 == 0 and 1 < m and (m <= kernels.REGISTER_PRODUCT_MAX_M or kernels.circulant_form_blocks(m))
                and p >= lanes and p & (p - 1) == 0):
            raise SystemExit(f"{text}: --register needs m a multiple of 4 up to {kernels.REGISTER_PRODUCT_MAX_M} "
                             f"(or up to {kernels.CIRCULANT_MAX_M} where H_m has a circulant form) "
                             f"and p a power of two of at least {lanes} for {args.dtype}")
        in_l1 = _fwht._rows_in_l1(m, p, dtype.itemsize)
        kind = kernels._product_kind(m, False, in_l1)
        circulant = kernels.circulant_product(kernels._hadamard_matrix(m), in_l1) is not None

        @numba.njit
        def product(row, stride, p, scale, reps):
            for _ in range(reps):
                for c in range(0, p, lanes):
                    kernels._hm_columns(row, c, stride, scale, kind, 0)

        reps = max(1, args.elements // (m * p))
        figures = []
        for stride in (p, p + line):
            row = np.random.default_rng(0).standard_normal(m * stride).astype(dtype)
            scale = 1 / np.sqrt(m)  # a run-time scale keeps the values bounded over the repeats
            product(row, stride, p, scale, 1)
            figures.append(median_seconds(lambda: product(row, stride, p, scale, reps), args.repeats) * 1e9 / (reps * m * p))
        print(f"| {m} x {p} | {'circulant loop' if circulant else 'straight line'} | {figures[0]:.3f} | {figures[1]:.3f} | "
              f"{figures[0] - figures[1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
