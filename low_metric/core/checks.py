"""Input checks shared by every layer (numpy only): each failure is one LowMetricError line."""

from __future__ import annotations

from typing import Any

import numpy as np

from low_metric.core.errors import LowMetricError


def positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (or >= 0): NaN, Inf, strings and booleans refused in one line."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LowMetricError(f"{name} must be a number, got {value!r}")
    ok = value >= 0 if allow_zero else value > 0
    if not (np.isfinite(value) and ok):
        raise LowMetricError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return float(value)


def finite_number(value: Any, what: str) -> float:
    """``value`` (a number, or text of one: a CSV cell, a CLI argument) as a finite float; booleans,
    other values, NaN and Inf refused in one line naming ``what``."""
    if isinstance(value, bool):
        raise LowMetricError(f"{what}: {value!r} is not a number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise LowMetricError(f"{what}: {value!r} is not a number") from None
    if not np.isfinite(v):
        raise LowMetricError(f"{what} is not finite ({value!r})")
    return v


def as_vector(x: Any, name: str, *, length: int | None = None) -> np.ndarray:
    """A finite float64 vector, optionally of a given length."""
    try:
        v = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise LowMetricError(f"{name}: expected a list of numbers, got {x!r}") from None
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
