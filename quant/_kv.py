"""KV-cache quantization: one scale per token and per head (groups of head_dim)."""

from __future__ import annotations

import dataclasses

import torch

from ._config import QuantConfig, _check_bits, _check_clip_ratio
from ._tensor import QuantizedTensor, quantize
from ._uniform import fake_quantize


@dataclasses.dataclass(frozen=True)
class KVQuantConfig:
    """Quantizer of cached keys (after RoPE) or values.

    Every head of every token gets its own scale (and zero point), i.e. the
    last dimension is quantized in groups of ``head_dim``.

    Parameters
    ----------
    bits : int
        1 to 8 (2 to 8 in practice).
    head_dim : int
        Size of one head; the last dimension of a quantized tensor must be a
        multiple of it (``head_dim`` itself for ``(..., heads, tokens, head_dim)``
        layouts, ``heads * head_dim`` for ``(..., tokens, hidden)``).
    symmetric : bool
        Asymmetric (default, as in QuaRot's KV cache) or symmetric grid.
    clip_ratio : float
        In (0, 1].

    Raises
    ------
    ValueError
        If a field is out of range.

    Examples
    --------
    >>> KVQuantConfig(bits=3, head_dim=64).quant_config
    QuantConfig(bits=3, symmetric=False, granularity='group', group_size=64, clip_ratio=1.0)
    """

    bits: int = 3
    head_dim: int = 64
    symmetric: bool = False
    clip_ratio: float = 1.0

    def __post_init__(self):
        _check_bits(self.bits)
        object.__setattr__(self, "bits", int(self.bits))
        if isinstance(self.head_dim, bool) or not isinstance(self.head_dim, int) or self.head_dim < 1:
            raise ValueError(f"head_dim must be a positive integer, got {self.head_dim!r}")
        if not isinstance(self.symmetric, bool):
            raise TypeError(f"symmetric must be a bool, got {self.symmetric!r}")
        _check_clip_ratio(self.clip_ratio)
        object.__setattr__(self, "clip_ratio", float(self.clip_ratio))

    @property
    def quant_config(self) -> QuantConfig:
        """The equivalent :class:`QuantConfig` (groups of ``head_dim``)."""
        return QuantConfig(
            bits=self.bits,
            symmetric=self.symmetric,
            granularity="group",
            group_size=self.head_dim,
            clip_ratio=self.clip_ratio,
        )


def _checked(x, cfg) -> QuantConfig:
    if not isinstance(cfg, KVQuantConfig):
        raise TypeError(f"cfg must be a quant.KVQuantConfig, got {type(cfg).__name__}")
    if isinstance(x, torch.Tensor) and x.dim() == 0:
        raise ValueError(f"x must have a last dimension of head_dim={cfg.head_dim} values per head; got a 0-d tensor")
    if isinstance(x, torch.Tensor) and x.dim() >= 1 and x.shape[-1] % cfg.head_dim:
        raise ValueError(
            f"the last dimension of x ({x.shape[-1]}) must be a multiple of "
            f"head_dim={cfg.head_dim}"
        )
    return cfg.quant_config


def fake_quantize_kv(x: torch.Tensor, cfg: KVQuantConfig) -> torch.Tensor:
    """Quantize-dequantize cached keys or values per token and per head.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., k * head_dim)`` floating tensor, finite.
    cfg : KVQuantConfig
        The quantizer.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device.

    Raises
    ------
    TypeError
        If ``x`` is not a floating tensor or ``cfg`` not a KVQuantConfig.
    ValueError
        If the last dimension is not a multiple of ``head_dim``, or on NaN/inf.

    References
    ----------
    Ashkboos et al., "QuaRot: Outlier-Free 4-Bit Inference in Rotated LLMs",
    NeurIPS 2024 (KV cache quantized per head after an online Hadamard on K).

    Examples
    --------
    >>> import torch
    >>> k = torch.tensor([[0.0, 0.2, 0.9, 3.0, -3.0, 2.0, 2.0, 2.0]])
    >>> fake_quantize_kv(k, KVQuantConfig(bits=2, head_dim=4))
    tensor([[ 0.0000,  0.0000,  1.0000,  3.0000, -3.3333,  1.6667,  1.6667,  1.6667]])
    """
    return fake_quantize(x, _checked(x, cfg))


def quantize_kv(x: torch.Tensor, cfg: KVQuantConfig) -> QuantizedTensor:
    """Integer codes and per-token, per-head scales of cached keys or values.

    Same arguments and errors as :func:`fake_quantize_kv`.

    Examples
    --------
    >>> import torch
    >>> quantize_kv(torch.randn(2, 5, 128), KVQuantConfig(bits=4, head_dim=64)).scale.shape
    torch.Size([2, 5, 2])
    """
    return quantize(x, _checked(x, cfg))
