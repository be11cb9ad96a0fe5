"""Bit-packing of codes and the storage accounting of quantized tensors."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import quant


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.data())
def test_pack_unpack_round_trips_exactly(bits, data):
    n = data.draw(st.integers(0, 70))
    values = data.draw(st.lists(st.integers(0, 2**bits - 1), min_size=n, max_size=n))
    codes = torch.tensor(values, dtype=torch.int64)
    packed = quant.pack_codes(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == quant.packed_nbytes(n, bits) == -(-n * bits // 8)
    assert quant.unpack_codes(packed, bits, n).tolist() == values


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_packed_layout_is_lsb_first(bits):
    # code i occupies bits [i*bits, (i+1)*bits) of the little-endian bit stream
    codes = torch.arange(16) % (2**bits)
    packed = quant.pack_codes(codes, bits)
    stream = int.from_bytes(bytes(packed.tolist()), "little")
    decoded = [(stream >> (i * bits)) & (2**bits - 1) for i in range(16)]
    assert decoded == codes.tolist()


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([2, 3, 4]),
    st.booleans(),
    st.sampled_from(["tensor", "channel", "group"]),
    st.integers(0, 2**31 - 1),
)
def test_quantized_tensor_pack_round_trips(bits, symmetric, granularity, seed):
    x = torch.randn(5, 24, generator=torch.Generator().manual_seed(seed))
    cfg = quant.QuantConfig(
        bits=bits,
        symmetric=symmetric,
        granularity=granularity,
        group_size=8 if granularity == "group" else None,
    )
    qt = quant.quantize(x, cfg)
    back = qt.pack().unpack()
    assert torch.equal(back.codes, qt.codes)
    assert torch.equal(back.scale, qt.scale)
    assert (back.zero is None) == (qt.zero is None)
    if qt.zero is not None:
        assert torch.equal(back.zero, qt.zero)
    assert torch.equal(back.dequantize(), qt.dequantize())


def test_one_bit_symmetric_packs():
    qt = quant.quantize(torch.randn(3, 16), quant.QuantConfig(bits=1))
    assert torch.equal(qt.pack().unpack().codes, qt.codes)


def test_bits_per_element_counts_scales_and_zero_points():
    w = torch.randn(64, 576)
    per_channel = quant.quantize(w, quant.QuantConfig(bits=3))
    assert per_channel.bits_per_element() == pytest.approx(3 + 32 / 576)
    assert per_channel.bits_per_element(torch.float16) == pytest.approx(3 + 16 / 576)
    grouped = quant.quantize(
        w, quant.QuantConfig(bits=3, symmetric=False, granularity="group", group_size=64)
    )
    assert grouped.bits_per_element() == pytest.approx(3 + (32 + 3) / 64)
    assert grouped.pack().nbytes == 64 * 576 * 3 // 8 + 64 * 9 * 4 + -(-64 * 9 * 3 // 8)


def test_pack_rejects_bad_codes():
    with pytest.raises(ValueError, match=r"\[0, 7\]"):
        quant.pack_codes(torch.tensor([0, 8]), 3)
    with pytest.raises(ValueError, match=r"\[0, 7\]"):
        quant.pack_codes(torch.tensor([-1]), 3)
    with pytest.raises(TypeError, match="integer"):
        quant.pack_codes(torch.tensor([0.5]), 3)
    with pytest.raises(ValueError, match="bits"):
        quant.pack_codes(torch.tensor([0]), 9)
    with pytest.raises(ValueError, match="cannot hold"):
        quant.unpack_codes(torch.zeros(2, dtype=torch.uint8), 3, 8)
    with pytest.raises(TypeError, match="uint8"):
        quant.unpack_codes(np.zeros(3, dtype=np.uint8), 3, 8)
    for numel in (2.0, -1, True):
        with pytest.raises(ValueError, match="numel must be a non-negative integer"):
            quant.unpack_codes(torch.zeros(2, dtype=torch.uint8), 3, numel)
    for bits in (0, 9):
        with pytest.raises(ValueError, match="bits"):
            quant.packed_nbytes(10, bits)
