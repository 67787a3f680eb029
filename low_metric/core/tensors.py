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


SAFE_NORMS = (1e-15, 1e15)  # vector norms whose squares, products and quotients float32 keeps exact


def row_norms(t: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Vector norms along ``dim`` (kept) in one pass, in float32 (float64 for float64 input): exact
    within :data:`SAFE_NORMS`; outside it they may overflow to Inf or underflow (to 0), which
    :func:`in_safe_range` tells; NaN or Inf give NaN or Inf."""
    return torch.linalg.vector_norm(t, dim=dim, keepdim=True, dtype=torch.float64 if t.dtype == torch.float64 else torch.float32)


def in_safe_range(norms: torch.Tensor) -> bool:
    """Whether every norm lies in :data:`SAFE_NORMS` (so zero vectors, which may be underflow, do
    not; NaN does: it propagates to the results, which callers check)."""
    low, high = SAFE_NORMS
    return not bool(((norms < low) | (norms > high)).any())


def refuse_non_finite(t: torch.Tensor, name: str) -> None:
    """A one-line error naming the first [T, D] slice of ``t`` [N, T, D] with a NaN or Inf, found
    in one pass through the row norms (an image whose norms overflow is checked element-wise)."""
    norms = row_norms(t)
    for i in torch.nonzero(~torch.isfinite(norms).flatten(1).all(dim=1)).flatten().tolist():
        if not bool(torch.isfinite(t[i]).all()):
            raise LowMetricError(f"{name}[{i}]: contains NaN or Inf")


def unit_rows(t: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """L2-normalised vectors along ``dim`` in float32, exact for any finite magnitude. Usually one
    pass for the norms and one for the quotient; vectors outside :data:`SAFE_NORMS` are divided by
    their largest |value| in their own dtype first, so no square overflows (1e20 in float32, 1e300
    in float64). Zero vectors stay zero; NaN or Inf give NaN (callers check their results)."""
    return _unit(t, dim)[0]


def finite_unit_rows(t: torch.Tensor, name: str, dim: int = -1) -> torch.Tensor:
    """:func:`unit_rows`, refusing NaN or Inf in ``t`` (seen in the norms, no extra pass over ``t``)."""
    unit, norms = _unit(t, dim)
    if not bool(torch.isfinite(norms).all()) and not bool(torch.isfinite(t).all()):
        raise LowMetricError(f"{name}: contains NaN or Inf")
    return unit


def _unit(t: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    norms = row_norms(t, dim)
    if in_safe_range(norms):
        return t.float() / norms.float(), norms
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    scale = t.abs().amax(dim=dim, keepdim=True)
    t = t / torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.nn.functional.normalize(t.float(), dim=dim), norms
