"""Validated configuration of a uniform b-bit quantizer."""

from __future__ import annotations

import dataclasses
import math
import numbers

GRANULARITIES = ("tensor", "channel", "token", "group")


@dataclasses.dataclass(frozen=True)
class QuantConfig:
    """How to quantize a tensor to ``bits`` bits with round-to-nearest.

    Parameters
    ----------
    bits : int
        Bit width, 1 to 8.
    symmetric : bool
        ``True``: a grid symmetric around zero, no zero point (see
        :func:`quant.levels` for the exact levels).  ``False``: an affine grid
        of ``2**bits`` levels with an integer zero point.
    granularity : {"tensor", "channel", "token", "group"}
        Which elements share a scale.  ``"tensor"``: one scale for the whole
        tensor.  ``"channel"``: one scale per output row of a weight
        (reduced along the last dimension).  ``"token"``: one scale per row
        of an activation (the same reduction, named for activations).
        ``"group"``: one scale per ``group_size`` consecutive elements of the
        last dimension.
    group_size : int or None
        Size of a group; required with ``granularity="group"`` and
        forbidden otherwise.  It must divide the last dimension of the
        quantized tensor (checked when the config is applied).
    clip_ratio : float
        In (0, 1]: the range that sets the scale is shrunk by this factor
        and values outside it saturate.

    Raises
    ------
    TypeError
        If a field has the wrong type.
    ValueError
        If a field is out of range.

    Examples
    --------
    >>> QuantConfig(bits=4, granularity="group", group_size=128)
    QuantConfig(bits=4, symmetric=True, granularity='group', group_size=128, clip_ratio=1.0)
    >>> QuantConfig(bits=9)
    Traceback (most recent call last):
    ...
    ValueError: bits must be an integer from 1 to 8, got 9
    """

    bits: int = 3
    symmetric: bool = True
    granularity: str = "channel"
    group_size: int | None = None
    clip_ratio: float = 1.0

    def __post_init__(self):
        _check_bits(self.bits)
        object.__setattr__(self, "bits", int(self.bits))  # numpy integers too, stored as int
        if not isinstance(self.symmetric, bool):
            raise TypeError(f"symmetric must be a bool, got {self.symmetric!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(
                f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}"
            )
        if self.granularity == "group":
            if (
                isinstance(self.group_size, bool)
                or not isinstance(self.group_size, int)
                or self.group_size < 1
            ):
                raise ValueError(
                    "granularity='group' needs group_size, a positive integer; "
                    f"got {self.group_size!r}"
                )
        elif self.group_size is not None:
            raise ValueError(
                f"group_size is only used with granularity='group'; got "
                f"group_size={self.group_size!r} with granularity={self.granularity!r}"
            )
        _check_clip_ratio(self.clip_ratio)
        object.__setattr__(self, "clip_ratio", float(self.clip_ratio))

    def replace(self, **changes) -> "QuantConfig":
        """Return a copy with some fields changed (validated again).

        Examples
        --------
        >>> QuantConfig().replace(bits=4).bits
        4
        """
        return dataclasses.replace(self, **changes)


def _check_bits(bits):
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"bits must be an integer from 1 to 8, got {bits!r}")
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer from 1 to 8, got {bits!r}")


def _check_clip_ratio(clip_ratio):
    if isinstance(clip_ratio, bool) or not isinstance(clip_ratio, numbers.Real):
        raise TypeError(f"clip_ratio must be a float in (0, 1], got {clip_ratio!r}")
    if not (math.isfinite(clip_ratio) and 0.0 < clip_ratio <= 1.0):
        raise ValueError(f"clip_ratio must be in (0, 1], got {clip_ratio!r}")
