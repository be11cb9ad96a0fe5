"""Streaming accumulation of the GPTQ Hessian H = 2/N * sum_n x_n x_n^T."""

from __future__ import annotations

import torch


class HessianAccumulator:
    """Accumulate ``H = 2/N * X^T X`` of a linear layer's inputs, batch by batch.

    The running mean is kept rescaled after every batch (as in GPTQ), so the
    entries stay O(x^2) however many samples are seen.

    Parameters
    ----------
    in_features : int
        Size of the last dimension of the inputs.
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64``.
    device : torch.device or str, optional
        Where ``H`` lives; defaults to the device of the first batch.

    Raises
    ------
    ValueError
        If ``in_features`` is not a positive integer or ``dtype`` is not
        float32/float64.

    Examples
    --------
    >>> import torch
    >>> acc = HessianAccumulator(3)
    >>> acc.update(torch.eye(3))
    >>> acc.nsamples, [round(v, 4) for v in acc.hessian.diagonal().tolist()]
    (3, [0.6667, 0.6667, 0.6667])
    """

    def __init__(self, in_features: int, *, dtype: torch.dtype = torch.float32, device=None):
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.in_features = in_features
        self.dtype = dtype
        self._device = None if device is None else torch.device(device)
        self._sum = None
        self._cross = None
        self.nsamples = 0

    def update(self, x: torch.Tensor, target: torch.Tensor | None = None) -> None:
        """Add a batch of inputs of shape ``(..., in_features)``; every row is a sample.

        Parameters
        ----------
        x : torch.Tensor
            The inputs the quantized weight will multiply.
        target : torch.Tensor, optional
            Same shape: the inputs the original weight *should* have seen
            (e.g. before activation quantization).  When given, the cross
            term ``2/N X^T X_target`` is accumulated too (:attr:`cross`),
            for GPTQ towards the output ``X_target W^T``.  Pass it on every
            update or on none.

        Raises
        ------
        TypeError
            If ``x`` is not a floating tensor.
        ValueError
            If the last dimension is not ``in_features``, ``x`` holds
            NaN/inf, ``target`` does not match ``x``, or ``target`` is given
            on some updates only.
        """
        rows = self._checked_rows(x, "x")
        if target is not None:
            target_rows = self._checked_rows(target, "target")
            if target_rows.shape != rows.shape:
                raise ValueError(f"target must have the shape of x {tuple(x.shape)}, got {tuple(target.shape)}")
        if self.nsamples and (target is None) != (self._cross is None):
            raise ValueError("pass target on every update() or on none")
        m = rows.shape[0]
        if m == 0:
            return
        if self._sum is None:
            device = self._device if self._device is not None else x.device
            self._sum = torch.zeros(
                self.in_features, self.in_features, dtype=self.dtype, device=device
            )
            if target is not None:
                self._cross = torch.zeros_like(self._sum)
        total = self.nsamples + m
        step = (2.0 / total) ** 0.5
        rows = rows.to(device=self._sum.device, dtype=self.dtype) * step
        self._sum.mul_(self.nsamples / total)
        self._sum.addmm_(rows.T, rows)
        if target is not None:
            self._cross.mul_(self.nsamples / total)
            self._cross.addmm_(rows.T, target_rows.to(device=self._sum.device, dtype=self.dtype) * step)
        self.nsamples = total

    def _checked_rows(self, x, name: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"{name} must be a floating torch.Tensor")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{name} must have shape (..., {self.in_features}), got {tuple(x.shape)}"
            )
        rows = x.reshape(-1, self.in_features)
        if rows.shape[0]:
            low, high = torch.aminmax(rows)
            if not (bool(torch.isfinite(low)) and bool(torch.isfinite(high))):
                raise ValueError("calibration inputs contain NaN or inf")
        return rows

    @property
    def hessian(self) -> torch.Tensor:
        """``2/N * X^T X`` of the ``N = nsamples`` rows seen so far.

        Raises
        ------
        ValueError
            If no sample was seen (empty calibration set).
        """
        if self.nsamples == 0:
            raise ValueError(
                "no calibration samples were accumulated (empty calibration set); "
                "call update() with at least one input row"
            )
        return self._sum

    @property
    def cross(self) -> torch.Tensor | None:
        """``2/N X^T X_target`` when targets were passed to :meth:`update`, else None."""
        return self._cross

    def __repr__(self) -> str:
        return (
            f"HessianAccumulator(in_features={self.in_features}, dtype={self.dtype}, "
            f"nsamples={self.nsamples})"
        )
