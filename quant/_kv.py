"""KV-cache quantization: one scale per token and per head (groups of head_dim),
optionally with the first tokens (attention sinks) kept in full precision."""

from __future__ import annotations

import dataclasses
import numbers

import torch

from ._checks import check_finite, check_float_tensor
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
    keep_first : int
        Number of leading tokens whose keys/values stay in full precision
        (default 0).  Most of the attention of every later token goes to the
        first one or few (attention sinks), so their quantization error
        reaches every output; keeping them costs ``keep_first`` full-precision
        rows per head for the whole sequence (the "preserve the first N
        tokens" strategy of KV-cache quantizers; IntactKV keeps such pivot
        tokens intact).  The token axis is the second to last one in both
        layouts above.

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
    keep_first: int = 0

    def __post_init__(self):
        _check_bits(self.bits)
        object.__setattr__(self, "bits", int(self.bits))
        if isinstance(self.head_dim, bool) or not isinstance(self.head_dim, int) or self.head_dim < 1:
            raise ValueError(f"head_dim must be a positive integer, got {self.head_dim!r}")
        if not isinstance(self.symmetric, bool):
            raise TypeError(f"symmetric must be a bool, got {self.symmetric!r}")
        _check_clip_ratio(self.clip_ratio)
        object.__setattr__(self, "clip_ratio", float(self.clip_ratio))
        keep = self.keep_first
        if isinstance(keep, bool) or not isinstance(keep, numbers.Integral) or keep < 0:
            raise ValueError(f"keep_first must be a non-negative integer (tokens kept in full precision), got {keep!r}")
        object.__setattr__(self, "keep_first", int(keep))

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
    if cfg.keep_first and isinstance(x, torch.Tensor) and x.dim() < 2:
        raise ValueError(
            f"keep_first={cfg.keep_first} needs a token axis: x must be (..., tokens, k * head_dim), got shape {tuple(x.shape)}"
        )
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
        ``(..., tokens, k * head_dim)`` floating tensor, finite.
    cfg : KVQuantConfig
        The quantizer.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device; the first ``cfg.keep_first`` tokens
        (``x[..., :keep_first, :]``) unchanged.

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
    >>> fake_quantize_kv(torch.stack([k[0], k[0]]), KVQuantConfig(bits=2, head_dim=4, keep_first=1))
    tensor([[ 0.0000,  0.2000,  0.9000,  3.0000, -3.0000,  2.0000,  2.0000,  2.0000],
            [ 0.0000,  0.0000,  1.0000,  3.0000, -3.3333,  1.6667,  1.6667,  1.6667]])
    """
    qcfg = _checked(x, cfg)
    if not cfg.keep_first:
        return fake_quantize(x, qcfg)
    check_float_tensor(x)
    head = x[..., : cfg.keep_first, :]
    check_finite(head)  # the kept tokens pass unchanged, but bad values are refused there too
    if head.shape[-2] == x.shape[-2]:
        return x.clone()
    return torch.cat([head, fake_quantize(x[..., cfg.keep_first :, :], qcfg)], dim=-2)


def quantize_kv(x: torch.Tensor, cfg: KVQuantConfig) -> QuantizedTensor:
    """Integer codes and per-token, per-head scales of cached keys or values.

    Same arguments and errors as :func:`fake_quantize_kv`; every token is
    quantized, so a config with ``keep_first`` is refused (quantize
    ``x[..., keep_first:, :]`` and store the first tokens as they are).

    Examples
    --------
    >>> import torch
    >>> quantize_kv(torch.randn(2, 5, 128), KVQuantConfig(bits=4, head_dim=64)).scale.shape
    torch.Size([2, 5, 2])
    """
    if cfg.keep_first:
        raise ValueError(
            f"quantize_kv packs every token, but cfg.keep_first={cfg.keep_first}: pass x[..., {cfg.keep_first}:, :] "
            "and keep the first tokens in full precision yourself, or use keep_first=0"
        )
    return quantize(x, _checked(x, cfg))
