"""Smoke runs of the FWHT benchmark, so that it keeps working as the kernels change.

Tiny arrays and one repeat: the figures mean nothing here; what is checked is that
every section runs and prints its lines, and that bad arguments are refused.
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def _benchmark_module(name):
    """Import ``benchmarks/<name>.py`` (the scripts are not a package), leaving sys.path as it was."""
    sys.path.insert(0, BENCHMARKS)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(BENCHMARKS)


@pytest.fixture(scope="module")
def bench_fwht():
    return _benchmark_module("bench_fwht")


@pytest.mark.parametrize("peers", ["as installed", "none"])
def test_every_section_runs_on_a_tiny_array(bench_fwht, capsys, monkeypatch, peers):
    if peers == "none":  # a fresh machine: only our transform and numpy's scale are timed
        monkeypatch.setattr(bench_fwht, "install_peers", lambda allowed: {name: "not installed" for name in bench_fwht.PEERS})
    bench_fwht.main(["--no-install", "--mib", "0.0625", "--repeats", "1", "--kmin", "8", "--kmax", "9",
                     "--sections", "throughput,slow,latency,composite,forms,threads"])
    out = capsys.readouterr().out
    assert "float32 thr=1 n=2^8" in out and "float64 thr=1 n=2^9" in out
    assert "one vector n = 4096" in out and "dense BLAS x @ H" in out
    assert "n = 172 * 2^10" in out and "n = 148 * 2^7  =  18944" in out and "(Qwen2.5-7B)" in out
    assert "n =   576: ns/element (against plain): plain" in out and "randomized" in out
    assert "2 threads vs 1" in out and "n=2^16" in out


@pytest.mark.parametrize("argv", [["--mib", "0"], ["--mib", "nan"], ["--repeats", "0"], ["--kmin", "9", "--kmax", "8"]])
def test_bad_arguments_are_refused(bench_fwht, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        bench_fwht.main(["--no-install", *argv])
    assert exc.value.code == 2
    assert "need --mib" in capsys.readouterr().err


@pytest.mark.parametrize("offset", [0, 8, 16, 56])
def test_work_arrays_start_where_asked(bench_fwht, offset):
    src = np.arange(24.0).reshape(4, 6)
    work = bench_fwht.work_like(src, offset)
    assert work.ctypes.data % 64 == offset
    assert work.shape == src.shape and work.dtype == src.dtype and work.flags.c_contiguous and work.flags.writeable


@pytest.mark.parametrize("offset", ["4", "64", "-8"])
def test_offsets_other_than_multiples_of_8_below_64_are_refused(bench_fwht, capsys, offset):
    with pytest.raises(SystemExit) as exc:
        bench_fwht.main(["--no-install", "--offset", offset])
    assert exc.value.code == 2
    assert "--offset must be one of 0, 8, ..., 56" in capsys.readouterr().err


def test_an_aligned_run_says_so(bench_fwht, capsys):
    bench_fwht.main(["--no-install", "--mib", "0.0625", "--repeats", "1", "--kmin", "8", "--kmax", "8",
                     "--sections", "throughput", "--offset", "0"])
    assert "placed 0 bytes past a 64-byte boundary" in capsys.readouterr().out


@pytest.fixture(scope="module")
def composite_parts():
    return _benchmark_module("fwht_composite_parts")


def test_register_product_parts_run(composite_parts, capsys):
    composite_parts.main(["--register", "--orders", "12x8", "--elements", "2000", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "| 12 x 8 | straight line |" in out


@pytest.mark.parametrize("argv", [["--register", "--orders", "20x4"],   # sub-rows shorter than a vector
                                  ["--register", "--orders", "10x8"],   # not a multiple of 4
                                  ["--register", "--bundled"]])
def test_register_product_parts_refuse_bad_arguments(composite_parts, argv):
    with pytest.raises(SystemExit) as exc:
        composite_parts.main(argv)
    assert exc.value.code  # a message or argparse's 2, never a clean exit
