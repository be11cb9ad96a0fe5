"""Tests of the numpy fast Walsh-Hadamard transform ``hadamard.fwht`` against dense products."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hadamard
from hadamard import NoHadamardError, UnknownOrderError

POWERS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 2048]
COMPOSITE = [12, 20, 24, 28, 36, 40, 44, 48, 60, 72, 76, 96, 12 * 64, 12 * 128, 28 * 32, 36 * 16, 76 * 8, 20 * 64]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def dense(x: np.ndarray, n: int, *, normalized=True, signs=None, inverse=False) -> np.ndarray:
    """The reference: the same map as a dense float64 product with ``hadamard.get(n)``."""
    H = hadamard.get(n).astype(np.float64)
    x = np.asarray(x, dtype=np.float64)
    s = np.ones(n) if signs is None else np.asarray(signs, dtype=np.float64)
    if inverse:
        c = 1 / np.sqrt(n) if normalized else 1 / n
        return s * (x @ H) * c
    c = 1 / np.sqrt(n) if normalized else 1.0
    return (s * x) @ H.T * c


def rel_err(y, ref) -> float:
    return float(np.abs(np.asarray(y, dtype=np.float64) - ref).max() / max(np.abs(ref).max(), 1e-300))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", POWERS + COMPOSITE)
def test_matches_dense(n, dtype):
    x = np.random.default_rng(n).standard_normal((5, n)).astype(dtype)
    for normalized in (True, False):
        y = hadamard.fwht(x, normalized=normalized)
        assert y.dtype == dtype and y.shape == x.shape
        assert rel_err(y, dense(x, n, normalized=normalized)) < TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parallel_path_matches_dense(dtype):
    # more than 2^16 elements: the multi-threaded kernel runs
    for n, rows in ((2048, 48), (12 * 256, 40), (8, 20000), (12 * 64, 100), (1 << 12, 20)):
        x = np.random.default_rng(rows).standard_normal((rows, n)).astype(dtype)
        assert rel_err(hadamard.fwht(x), dense(x, n)) < TOL[dtype]


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_large_out_of_place_results_start_on_a_cache_line(dtype, axis):
    # numpy puts large arrays 16 bytes past a page boundary; the transform's own copy is
    # aligned to 64 bytes (1 MiB and more), which the kernels run faster on
    n = 1024
    x = np.random.default_rng(1).standard_normal((300, n)).astype(dtype)
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    y = hadamard.fwht(x, axis=axis)
    assert y.dtype == dtype and y.shape == x.shape
    work = y if axis == -1 else np.moveaxis(y, 0, -1)
    if dtype != np.float16:  # float16 results are a cast of the float32 work array
        assert work.ctypes.data % 64 == 0
    moved = x if axis == -1 else x.T
    tol = 1e-2 if dtype == np.float16 else TOL[dtype]
    assert rel_err(work.astype(np.float64), dense(moved.astype(np.float64), n)) < tol


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# sub-rows of 2 ... 64 values: 40 = 20 * 2, 80, 12 * 8 ... 12 * 64 go through the straight-line
# product (which takes the signs in passes of their own), 376 = 188 * 2 through the bundled
# table, whose copy-in does the signs and the first levels in one kernel
@pytest.mark.parametrize("n", [1, 16, 12, 40, 80, 12 * 8, 36 * 16, 28 * 32, 12 * 64, 188 * 2, 1024])
@pytest.mark.parametrize("normalized", [True, False])
def test_signs_and_inverse_match_dense(n, normalized, dtype):
    x = np.random.default_rng(1).standard_normal((9, n)).astype(dtype)
    s = hadamard.random_signs(n, seed=5)
    y = hadamard.fwht(x, signs=s, normalized=normalized)
    assert rel_err(y, dense(x, n, normalized=normalized, signs=s)) < TOL[dtype]
    back = hadamard.fwht(y, signs=s, normalized=normalized, inverse=True)
    assert rel_err(back, dense(y, n, normalized=normalized, signs=s, inverse=True)) < TOL[dtype]
    assert np.allclose(back, x, atol=10 * TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 6, 7, 11, 12, 13, 14, 16])
def test_signs_of_powers_of_two_ride_on_the_first_pass(k, dtype):
    # the signs (times the scale) multiply what the first pass over memory loads, on every
    # route: rows shorter than a register block, groups of rows (a short last group too),
    # 16 and 32 KiB rows, longer rows, and the parallel kernel; s is +-1, so x * s is exact
    # and the result must be the plain transform of x * s, bit for bit
    n = 1 << k
    s = hadamard.random_signs(n, seed=k)
    for rows in (7, (1 << 17) // n + 3):
        x = np.random.default_rng(rows).standard_normal((rows, n)).astype(dtype)
        for normalized in (True, False):
            y = hadamard.fwht(x, signs=s, normalized=normalized)
            assert np.array_equal(y, hadamard.fwht(x * s.astype(dtype), normalized=normalized))
            back = hadamard.fwht(y, signs=s, normalized=normalized, inverse=True)
            plain = hadamard.fwht(y, normalized=normalized, inverse=True).astype(np.float64) * s
            assert rel_err(back, plain) < TOL[dtype]
            assert np.allclose(back, x, atol=10 * TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", range(12, 18))
def test_long_rows_match_the_halving_recursion(k, dtype):
    # rows longer than one 16 KiB block take another route (their widest levels ride on the
    # first pass), and a dense reference of this size is too big: check
    # H_2n [a, b] = [H_n a + H_n b, H_n a - H_n b] against the transform of half the
    # length, which the dense test above pins down up to 2^11 (and this test, inductively, above)
    n = 1 << k
    for rows in (3, (1 << 17) // n + 1):  # one thread, and (over 2^16 elements) the parallel kernel
        x = np.random.default_rng(k).standard_normal((rows, n)).astype(dtype)
        y = hadamard.fwht(x, normalized=False)
        a = hadamard.fwht(x[:, : n // 2], normalized=False).astype(np.float64)
        b = hadamard.fwht(x[:, n // 2 :], normalized=False).astype(np.float64)
        assert rel_err(y, np.concatenate([a + b, a - b], axis=1)) < TOL[dtype]


def kronecker(x: np.ndarray, m: int, p: int, *, signs=None, inverse=False) -> np.ndarray:
    """The normalized reference ``(H_m (x) H_p)`` without the ``n x n`` matrix: ``H_m X H_p^T``
    on each row read as an ``(m, p)`` matrix (float64)."""
    hm, hp = hadamard.get(m).astype(np.float64), hadamard.get(p).astype(np.float64)
    s = np.ones(m * p) if signs is None else np.asarray(signs, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if inverse:
        y = (hm.T @ x.reshape(-1, m, p) @ hp).reshape(x.shape)
        return s * y / np.sqrt(m * p)
    y = (hm @ (s * x).reshape(-1, m, p) @ hp.T).reshape(x.shape)
    return y / np.sqrt(m * p)


@pytest.mark.parametrize(
    ("m", "p", "dtype", "straight_line"),
    [
        (12, 1024, np.float32, False),  # 48 KiB rows: the table (12 sub-rows 4 KiB apart crowd L1 sets)
        (28, 512, np.float64, False),
        (188, 4, np.float32, False),  # m above REGISTER_PRODUCT_MAX_M, short sub-rows: the bundled table
        (44, 2, np.float32, True),  # sub-rows of a quarter vector
        (12, 512, np.float32, True),  # 24 KiB rows, within the L1d
        (172, 16, np.float64, True),  # m = 172: circulant blocks, a loop over the output rows
        (172, 64, np.float32, True),  # 43 KiB rows, but m >= 100 on short sub-rows
        (172, 1024, np.float32, True),  # 4 KiB sub-rows: circulant blocks take rows of any length
        (116, 2, np.float64, True),  # circulant blocks on half vectors
        (148, 128, np.float32, True),  # Paley II over a prime: 8 circulant blocks after Rader's reindexing
        (124, 1024, np.float64, True),  # ... which take sub-rows of any length
        (108, 128, np.float32, True),  # Paley I over 107: 2 circulant blocks, rows beyond L1
        (108, 16, np.float32, True),  # ... rows within L1: the straight-line network instead
        (108, 1024, np.float32, False),  # ... and its long sub-rows: the table
        (140, 512, np.float32, True),  # Paley I over 139: 6 blocks, which take sub-rows of any length
        (100, 256, np.float32, True),  # Paley II over GF(7^2): 8 blocks too (Qwen3-32B's MLP width 25600)
        (196, 4, np.float32, True),  # above REGISTER_PRODUCT_MAX_M only the circulant loop: Paley II, 8 blocks
        (180, 16, np.float64, True),  # ... Paley I's 2 blocks, even on rows within L1
    ],
)
def test_both_h_m_products_match_the_kronecker_form(m, p, dtype, straight_line):
    # the route is part of what is tested: each of the two products keeps a case here
    from hadamard import _fwht

    assert hadamard.factors(m * p) == (m, p)
    assert _fwht._register_product_fits(m, p, np.dtype(dtype).itemsize) is straight_line
    n = m * p
    rows = max(3, (1 << 17) // n + 1)  # over 2^16 elements: the parallel drivers
    x = np.random.default_rng(m + p).standard_normal((rows, n)).astype(dtype)
    s = hadamard.random_signs(n, seed=2)
    assert rel_err(hadamard.fwht(x), kronecker(x, m, p)) < TOL[dtype]
    assert rel_err(hadamard.fwht(x, signs=s), kronecker(x, m, p, signs=s)) < TOL[dtype]
    assert rel_err(hadamard.fwht(x, signs=s, inverse=True), kronecker(x, m, p, signs=s, inverse=True)) < TOL[dtype]
    # a row's result does not depend on the batch around it (serial or parallel, any grouping)
    assert np.array_equal(hadamard.fwht(x[:1]), hadamard.fwht(x)[:1])


@pytest.mark.parametrize(
    ("m", "blocks"),
    [(12, 2), (28, 2), (92, 4), (100, 8), (108, 2), (116, 4), (124, 8), (132, 10), (140, 6), (148, 8), (172, 4), (188, 0),
     (244, 22), (344, 0), (924, 8)],
)
def test_circulant_forms_rebuild_the_matrix(m, blocks):
    # the form read back (groups' sums, singles, border columns and rows) gives H_m and H_m^T
    # entry for entry: Williamson's arrays (4 blocks), Paley II (8) and Paley I (an even divisor
    # of q - 1, or 2) over GF(q), prime or not (27, 7^2, 3^5), after Rader's reindexing;
    # Turyn's 188 and a Kronecker product (344 = 172 * 2) have none
    from hadamard import _fwht_kernels

    for h in (hadamard.get(m).astype(np.int64), hadamard.get(m).T.astype(np.int64)):
        form = _fwht_kernels.circulant_form(h)
        assert (0 if form is None else len(form.index)) == blocks
        if form is None:
            continue
        w, index = form.w, [np.array(ix) for ix in form.index]
        sums = 8 * len(form.groups)
        rebuilt = np.zeros((m, m), dtype=np.int64)
        for i, row in enumerate(form.terms):
            for t, entry, sign in row:
                if entry < sums:
                    group, code = form.groups[entry // 8], entry % 8
                    signs = sign * np.array([1] + [-1 if code >> (j - 1) & 1 else 1 for j in (1, 2, 3)])
                    for (j, shift), s in zip(group, signs):
                        rebuilt[index[i], index[j][(np.arange(w) + t + shift) % w]] += s
                else:
                    j = form.singles[entry - sums]
                    rebuilt[index[i], index[j][(np.arange(w) + t) % w]] += sign
            for b, sign in form.bias[i]:
                rebuilt[index[i], form.border[b]] += sign
        for b, (per_block, per_border) in zip(form.border, form.border_rows):
            for j, sign in enumerate(per_block):
                rebuilt[b, index[j]] += sign
            for c, sign in enumerate(per_border):
                rebuilt[b, form.border[c]] += sign
        assert np.array_equal(rebuilt, h)


def test_circulant_product_keeps_two_block_forms_off_rows_in_l1():
    from hadamard import _fwht_kernels

    h = hadamard.get(108)
    assert _fwht_kernels.circulant_product(h) is not None
    assert _fwht_kernels.circulant_product(h, rows_in_l1=True) is None
    assert _fwht_kernels.circulant_product(hadamard.get(140), rows_in_l1=True) is not None  # 6 blocks
    assert _fwht_kernels.circulant_product(hadamard.get(180), rows_in_l1=True) is not None  # no straight line above 172
    assert _fwht_kernels.circulant_product(hadamard.get(92)) is None  # below REGISTER_PRODUCT_LARGE_M
    # the drivers' constant names the two forms apart only where they differ
    assert _fwht_kernels._product_kind(108, False, True) != _fwht_kernels._product_kind(108, False, False)
    assert _fwht_kernels._product_kind(148, True, True) == _fwht_kernels._product_kind(148, True, False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([1, 2, 4, 8, 12, 16, 20, 24, 32, 36, 48, 64, 72, 96, 128]),
    lead=st.lists(st.integers(0, 4), min_size=0, max_size=3),
    data=st.data(),
)
def test_any_axis_any_shape_round_trip(n, lead, data):
    axis_pos = data.draw(st.integers(0, len(lead)))
    shape = list(lead)
    shape.insert(axis_pos, n)
    axis = data.draw(st.sampled_from([axis_pos, axis_pos - len(shape)]))
    x = np.random.default_rng(len(shape) * 100 + n).standard_normal(shape)
    y = hadamard.fwht(x, axis=axis)
    ref = np.moveaxis(dense(np.moveaxis(x, axis, -1), n), -1, axis)
    assert y.shape == x.shape
    assert np.allclose(y, ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max(initial=0)))
    assert np.allclose(hadamard.fwht(y, axis=axis, inverse=True), x, atol=1e-12)


def test_orthogonal_norm_preserved_and_involution():
    x = np.random.default_rng(2).standard_normal((4, 76 * 8))
    y = hadamard.fwht(x)
    assert np.allclose(np.linalg.norm(y, axis=1), np.linalg.norm(x, axis=1))
    # Sylvester matrices are symmetric: the normalized transform is its own inverse
    z = np.random.default_rng(3).standard_normal((2, 256))
    assert np.allclose(hadamard.fwht(hadamard.fwht(z)), z)


def test_one_hot_spreads_evenly():
    # a lone outlier M becomes M/sqrt(n) everywhere (the point of rotating activations)
    x = np.zeros(36 * 16)
    x[17] = 100.0
    y = hadamard.fwht(x)
    assert np.allclose(np.abs(y), 100.0 / np.sqrt(x.size))


def test_in_place_and_out():
    x = np.random.default_rng(4).standard_normal((6, 48)).astype(np.float32)
    expected = hadamard.fwht(x)
    z = x.copy()
    assert hadamard.fwht(z, out=z) is z
    np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-6)
    out = np.empty_like(x)
    assert hadamard.fwht(x, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    # non-contiguous out (and in-place along a non-last axis) goes through a temporary
    big = np.zeros((48, 12), dtype=np.float32)
    view = big.T[::2]
    src = x.copy()
    assert hadamard.fwht(src, out=view) is view
    np.testing.assert_allclose(big.T[::2], expected, rtol=1e-6, atol=1e-6)
    t = np.ascontiguousarray(x.T)
    hadamard.fwht(t, axis=0, out=t)
    np.testing.assert_allclose(t.T, expected, rtol=1e-6, atol=1e-6)
    # the input is left alone when out is not given
    x0 = x.copy()
    hadamard.fwht(x)
    assert np.array_equal(x, x0)


def test_float16_computed_in_float32():
    x = np.random.default_rng(6).standard_normal((3, 64)).astype(np.float16)
    y = hadamard.fwht(x)
    assert y.dtype == np.float16
    assert rel_err(y, dense(x, 64)) < 2e-3


def test_nan_and_inf_propagate_like_the_dense_product():
    x = np.random.default_rng(7).standard_normal((3, 24))
    x[1, 5] = np.nan
    x[2, 0] = np.inf
    y = hadamard.fwht(x)
    assert np.isfinite(y[0]).all()
    assert np.isnan(y[1]).all()
    assert np.isinf(y[2]).all()
    with np.errstate(invalid="ignore"):
        ref = dense(x, 24)
    assert np.array_equal(np.isnan(y), np.isnan(ref)) and np.array_equal(np.isinf(y), np.isinf(ref))


def test_empty_batch():
    x = np.zeros((0, 16), dtype=np.float32)
    assert hadamard.fwht(x).shape == (0, 16)


def test_bad_input_errors():
    x = np.ones((2, 16))
    with pytest.raises(TypeError, match="floating"):
        hadamard.fwht(np.ones((2, 16), dtype=np.int64))
    with pytest.raises(TypeError, match="floating"):
        hadamard.fwht(np.ones(16, dtype=complex))
    with pytest.raises(np.exceptions.AxisError):
        hadamard.fwht(x, axis=2)
    with pytest.raises(TypeError, match="axis"):
        hadamard.fwht(x, axis=1.0)
    with pytest.raises(NoHadamardError, match="no Hadamard matrix of order 6"):
        hadamard.fwht(np.ones(6))
    with pytest.raises(UnknownOrderError, match="nearest orders"):
        hadamard.fwht(np.ones(668))
    with pytest.raises(ValueError, match="length 0"):
        hadamard.fwht(np.ones((3, 0)))
    with pytest.raises(ValueError, match="0-d"):
        hadamard.fwht(np.float64(1.0))
    with pytest.raises(ValueError, match=r"shape \(16,\)"):
        hadamard.fwht(x, signs=np.ones(8))
    with pytest.raises(ValueError, match=r"\+1 or -1"):
        hadamard.fwht(x, signs=np.full(16, 0.5))
    with pytest.raises(ValueError, match="shape and dtype"):
        hadamard.fwht(x, out=np.empty((2, 16), dtype=np.float32))
    ro = np.empty_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        hadamard.fwht(x, out=ro)


def test_random_signs():
    s = hadamard.random_signs(1000, seed=3)
    assert s.dtype == np.int8 and set(np.unique(s)) == {-1, 1}
    assert np.array_equal(s, hadamard.random_signs(1000, seed=3))
    assert not np.array_equal(s, hadamard.random_signs(1000, seed=4))
    assert 400 < (s == 1).sum() < 600
    with pytest.raises(ValueError):
        hadamard.random_signs(0)
    with pytest.raises(ValueError):
        hadamard.random_signs(4, seed=-1)
    with pytest.raises(TypeError):
        hadamard.random_signs(4.0)


def test_import_hadamard_is_light():
    # `import hadamard` must not import torch nor compile kernels, and numpy input never imports torch
    code = (
        "import sys, numpy as np, hadamard\n"
        "assert 'torch' not in sys.modules and 'hadamard._fwht_kernels' not in sys.modules\n"
        "hadamard.fwht(np.ones(16))\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
