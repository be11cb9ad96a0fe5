"""Tests of the construction core: get, verify, recipe, factors, exists, orders."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hadamard
from hadamard._numbers import prime_power

ORDERS_2000 = hadamard.orders(2000)

LLM_SIZES = [576, 896, 1536, 2880, 3584, 4544, 4864, 5632, 8960, 9728, 11008, 14336, 17408,
             18176, 18944, 25600, 27648, 29568]


def kronecker_closure(limit: int) -> set[int]:
    """Orders reachable from 1, 2, Sylvester, Paley I, Paley II by Kronecker products,
    computed independently of the planner (sympy decides the prime powers)."""
    import sympy

    def is_prime_power(q: int) -> bool:
        return q >= 2 and len(sympy.factorint(q)) == 1

    base = {1, 2}
    base |= {1 << k for k in range(1, limit.bit_length())}
    base |= {q + 1 for q in range(3, limit) if q % 4 == 3 and is_prime_power(q)}
    base |= {2 * (q + 1) for q in range(5, limit // 2) if q % 4 == 1 and is_prime_power(q)}
    reach = {n for n in base if n <= limit}
    grew = True
    while grew:
        new = {a * b for a in reach for b in reach if a * b <= limit} - reach
        grew = bool(new)
        reach |= new
    return reach


def test_kronecker_closure_counts_and_coverage():
    closure = kronecker_closure(2000)
    assert len([n for n in closure if n % 4 == 0 and n <= 1000]) == 195
    assert len([n for n in closure if n % 4 == 0]) == 364
    assert closure <= set(ORDERS_2000)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 12, 20, 28, 36, 44, 52, 60, 68, 72, 76, 100, 108, 140, 148, 344])
def test_small_orders_verified(n):
    H = hadamard.get(n)
    assert H.dtype == np.int8 and H.shape == (n, n)
    assert set(np.unique(H)) <= {-1, 1}
    G = H.astype(np.int64) @ H.T.astype(np.int64)
    assert np.array_equal(G, n * np.eye(n, dtype=np.int64))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([n for n in ORDERS_2000 if n <= 1200]))
def test_property_random_supported_order(n):
    H = hadamard.get(n)
    assert np.isin(H, (-1, 1)).all()
    assert bool(hadamard.verify(H))
    Q = hadamard.get(n, normalized=True)
    assert np.abs(Q @ Q.T - np.eye(n)).max() < 1e-12
    m, p = hadamard.factors(n)
    assert m * p == n
    assert np.array_equal(H, np.kron(hadamard.get(m), hadamard.get(p)))


@pytest.mark.slow
def test_every_order_up_to_2000_verified_int64():
    for n in ORDERS_2000:
        H = hadamard.get(n).astype(np.int64)
        assert np.array_equal(H @ H.T, n * np.eye(n, dtype=np.int64)), n


def test_deterministic_and_read_only():
    a = hadamard.get(100)
    assert a is hadamard.get(100)
    assert not a.flags.writeable
    from hadamard._recipe import Recipe  # rebuilding from the recipe gives the same matrix
    assert np.array_equal(hadamard.recipe(100).build(), a)
    assert isinstance(hadamard.recipe(100), Recipe)


def test_normalized_dtypes():
    Q32 = hadamard.get(12, normalized=True, dtype=np.float32)
    assert Q32.dtype == np.float32
    with pytest.raises(ValueError, match="float dtype"):
        hadamard.get(12, normalized=True, dtype=np.int32)
    assert hadamard.get(12, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("n", LLM_SIZES)
def test_llm_sizes_have_factored_form(n):
    m, p = hadamard.factors(n)
    assert m * p == n and p & (p - 1) == 0
    assert hadamard.exists(m) and bool(hadamard.verify(hadamard.get(m)))


def test_factors_examples():
    assert hadamard.factors(29568) == (924, 32)
    assert hadamard.factors(576) == (36, 16)
    assert hadamard.factors(4864) == (76, 64)
    assert hadamard.factors(1024) == (1, 1024)


def test_recipes_explain_themselves():
    assert str(hadamard.recipe(28)) == "paley1(q=27)"
    assert str(hadamard.recipe(100)) == "paley2(q=49)"
    assert str(hadamard.recipe(576)) == "kron(paley2(q=17), sylvester(16))"
    text = hadamard.recipe(576).explain()
    assert "order 576" in text and "order 36" in text and "Paley" in text


def test_kron_of_two_non_powers_of_two():
    # 12 * 28 = 336 and 20 * 36 = 720 are reachable; their recipes must build.
    for n in (336, 720):
        assert hadamard.exists(n) is True
        assert bool(hadamard.verify(hadamard.get(n)))


def test_exists_three_states():
    assert hadamard.exists(1) is True and hadamard.exists(2) is True
    assert hadamard.exists(3) is False and hadamard.exists(6) is False and hadamard.exists(30) is False
    assert hadamard.exists(668) is None


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-4, ValueError), (12.0, TypeError), ("12", TypeError),
                                      (True, TypeError), (None, TypeError)])
def test_bad_orders(bad, exc):
    with pytest.raises(exc, match="positive integer"):
        hadamard.get(bad)


def test_impossible_and_unknown_orders_name_nearest():
    with pytest.raises(hadamard.NoHadamardError, match=r"4 below, 8 above"):
        hadamard.get(6)
    with pytest.raises(hadamard.UnknownOrderError, match=r"664 below, 672 above"):
        hadamard.get(668)
    assert issubclass(hadamard.UnknownOrderError, ValueError)


def test_verify_reports_failures():
    assert not hadamard.verify(np.zeros((3, 4)))
    r = hadamard.verify(np.array([[1, 1], [1, 2]]))
    assert not r and r.bad_entries == 1 and "not +-1" in r.problem
    H = hadamard.get(12).copy()
    H[3, 5] *= -1
    r = hadamard.verify(H)
    assert not r and r.bad_row_pairs == 11 and r.first_bad_pair[0] == 3 or r.first_bad_pair[1] == 3
    assert hadamard.verify(hadamard.get(8).astype(np.float64))


def test_prime_power_against_sympy():
    import sympy

    for q in range(1, 3000):
        f = sympy.factorint(q) if q > 1 else {}
        expected = next(iter(f.items())) if len(f) == 1 else None
        assert prime_power(q) == expected, q


@pytest.mark.parametrize(
    "q",
    [9, 27]
    + [pytest.param(q, marks=pytest.mark.slow)
       for q in (25, 49, 81, 121, 125, 169, 243, 289, 343, 361, 529, 625, 729)],
)
def test_quadratic_character_matches_galois(q):
    galois = pytest.importorskip("galois")
    from hadamard._finite_field import difference_table, primitive_polynomial, quadratic_character
    from hadamard._numbers import prime_power

    p, k = prime_power(q)
    f = galois.Poly([1, *reversed(primitive_polynomial(p, k))], field=galois.GF(p))
    assert f.is_primitive()
    GF = galois.GF(q, irreducible_poly=f, repr="int")
    # galois codes elements as integers the same way (base-p digits of the
    # polynomial coefficients), so both tables must agree exactly.
    e = GF(np.arange(q))
    assert np.array_equal(difference_table(q), (e[:, None] - e[None, :]).view(np.ndarray))
    squares = np.unique((e[1:] ** 2).view(np.ndarray))
    chi = quadratic_character(q)
    assert set(np.flatnonzero(chi == 1)) == set(squares.tolist())
    assert chi[0] == 0 and (chi == -1).sum() == (q - 1) // 2
    # the powers of the generator x, against galois's arithmetic in the same field
    from hadamard._finite_field import powers_of_x

    x = p if k > 1 else -primitive_polynomial(p, k)[0] % p  # the code of x modulo f
    assert powers_of_x(q) == (GF(x) ** np.arange(q - 1)).view(np.ndarray).tolist()


@pytest.mark.parametrize("q", [7, 11, 13, 27, 25, 49, 107, 243])
def test_powers_of_x_walk_the_multiplicative_group(q):
    # every nonzero element once, squares exactly at the even powers (x generates GF(q)*)
    from hadamard._finite_field import powers_of_x, quadratic_character

    powers = np.array(powers_of_x(q))
    assert sorted(powers.tolist()) == list(range(1, q))
    assert np.array_equal(quadratic_character(q)[powers], np.where(np.arange(q - 1) % 2, -1, 1))


def test_block_diagonal_is_orthogonal():
    for n in (6, 30, 100, 578):
        Q = hadamard.block_diagonal(n)
        assert np.abs(Q @ Q.T - np.eye(n)).max() < 1e-12
        assert sum(hadamard.block_sizes(n)) == n


def test_disk_cache_round_trip(tmp_path, monkeypatch):
    from hadamard import _api

    monkeypatch.setattr(_api, "_built", {})
    H = hadamard.get(44, cache_dir=tmp_path)
    assert (tmp_path / "hadamard-44.npz").exists()
    monkeypatch.setattr(_api, "_built", {})
    assert np.array_equal(hadamard.get(44, cache_dir=tmp_path), H)
    # A corrupted entry is ignored and rebuilt, never returned.
    good = (tmp_path / "hadamard-44.npz").read_bytes()
    for damaged in (b"garbage", b"", good[: len(good) // 2]):  # not a zip, empty, truncated
        (tmp_path / "hadamard-44.npz").write_bytes(damaged)
        monkeypatch.setattr(_api, "_built", {})
        assert np.array_equal(hadamard.get(44, cache_dir=tmp_path), H)
    # an entry of another cache format (an older library's constructions) is rebuilt too
    np.savez(tmp_path / "hadamard-44.npz", bits=np.packbits((H[::-1] < 0).ravel()), recipe=np.array(hadamard.recipe(44)))
    monkeypatch.setattr(_api, "_built", {})
    assert np.array_equal(hadamard.get(44, cache_dir=tmp_path), H)


def test_an_order_built_in_memory_is_written_when_a_cache_dir_is_asked_for(tmp_path):
    H = hadamard.get(20)  # in memory (built here or by an earlier test)
    assert not (tmp_path / "hadamard-20.npz").exists()
    assert hadamard.get(20, cache_dir=tmp_path) is H
    assert (tmp_path / "hadamard-20.npz").exists()


def test_star_import_leaves_torch_alone():
    import subprocess
    import sys

    code = "import sys; sys.modules['torch'] = None; from hadamard import *; assert get(12).shape == (12, 12)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_big_endian_arrays_are_transformed():
    x = np.random.default_rng(0).standard_normal((3, 12))
    for dtype in (">f4", ">f8"):
        big = x.astype(dtype)
        y = hadamard.fwht(big)
        assert y.dtype == big.dtype
        assert np.allclose(y, hadamard.fwht(x), atol=1e-5)
        s = hadamard.random_signs(12, 1)
        assert np.allclose(hadamard.fwht(big, signs=s), hadamard.fwht(x, signs=s), atol=1e-5)
    with pytest.raises(TypeError, match="axis must be an integer"):
        hadamard.fwht(x, axis=-1.0)


def test_huge_orders_are_answered_at_once():
    # trial division and a sqrt(m) factor search took minutes to hours here
    assert hadamard.exists(10**24) is True
    assert hadamard.exists(4 * (10**20 + 39)) is None
    assert hadamard.recipe(2**100 * 12).order == 2**100 * 12


def test_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, hadamard; hadamard.get(12); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dtypes_and_orders_that_cannot_hold_the_answer_are_refused():
    for dtype in (bool, np.uint8):
        with pytest.raises(TypeError, match="signed integer or float"):
            hadamard.get(4, dtype=dtype)
    assert hadamard.get(4, dtype=np.int16).dtype == np.int16
    for bad, exc in ((4.0, TypeError), (True, TypeError), (-1, ValueError)):
        with pytest.raises(exc, match="order must be a positive integer"):
            hadamard.block_diagonal(bad)
