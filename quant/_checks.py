"""Input validation shared by the quantizers (clear errors, never silent garbage)."""

from __future__ import annotations

import torch


def check_float_tensor(x, name: str = "x") -> None:
    """Raise TypeError/ValueError unless ``x`` is a non-empty floating torch tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must have a floating dtype (float16/bfloat16/float32/float64), "
            f"got {x.dtype}"
        )
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); nothing to quantize")


def check_finite(x: torch.Tensor, name: str = "x") -> None:
    """Raise ValueError if ``x`` holds NaN or inf."""
    # min and max propagate NaN and inf: one pass, no tensor of booleans
    low, high = torch.aminmax(x)
    if not (bool(torch.isfinite(low)) and bool(torch.isfinite(high))):
        raise ValueError(f"{name} contains NaN or inf; quantization needs finite values")


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for half/bfloat16/float32 inputs, float64 for float64 inputs."""
    return torch.promote_types(x.dtype, torch.float32)


def cast_saturating(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``values`` cast to ``dtype``, saturating at its largest finite magnitude.

    A grid level can lie up to half a step beyond the input's range (the zero point is
    rounded), which for an input at the edge of float16 is past its largest finite value.
    """
    if dtype.is_floating_point and torch.finfo(dtype).max < torch.finfo(values.dtype).max:
        limit = torch.finfo(dtype).max
        values = values.clamp(-limit, limit)
    return values.to(dtype)
