"""Squashing transforms of DreamerV3: symlog compresses large magnitudes, symexp undoes it."""

from __future__ import annotations

import torch


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x)·ln(1+|x|): keeps small values near-linear and large ones logarithmic."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    """sign(x)·(e^|x|−1), the inverse of :func:`symlog`."""
    return torch.sign(x) * torch.expm1(torch.abs(x))
