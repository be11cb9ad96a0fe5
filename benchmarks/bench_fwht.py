"""Throughput of ``hadamard.fwht`` against the FWHT libraries on PyPI, measured in one run.

Usage::

    python benchmarks/bench_fwht.py            # installs the peers it can, then measures
    python benchmarks/bench_fwht.py --no-install --mib 16 --repeats 5
    python benchmarks/bench_fwht.py --no-install --mib 0.125 --sections throughput   # in cache

Every figure is the median over ``--repeats`` timings of a transform of a
``batch x n`` array of about ``--mib`` MiB, reported as GB/s of input
processed; implementations are timed in turn inside each repeat, so that a
busy machine slows all of them alike, and the printed ratios compare figures
from this run only. Peers: ``fht-cpu`` and FFHT (``ffht-unofficial``, C SIMD),
``hadamard-transform`` (pure torch), a dense BLAS product ``x @ H`` and an
in-place scale of the same array (the memory roof). A peer that does not
install is reported as missing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time

# one BLAS thread unless asked otherwise: the single-thread table must be single-thread for every peer
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import hadamard  # noqa: E402

PEERS = {
    # import name: pip commands that install it here
    "fht_cpu": [["fht-cpu"]],
    "ffht": [["pybind11"], ["--no-build-isolation", "ffht-unofficial"]],
    "hadamard_transform": [["--no-deps", "hadamard-transform"]],
}


def fwht_in_place(a: np.ndarray) -> None:
    """Ours as every section times it: in place, unnormalized (as the peers are)."""
    hadamard.fwht(a, normalized=False, out=a)


def install_peers(allowed: bool) -> dict[str, str]:
    """Import each peer, pip-installing it first when allowed; return name -> status."""
    status = {}
    for name, commands in PEERS.items():
        try:
            importlib.import_module(name)
            status[name] = "ok"
            continue
        except ImportError:
            pass
        if not allowed:
            status[name] = "not installed (--no-install)"
            continue
        for args in commands:
            proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
            if proc.returncode:
                status[name] = f"failed to install: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'pip error'}"
                break
        else:
            try:
                importlib.invalidate_caches()
                importlib.import_module(name)
                status[name] = "ok (installed now)"
            except ImportError as exc:
                status[name] = f"installed but does not import: {exc}"
    return status


def implementations(status: dict[str, str], threads: int):
    """name -> function transforming a C-contiguous 2-D array in place (unnormalized where the peer is)."""
    impls = {"hadamard.fwht": fwht_in_place}
    if status.get("fht_cpu", "").startswith("ok"):
        import fht_cpu

        impls["fht-cpu"] = lambda a: fht_cpu.fht(a, inplace=True, num_threads=threads if threads > 1 else 1)
    if status.get("ffht", "").startswith("ok"):
        import ffht

        impls["FFHT"] = lambda a: ffht.fht_(a, threads)
    impls["scale (roof)"] = lambda a: np.multiply(a, a.dtype.type(1.0), out=a)
    return impls


def measure(impls: dict, src: np.ndarray, repeats: int, offset: int | None = None) -> dict[str, float]:
    """Median seconds per implementation; in-place work on a fresh copy of ``src`` each time."""
    return measure_cases({name: (f, src) for name, f in impls.items()}, repeats, offset)


def measure_cases(cases: dict, repeats: int, offset: int | None = None) -> dict[str, float]:
    """Median seconds per case ``name -> (function, src)``, each on a fresh copy of its own
    ``src`` each time; the cases take turns inside every repeat, so a ratio of two of them
    compares timings taken moments apart (this machine's speed drifts by 10-25 % over minutes)."""
    return {k: float(np.median(v)) for k, v in timings(cases, repeats, offset).items()}


def timings(cases: dict, repeats: int, offset: int | None = None) -> dict[str, list[float]]:
    """The ``repeats`` seconds of each case of :func:`measure_cases`, in the order taken, on
    work arrays placed by :func:`work_like`."""
    works = {name: work_like(src, offset) for name, (_, src) in cases.items()}
    times = {k: [] for k in cases}
    for name, (f, src) in cases.items():  # warm-up: JIT, page faults, thread pools
        np.copyto(works[name], src)
        f(works[name])
    for _ in range(repeats):
        for name, (f, src) in cases.items():
            work = works[name]
            np.copyto(work, src)
            t = time.perf_counter()
            f(work)
            times[name].append(time.perf_counter() - t)
    return times


def work_like(src: np.ndarray, offset: int | None) -> np.ndarray:
    """An uninitialized C-contiguous array of ``src``'s shape and dtype: where numpy puts it
    (``offset=None``; a large array then starts 16 bytes past a page boundary), or starting
    ``offset`` bytes past a 64-byte boundary. Every implementation of a run gets the same
    placement: from 16 bytes off, half of the 32-byte loads straddle two cache lines, which
    the implementations do not all pay for alike."""
    if offset is None:
        return np.empty_like(src)
    buf = np.empty(src.nbytes + 64 + offset, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    return buf[start : start + src.nbytes].view(src.dtype).reshape(src.shape)


def placement(offset: int | None) -> str:
    """How the run places its work arrays, in words."""
    if offset is None:
        return "where numpy puts them (glibc's mmap: large arrays 16 bytes past a page boundary)"
    return f"{offset} bytes past a 64-byte boundary (--offset)"


def add_offset_argument(parser: argparse.ArgumentParser) -> None:
    """``--offset``, the placement :func:`work_like` gives the work arrays (this script's and
    ``fwht_kernel_ab.py``'s); check it with :func:`check_offset`."""
    parser.add_argument("--offset", type=int, default=None,
                        help="start every work array this many bytes past a 64-byte boundary (0, 8, ..., 56; "
                             "default: where numpy puts it, 16 bytes past for large arrays)")


def check_offset(parser: argparse.ArgumentParser, offset: int | None) -> None:
    """Refuse (``parser.error``) an ``--offset`` other than a multiple of 8 below 64."""
    if offset is not None and offset not in range(0, 64, 8):
        parser.error(f"--offset must be one of 0, 8, ..., 56 bytes (a multiple of float64's 8), got {offset}")


def gbs(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


def throughput_table(status, args, dtype, threads) -> list[dict]:
    import numba

    numba.set_num_threads(threads)
    impls = implementations(status, threads)
    rows = []
    for k in range(args.kmin, args.kmax + 1):
        n = 1 << k
        batch = max(1, array_bytes(args) // (n * np.dtype(dtype).itemsize))
        src = np.random.default_rng(k).standard_normal((batch, n)).astype(dtype)
        t = measure(impls, src, args.repeats, args.offset)
        row = {"dtype": np.dtype(dtype).name, "threads": threads, "n": n, "batch": batch}
        row.update({name: gbs(src.nbytes, s) for name, s in t.items()})
        rows.append(row)
        c_peers = [row[p] for p in ("fht-cpu", "FFHT") if p in row]
        best = max(c_peers) if c_peers else float("nan")
        print(
            f"{row['dtype']:>7} thr={threads} n=2^{k:<2} batch={batch:<7} "
            + " ".join(f"{name}={row[name]:6.2f}" for name in impls)
            + f"  GB/s | ours/best C peer = {row['hadamard.fwht'] / best:.2f}",
            flush=True,
        )
    return rows


def slow_peers(status, args) -> None:
    """Dense BLAS and the pure-torch peer at n = 4096 (smaller array: they are ~100x slower)."""
    import numba

    numba.set_num_threads(1)  # one thread, as BLAS and torch are given
    n = 4096
    src = np.random.default_rng(0).standard_normal((max(1, array_bytes(args) // 64 // (n * 4)), n)).astype(np.float32)
    H = hadamard.get(n).astype(np.float32)
    impls = {"dense BLAS x @ H": lambda a: a @ H}
    if status.get("hadamard_transform", "").startswith("ok"):
        import torch
        from hadamard_transform import hadamard_transform as ht

        torch.set_num_threads(1)
        impls["hadamard-transform (torch)"] = lambda a: ht(torch.from_numpy(a))
    # ours on its own, back to back: between two calls of a peer ~100x slower, numba's idle
    # thread pool goes to sleep and the wake-up (tens of microseconds) would be timed instead
    # of the transform (~40 us on this 1 MiB array)
    t = measure({"hadamard.fwht": fwht_in_place}, src, args.repeats, args.offset)
    t.update(measure(impls, src, max(3, args.repeats // 2), args.offset))
    ours = gbs(src.nbytes, t["hadamard.fwht"])
    for name, s in t.items():
        print(f"  float32 n=4096 batch={src.shape[0]:<5} {name:28s} {gbs(src.nbytes, s):8.3f} GB/s   ours/this = {ours / gbs(src.nbytes, s):8.1f}")


def latency(status, args) -> None:
    """One vector of n = 4096 float32: microseconds per call, median of many calls."""
    x = np.random.default_rng(1).standard_normal(4096).astype(np.float32)
    if args.offset is not None:  # else where numpy put it (16 bytes off a cache line here)
        placed = work_like(x, args.offset)
        placed[...] = x
        x = placed
    impls = {"hadamard.fwht": fwht_in_place}
    if status.get("fht_cpu", "").startswith("ok"):
        import fht_cpu

        impls["fht-cpu"] = lambda a: fht_cpu.fht(a, inplace=True)
    if status.get("ffht", "").startswith("ok"):
        import ffht

        impls["FFHT"] = lambda a: ffht.fht_(a, 1)
    per_call = {}
    for name, f in impls.items():
        f(x)
        ts = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for _ in range(500):
                f(x)
            ts.append((time.perf_counter() - t) / 500)
        per_call[name] = float(np.median(ts)) * 1e6
    print("  " + "  ".join(f"{k}={v:.2f} us" for k, v in per_call.items()))


MODEL_WIDTHS = {(148, 7): "Qwen2.5-7B", (140, 6): "Qwen2.5-1.5B", (108, 7): "Llama-2-13B, Qwen2.5-14B",
                (100, 8): "Qwen3-32B"}
"""MLP widths ``m * 2^k`` of current models on base orders beyond the issue's three (Paley's
matrices, whose product is the circulant loop since the twelfth session); printed after the
target rows, for information."""


def composite(args) -> None:
    """Time per element of n = m * 2^k against the nearest power of two (float32, one thread),
    the two timed in turn: the issue's three base orders, then the MLP widths of some models."""
    import numba

    numba.set_num_threads(1)
    for m in (12, 28, 172):
        for k in (6, 10):
            composite_row(args, m, k)
    print("  MLP widths of models on other base orders (beyond the target):")
    for (m, k), model in MODEL_WIDTHS.items():
        composite_row(args, m, k, f" ({model})")


def composite_row(args, m: int, k: int, label: str = "") -> None:
    n = m << k
    if not hadamard.exists(n):
        print(f"  n = {m} * 2^{k} = {n}: no Hadamard matrix of this order is built by this library (skipped)")
        return
    p2 = 1 << round(np.log2(n))
    srcs = {size: np.random.default_rng(size).standard_normal((max(1, array_bytes(args) // (size * 4)), size)).astype(np.float32)
            for size in (n, p2)}
    seconds = measure_cases({size: (fwht_in_place, src) for size, src in srcs.items()}, args.repeats, args.offset)
    t = {size: seconds[size] / srcs[size].size * 1e9 for size in srcs}
    print(f"  n = {m:3d} * 2^{k:<2} = {n:6d}: {t[n]:.3f} ns/element; 2^{round(np.log2(n))} = {p2}: {t[p2]:.3f} ns/element; "
          f"ratio {t[n] / t[p2]:.2f}{label}")


def forms(status, args) -> None:
    """The forms users call, against the plain transform the other sections time (float32,
    one thread, timed in turn): normalized (the default), randomized ``H diag(s)`` and its
    inverse; and, where fht-cpu installed, what the randomized form costs built from it (a
    numpy pass for the signs, its transform, a numpy pass for the scale)."""
    import numba

    numba.set_num_threads(1)
    fht = None
    if status.get("fht_cpu", "").startswith("ok"):
        import fht_cpu

        fht = fht_cpu
    for n in (1 << 10, 1 << 12, 1 << 16, 36 * 16, 12 * 128):
        src = np.random.default_rng(n).standard_normal((max(1, array_bytes(args) // (n * 4)), n)).astype(np.float32)
        s = hadamard.random_signs(n, seed=1)
        s32 = s.astype(np.float32)
        scale = np.float32(n ** -0.5)
        cases = {
            "plain": fwht_in_place,
            "normalized": lambda a: hadamard.fwht(a, out=a),
            "randomized": lambda a, s=s: hadamard.fwht(a, signs=s, out=a),
            "inverse": lambda a, s=s: hadamard.fwht(a, signs=s, inverse=True, out=a),
        }
        if fht is not None and n & (n - 1) == 0:
            def composed(a, s32=s32, scale=scale):
                np.multiply(a, s32, out=a)
                fht.fht(a, inplace=True, num_threads=1)
                np.multiply(a, scale, out=a)

            cases["fht-cpu randomized"] = composed
        t = measure_cases({name: (fn, src) for name, fn in cases.items()}, args.repeats, args.offset)
        ns = {name: sec / src.size * 1e9 for name, sec in t.items()}
        cells = ", ".join(f"{name} {v:.3f} ({v / ns['plain']:.2f}x)" for name, v in ns.items())
        print(f"  n = {n:5d}: ns/element (against plain): {cells}")


def threads_against_one(args, threads: int) -> None:
    """``threads`` against one thread (float32), timed in turn, beside the memory roof of each:
    an in-place scale of the same array on as many threads."""
    import numba

    @numba.njit(parallel=True, cache=True)
    def scale(a, factor):
        flat = a.reshape(a.size)
        for i in numba.prange(flat.size):
            flat[i] *= factor  # a run-time factor: a constant 1.0 would be folded away

    def on(count, fn):
        def run(a):
            numba.set_num_threads(count)
            fn(a)
        return run

    roof = lambda a: scale(a, a.dtype.type(1.0))  # noqa: E731
    for k in (10, 12, 16):
        n = 1 << k
        src = np.random.default_rng(k).standard_normal((max(1, array_bytes(args) // (n * 4)), n)).astype(np.float32)
        names = {"fwht 1": on(1, fwht_in_place), f"fwht {threads}": on(threads, fwht_in_place), "roof 1": on(1, roof), f"roof {threads}": on(threads, roof)}
        t = measure_cases({name: (fn, src) for name, fn in names.items()}, args.repeats, args.offset)
        g = {name: gbs(src.nbytes, s) for name, s in t.items()}
        print(f"  n=2^{k}: fwht {g['fwht 1']:.2f} / {g[f'fwht {threads}']:.2f} GB/s on 1 / {threads} threads, ratio {g[f'fwht {threads}'] / g['fwht 1']:.2f};"
              f" roof (in-place scale) {g['roof 1']:.2f} / {g[f'roof {threads}']:.2f} GB/s, ratio {g[f'roof {threads}'] / g['roof 1']:.2f};"
              f" fwht at {g[f'fwht {threads}'] / g[f'roof {threads}']:.0%} of the {threads}-thread roof,"
              f" which leaves at most {g[f'roof {threads}'] / g['fwht 1']:.2f}x one thread of fwht")
    numba.set_num_threads(1)


def array_bytes(args) -> int:
    """Bytes of the transformed array asked for by ``--mib``."""
    return int(args.mib * (1 << 20))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=64,
                        help="size of the transformed array in MiB (default 64; e.g. 0.125 keeps it in L2)")
    parser.add_argument("--repeats", type=int, default=7, help="timings per figure; the median is reported")
    parser.add_argument("--kmin", type=int, default=8)
    parser.add_argument("--kmax", type=int, default=16)
    parser.add_argument("--no-install", action="store_true", help="do not pip-install missing peers")
    parser.add_argument("--sections", default="throughput,slow,latency,composite,forms,threads")
    add_offset_argument(parser)
    args = parser.parse_args(argv)
    check_offset(parser, args.offset)
    if not args.mib >= 1 / 64 or args.repeats < 1 or not 1 <= args.kmin <= args.kmax <= 24:
        parser.error("need --mib >= 1/64 (16 KiB), --repeats >= 1 and 1 <= --kmin <= --kmax <= 24")
    sections = set(args.sections.split(","))

    status = install_peers(not args.no_install)
    import numba

    print(f"numpy {np.__version__}, numba {numba.__version__}, cpu count {os.cpu_count()}, numba threads {numba.config.NUMBA_NUM_THREADS}")
    for name, st in status.items():
        print(f"peer {name}: {st}")
    print(f"GB/s of input processed, median of {args.repeats}; arrays of ~{args.mib} MiB, placed {placement(args.offset)};"
          " all peers in-place and unnormalized")
    if "throughput" in sections:
        print("\n== one thread ==")
        for dtype in (np.float32, np.float64):
            throughput_table(status, args, dtype, 1)
    if "slow" in sections:
        print("\n== slow peers, one thread ==")
        slow_peers(status, args)
    if "latency" in sections:
        print("\n== latency, one vector n = 4096 float32 ==")
        latency(status, args)
    if "composite" in sections:
        print("\n== n = m * 2^k against the nearest power of two ==")
        composite(args)
    if "forms" in sections:
        print("\n== normalized and randomized forms against the plain transform (float32, one thread) ==")
        forms(status, args)
    if "threads" in sections:
        threads = min(2, numba.config.NUMBA_NUM_THREADS)
        print(f"\n== {threads} threads vs 1 (float32) ==")
        threads_against_one(args, threads)

if __name__ == "__main__":
    main()
