"""Input checks shared by the math modules: each failure is one LowMetricError line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from low_metric.core.errors import LowMetricError


def as_tensor(x: Any, name: str, *, ndim: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """A float tensor from an array-like, checked for shape rank and finite values."""
    try:
        t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as exc:
        raise LowMetricError(f"{name}: not a numeric array ({exc})") from None
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.uint8)):
        raise LowMetricError(f"{name}: expected numbers, got dtype {t.dtype}")
    if ndim is not None and t.ndim != ndim:
        raise LowMetricError(f"{name}: expected {ndim} dimensions, got shape {tuple(t.shape)}")
    t = t.to(device=device) if device is not None else t
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    if not torch.isfinite(t).all():
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


def as_vector(x: Any, name: str, *, length: int | None = None) -> np.ndarray:
    """A finite float64 vector, optionally of a given length."""
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1:
        raise LowMetricError(f"{name}: expected a 1-D list of numbers, got shape {v.shape}")
    if length is not None and len(v) != length:
        raise LowMetricError(f"{name}: expected {length} values, got {len(v)}")
    if not np.isfinite(v).all():
        raise LowMetricError(f"{name}: contains NaN or Inf")
    return v


def whole_number(value: Any, name: str, low: int, high: int, error: type[LowMetricError] = LowMetricError) -> int:
    """``value`` as an int in [low, high] (a float that is a whole number passes: widgets send floats)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value != int(value):
        raise error(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise error(f"{name} must be between {low} and {high}, got {int(value)}")
    return int(value)
