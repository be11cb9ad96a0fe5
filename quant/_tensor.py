"""Integer codes + scales (QuantizedTensor) and their bit-packed storage (PackedTensor)."""

from __future__ import annotations

import dataclasses

import torch

from ._checks import cast_saturating, check_float_tensor, compute_dtype
from ._config import QuantConfig
from ._packing import pack_codes, unpack_codes
from ._uniform import (
    QuantParams,
    _check_config,
    code_range,
    grid_codes,
    grid_dequantize,
    grouped_view,
    params_shape,
    resolve_params,
)


@dataclasses.dataclass(frozen=True)
class QuantizedTensor:
    """A tensor stored as integer codes with per-group scales (and zero points).

    Attributes
    ----------
    codes : torch.Tensor
        Integer codes, shape of the original tensor: int8 in
        ``code_range(bits, True)`` for a symmetric grid, uint8 in
        ``[0, 2**bits - 1]`` for an asymmetric one.
    scale : torch.Tensor
        Scales, shape given by :class:`QuantParams`.
    zero : torch.Tensor or None
        Zero points (asymmetric grids only).
    config : QuantConfig
        The quantizer that produced the codes.
    perm : torch.Tensor or None
        Column order when the last dimension was permuted before grouping
        (GPTQ with act-order): ``codes[..., j]`` belongs to original column
        ``perm[j]``.  ``None`` means the original order.
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor | None
    config: QuantConfig
    perm: torch.Tensor | None = None

    @property
    def shape(self) -> torch.Size:
        """Shape of the represented tensor."""
        return self.codes.shape

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Real values, in the original column order.

        Examples
        --------
        >>> import torch
        >>> qt = quantize(torch.tensor([[0.9, -3.0, 0.2, 1.6]]), QuantConfig(bits=3))
        >>> qt.dequantize()
        tensor([[ 1., -3.,  0.,  2.]])
        """
        cfg = self.config
        work = torch.promote_types(self.scale.dtype, torch.float32)
        codes = grouped_view(self.codes.to(work), cfg)
        scale = self.scale.reshape(-1, 1).to(work)
        zero = None if self.zero is None else self.zero.reshape(-1, 1).to(work)
        values = grid_dequantize(codes, scale, zero).reshape(self.codes.shape)
        if self.perm is not None:
            values = values[..., torch.argsort(self.perm)]
        return cast_saturating(values, dtype)

    def pack(self, scale_dtype: torch.dtype | None = None) -> "PackedTensor":
        """Bit-packed storage: ``bits`` bits a code, zero points packed too.

        Parameters
        ----------
        scale_dtype : torch.dtype, optional
            Store scales in this dtype (e.g. ``torch.float16``); kept as is
            when omitted, so that unpacking reproduces the codes and scales
            exactly.

        Returns
        -------
        PackedTensor
        """
        cfg = self.config
        qmin, _ = code_range(cfg.bits, cfg.symmetric)
        if cfg.symmetric and cfg.bits == 1:
            unsigned = (self.codes.to(torch.int16) + 1) // 2
        else:
            unsigned = self.codes.to(torch.int16) - qmin
        zero_data = None
        if self.zero is not None:
            zero_data = pack_codes(self.zero.to(torch.int16), cfg.bits)
        perm = None
        if self.perm is not None:
            perm = self.perm.to(torch.int16 if self.perm.numel() < 2**15 else torch.int32)
        scale = self.scale if scale_dtype is None else self.scale.to(scale_dtype)
        return PackedTensor(
            data=pack_codes(unsigned, cfg.bits),
            scale=scale,
            zero_data=zero_data,
            perm=perm,
            shape=tuple(self.codes.shape),
            config=cfg,
        )

    def bits_per_element(self, scale_dtype: torch.dtype | None = None) -> float:
        """Storage bits per element, codes plus scales, zero points and permutation.

        Examples
        --------
        >>> import torch
        >>> cfg = QuantConfig(bits=3, granularity="group", group_size=128)
        >>> quantize(torch.randn(4, 256), cfg).bits_per_element()
        3.25
        """
        return self.pack(scale_dtype).bits_per_element()


@dataclasses.dataclass(frozen=True)
class PackedTensor:
    """Bit-packed form of a :class:`QuantizedTensor` (what is written to disk)."""

    data: torch.Tensor
    scale: torch.Tensor
    zero_data: torch.Tensor | None
    perm: torch.Tensor | None
    shape: tuple
    config: QuantConfig

    @property
    def nbytes(self) -> int:
        """Total bytes of codes, scales, zero points and permutation."""
        parts = [self.data, self.scale, self.zero_data, self.perm]
        return sum(p.numel() * p.element_size() for p in parts if p is not None)

    def bits_per_element(self) -> float:
        """``8 * nbytes`` divided by the number of elements represented."""
        numel = 1
        for s in self.shape:
            numel *= s
        return 8 * self.nbytes / numel

    def unpack(self) -> QuantizedTensor:
        """The :class:`QuantizedTensor` this was packed from (codes exactly)."""
        cfg = self.config
        numel = 1
        for s in self.shape:
            numel *= s
        unsigned = unpack_codes(self.data, cfg.bits, numel).to(torch.int16)
        qmin, _ = code_range(cfg.bits, cfg.symmetric)
        if cfg.symmetric:
            signed = unsigned * 2 - 1 if cfg.bits == 1 else unsigned + qmin
            codes = signed.to(torch.int8)
        else:
            codes = unsigned.to(torch.uint8)
        zero = None
        if self.zero_data is not None:
            zero = unpack_codes(self.zero_data, cfg.bits, self.scale.numel())
            zero = zero.to(self.scale.dtype).reshape(self.scale.shape)
        perm = None if self.perm is None else self.perm.to(torch.int64)
        return QuantizedTensor(codes.reshape(self.shape), self.scale, zero, cfg, perm)


def quantize(x: torch.Tensor, cfg: QuantConfig, *, params: QuantParams | None = None):
    """Quantize ``x`` to integer codes and scales (round-to-nearest).

    Parameters
    ----------
    x : torch.Tensor
        Floating tensor, finite.
    cfg : QuantConfig
        The quantizer.
    params : QuantParams, optional
        Precomputed scales (e.g. from :func:`quant.mse_clip_search`).

    Returns
    -------
    QuantizedTensor
        ``.dequantize(x.dtype)`` equals ``fake_quantize(x, cfg, params=params)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`quant.fake_quantize`.

    Examples
    --------
    >>> import torch
    >>> qt = quantize(torch.tensor([[0.9, -3.0, 0.2, 1.6]]), QuantConfig(bits=3))
    >>> qt.codes, qt.scale
    (tensor([[ 1, -3,  0,  2]], dtype=torch.int8), tensor([[1.]]))
    """
    _check_config(cfg)
    check_float_tensor(x)
    xg = grouped_view(x.to(compute_dtype(x)), cfg)
    scale, zero = resolve_params(x, cfg, params, xg)
    codes = grid_codes(xg, scale, zero, cfg.bits, cfg.symmetric)
    code_dtype = torch.int8 if cfg.symmetric else torch.uint8
    shape = params_shape(x, cfg)
    return QuantizedTensor(
        codes=codes.reshape(x.shape).to(code_dtype),
        scale=scale.reshape(shape),
        zero=None if zero is None else zero.reshape(shape),
        config=cfg,
    )
