"""Tensor inputs of the math modules: checked shapes and values, devices, safe normalisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from low_metric.core.errors import LowMetricError


def as_device(device: torch.device | str | None) -> torch.device | None:
    """A torch device from its name (None stays None); an unknown or absent device is one line."""
    if device is None or isinstance(device, torch.device):
        return device
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise LowMetricError(f"device {device!r} is not a torch device (use cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LowMetricError(f"device {device!r}: no CUDA GPU is available here")
    return dev


def as_tensor(x: Any, name: str, *, ndim: int | None = None, device: torch.device | str | None = None,
              finite: bool = True) -> torch.Tensor:
    """A float tensor from an array-like, checked for shape rank and (unless ``finite=False``, for
    callers that check their results instead) finite values."""
    try:
        t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise LowMetricError(f"{name}: not a numeric array ({str(exc).splitlines()[0]})") from None
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.uint8)):
        raise LowMetricError(f"{name}: expected numbers, got dtype {t.dtype}")
    if ndim is not None and t.ndim != ndim:
        raise LowMetricError(f"{name}: expected {ndim} dimensions, got shape {tuple(t.shape)}")
    device = as_device(device)
    t = t.to(device=device) if device is not None else t
    if t.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        t = t.float()
    if finite and not torch.isfinite(t).all():
        raise LowMetricError(f"{name}: contains NaN or Inf")
    return t


def as_token_list(x: Any, name: str) -> list[Any]:
    """Per-image token arrays from a list of [T, D] arrays or one [N, T, D] array."""
    if isinstance(x, (np.ndarray, torch.Tensor)):
        if x.ndim != 3:
            raise LowMetricError(f"{name}: expected [N, tokens, D] or a list of [tokens, D], got shape {tuple(x.shape)}")
        items: Sequence[Any] = list(x)
    elif isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        items = list(x)
    else:
        raise LowMetricError(f"{name}: expected a list of [tokens, D] arrays or one [N, tokens, D] array")
    if not items:
        raise LowMetricError(f"{name}: no images (empty list)")
    return items


def unit_rows(t: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """L2-normalised vectors along ``dim`` in float32, exact for any finite magnitude: each vector is
    divided by its largest |value| in its own dtype first, so no square overflows (1e20 in float32,
    1e300 in float64). Zero vectors stay zero; NaN or Inf give NaN (callers check their results)."""
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    scale = t.abs().amax(dim=dim, keepdim=True)
    t = t / torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.nn.functional.normalize(t.float(), dim=dim)
