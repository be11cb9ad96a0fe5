"""KV-cache quantizer: per token and per head, any head_dim, 2-8 bits."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import quant


@settings(max_examples=20, deadline=None)
@given(
    bits=st.integers(2, 8),
    head_dim=st.sampled_from([64, 80, 96, 128, 256]),
    symmetric=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_each_head_of_each_token_has_its_own_grid(bits, head_dim, symmetric, seed):
    g = torch.Generator().manual_seed(seed)
    heads, tokens = 3, 5
    x = torch.randn(2, heads, tokens, head_dim, generator=g)
    x[0, 1, 2] *= 100  # one outlier head-token must not affect the others
    cfg = quant.KVQuantConfig(bits=bits, head_dim=head_dim, symmetric=symmetric)
    y = quant.fake_quantize_kv(x, cfg)
    assert y.shape == x.shape and y.dtype == x.dtype
    for b in range(2):
        for h in range(heads):
            for t in range(tokens):
                alone = quant.fake_quantize(x[b, h, t][None], cfg.quant_config)[0]
                assert torch.equal(y[b, h, t], alone)
    qt = quant.quantize_kv(x, cfg)
    assert qt.scale.shape == (2, heads, tokens, 1)
    step = qt.scale.expand(-1, -1, -1, head_dim)
    assert bool(((y - x).abs() <= step / 2 + 1e-5 * x.abs().amax()).all())


def test_flat_hidden_layout_is_grouped_by_head():
    x = torch.randn(4, 7, 3 * 64)  # (batch, tokens, kv_heads * head_dim)
    cfg = quant.KVQuantConfig(bits=3, head_dim=64)
    per_head = quant.fake_quantize_kv(x.reshape(4, 7, 3, 64), cfg).reshape(x.shape)
    assert torch.equal(quant.fake_quantize_kv(x, cfg), per_head)


def test_error_falls_with_bits():
    x = torch.randn(8, 16, 128)
    errs = [
        float((quant.fake_quantize_kv(x, quant.KVQuantConfig(bits=b, head_dim=128)) - x).norm())
        for b in range(2, 9)
    ]
    assert all(a > b for a, b in zip(errs, errs[1:]))


def test_kv_bad_input():
    with pytest.raises(ValueError, match="head_dim"):
        quant.KVQuantConfig(head_dim=0)
    with pytest.raises(ValueError, match="bits"):
        quant.KVQuantConfig(bits=9)
    with pytest.raises(ValueError, match="clip_ratio"):
        quant.KVQuantConfig(clip_ratio=0)
    cfg = quant.KVQuantConfig(head_dim=64)
    with pytest.raises(ValueError, match="multiple of head_dim=64"):
        quant.fake_quantize_kv(torch.randn(2, 96), cfg)
    x = torch.randn(2, 64)
    x[0, 0] = math.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        quant.fake_quantize_kv(x, cfg)
    with pytest.raises(TypeError, match="KVQuantConfig"):
        quant.fake_quantize_kv(torch.randn(2, 64), quant.QuantConfig())
    with pytest.raises(ValueError, match="0-d"):
        quant.fake_quantize_kv(torch.tensor(1.0), cfg)


# ---------------------------------------------------------------- attention sinks kept


@pytest.mark.parametrize("shape", [(2, 3, 6, 16), (2, 6, 3 * 16)])  # (batch, heads, tokens, hd), (batch, tokens, hidden)
@pytest.mark.parametrize("keep", [1, 2])
def test_keep_first_leaves_the_first_tokens_and_quantizes_the_rest_as_before(shape, keep):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(keep))
    plain = quant.KVQuantConfig(bits=3, head_dim=16)
    kept = quant.KVQuantConfig(bits=3, head_dim=16, keep_first=keep)
    y = quant.fake_quantize_kv(x, kept)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(y[..., :keep, :], x[..., :keep, :])
    assert torch.equal(y[..., keep:, :], quant.fake_quantize_kv(x, plain)[..., keep:, :])
    assert not torch.equal(y[..., keep:, :], x[..., keep:, :])


def test_keep_first_beyond_the_sequence_returns_a_copy():
    x = torch.randn(1, 2, 3, 8)
    y = quant.fake_quantize_kv(x, quant.KVQuantConfig(bits=2, head_dim=8, keep_first=5))
    assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()


def test_keep_first_bad_input_is_refused():
    for bad in (-1, 1.0, True, "1"):
        with pytest.raises(ValueError, match="keep_first must be a non-negative integer"):
            quant.KVQuantConfig(keep_first=bad)
    cfg = quant.KVQuantConfig(bits=3, head_dim=4, keep_first=1)
    with pytest.raises(ValueError, match="needs a token axis"):
        quant.fake_quantize_kv(torch.randn(8), cfg)
    x = torch.randn(1, 3, 4)
    x[0, 0, 1] = float("nan")  # in a kept token: refused like anywhere else
    with pytest.raises(ValueError, match="NaN or inf"):
        quant.fake_quantize_kv(x, cfg)
    with pytest.raises(ValueError, match=r"packs every token.*x\[\.\.\., 1:, :\]"):
        quant.quantize_kv(torch.randn(1, 3, 4), cfg)
    assert type(quant.KVQuantConfig(keep_first=np.int64(2)).keep_first) is int
