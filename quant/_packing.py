"""Bit-packing of b-bit unsigned codes into bytes (LSB first, no padding between codes)."""

from __future__ import annotations

import torch

from ._config import _check_bits


def packed_nbytes(numel: int, bits: int) -> int:
    """Bytes needed for ``numel`` codes of ``bits`` bits.

    Examples
    --------
    >>> packed_nbytes(10, 3)
    4
    """
    _check_bits(bits)
    _check_numel(numel)
    return -(-numel * bits // 8)


def _check_numel(numel) -> None:
    if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
        raise ValueError(f"numel must be a non-negative integer, got {numel!r}")


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack unsigned integer codes of ``bits`` bits each into a uint8 tensor.

    Code ``i`` occupies bits ``i*bits .. i*bits + bits - 1`` of the output
    (least significant bit first), so 8 three-bit codes take 3 bytes.

    Parameters
    ----------
    codes : torch.Tensor
        Integer tensor (any shape, flattened in row-major order) with values
        in ``[0, 2**bits - 1]``.
    bits : int
        1 to 8.

    Returns
    -------
    torch.Tensor
        1-D uint8 tensor of ``ceil(codes.numel() * bits / 8)`` bytes, on the
        device of ``codes``.

    Raises
    ------
    TypeError
        If ``codes`` is not an integer tensor.
    ValueError
        If ``bits`` is out of range or a code does not fit in ``bits`` bits.

    Examples
    --------
    >>> import torch
    >>> data = pack_codes(torch.tensor([1, 7, 0, 5]), 3)
    >>> data.numel(), unpack_codes(data, 3, 4).tolist()
    (2, [1, 7, 0, 5])
    """
    _check_bits(bits)
    if not isinstance(codes, torch.Tensor) or codes.is_floating_point() or codes.is_complex():
        raise TypeError("codes must be an integer torch.Tensor")
    flat = codes.reshape(-1)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= 2**bits):
        raise ValueError(
            f"codes must lie in [0, {2**bits - 1}] to fit in {bits} bits; got values in "
            f"[{int(flat.min())}, {int(flat.max())}]"
        )
    flat = flat.to(torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    shifts = torch.arange(bits, device=flat.device, dtype=torch.uint8)
    bitstream = ((flat[:, None] >> shifts) & 1).reshape(-1, 8)
    weights = torch.arange(8, device=flat.device, dtype=torch.uint8)
    packed = (bitstream << weights).sum(dim=1, dtype=torch.int32).to(torch.uint8)
    return packed[: packed_nbytes(codes.numel(), bits)]


def unpack_codes(data: torch.Tensor, bits: int, numel: int) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: the first ``numel`` codes as uint8.

    Parameters
    ----------
    data : torch.Tensor
        1-D uint8 tensor from :func:`pack_codes`.
    bits : int
        1 to 8, as used for packing.
    numel : int
        Number of codes to read.

    Returns
    -------
    torch.Tensor
        1-D uint8 tensor of length ``numel``.

    Raises
    ------
    ValueError
        If ``data`` is too short for ``numel`` codes.

    Examples
    --------
    >>> import torch
    >>> unpack_codes(torch.tensor([0b11111010], dtype=torch.uint8), 2, 4).tolist()
    [2, 2, 3, 3]
    """
    _check_bits(bits)
    if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8 or data.dim() != 1:
        raise TypeError("data must be a 1-D uint8 torch.Tensor")
    if data.numel() < packed_nbytes(numel, bits):
        raise ValueError(
            f"{data.numel()} bytes cannot hold {numel} codes of {bits} bits "
            f"({packed_nbytes(numel, bits)} bytes needed)"
        )
    n_bytes = -(-numel * bits // 8)
    n_bytes += (-n_bytes) % bits  # whole blocks of 8 codes = `bits` bytes
    buf = data[:n_bytes]
    if buf.numel() < n_bytes:
        buf = torch.cat([buf, buf.new_zeros(n_bytes - buf.numel())])
    weights = torch.arange(8, device=data.device, dtype=torch.uint8)
    bitstream = ((buf[:, None] >> weights) & 1).reshape(-1, bits)
    shifts = torch.arange(bits, device=data.device, dtype=torch.uint8)
    codes = (bitstream << shifts).sum(dim=1, dtype=torch.int32).to(torch.uint8)
    return codes[:numel]
