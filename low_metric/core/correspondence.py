"""The C score: zero-shot keypoint correspondence and PCK (SPEC.md section 3).

All coordinates are (x, y) pixels in the ``image_size`` square frame (840 by default).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from low_metric.core.alignment import resample_tokens
from low_metric.core.checks import positive
from low_metric.core.errors import LowMetricError
from low_metric.core.frame import FRAME_SIZE
from low_metric.core.tensors import as_tensor, unit_rows

C_ALPHA = 0.10  # C is PCK at alpha 0.10, whatever other alphas are reported
ALPHAS = (C_ALPHA, 0.05, 0.01)


def descriptor_grid(tokens: torch.Tensor, grid: tuple[int, int], size: int = 16) -> torch.Tensor:
    """[N, h*w, D] tokens -> [N, D, P, P] L2-normalised descriptors, bilinearly resampled when h x w != P x P."""
    tokens = as_tensor(tokens, "tokens", ndim=3)
    x = resample_tokens(tokens, grid, (size, size))
    return F.normalize(x.float(), dim=-1).permute(0, 2, 1).reshape(x.shape[0], -1, size, size)


def patch_index(kps: torch.Tensor, size: int, image_size: float = FRAME_SIZE) -> torch.Tensor:
    """[..., 2] pixel (x, y) -> [..., 2] integer patch (col, row): floor(coord * P / image_size), clamped."""
    return torch.clamp(torch.floor(kps * size / image_size).long(), 0, size - 1)


def patch_to_pixel(xy_patch: torch.Tensor, size: int, image_size: float = FRAME_SIZE) -> torch.Tensor:
    """Patch units -> pixels: x_px = x_patch * (image_size / P) + floor((image_size / P) / 2)."""
    stride = image_size / size
    return xy_patch * stride + float(np.floor(stride / 2))


def pad_keypoints(kps: Sequence[Any]) -> torch.Tensor:
    """[B, K_max, 2] from B arrays of [K_i, 2] keypoints, the missing rows NaN (padding)."""
    items = [as_tensor(k, f"keypoints[{i}]", ndim=2).float() for i, k in enumerate(kps)]
    out = torch.full((len(items), max((len(k) for k in items), default=0), 2), float("nan"))
    for i, k in enumerate(items):
        out[i, : len(k)] = k
    return out


def match_keypoints(
    src_feats: Any,
    trg_feats: Any,
    src_kps: Any,
    *,
    window: int | None = 5,
    temperature: float = 0.02,
    image_size: int = FRAME_SIZE,
    budget_bytes: int = 64 * 2**20,
) -> torch.Tensor:
    """Predict target pixels for source keypoints from feature grids: [D, P, P] grids and [K, 2]
    keypoints give [K, 2]; a batch of pairs, [B, D, P, P] and [B, K, 2], gives [B, K, 2]. Rows of
    NaN keypoints (padding, so pairs with different K share a batch) come back as NaN.

    window > 0: window soft-argmax (similarities outside the (2w+1)^2 window around the hard argmax
    set to 0, softmax over all P*P at ``temperature``, expectation clamped to [0, P-1]).
    window 0 or None: nearest neighbour (hard argmax). Runs on the device of ``src_feats``, in
    chunks of pairs whose [b, K, P*P] similarities stay under ``budget_bytes``.
    """
    window = 0 if window is None else window
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
        raise LowMetricError(f"window must be a whole number >= 0 (0 or None: nearest neighbour), got {window!r}")
    temperature = positive(temperature, "temperature")
    size = positive(image_size, "image_size")
    src = as_tensor(src_feats, "src_feats")
    batched = src.ndim == 4
    if src.ndim not in (3, 4):
        raise LowMetricError(f"src_feats must be [D, P, P] or [B, D, P, P], got shape {tuple(src.shape)}")
    trg = as_tensor(trg_feats, "trg_feats", ndim=src.ndim, device=src.device)
    kps = as_tensor(src_kps, "src_kps", ndim=src.ndim - 1, device=src.device, finite=False).float()
    if not batched:
        src, trg, kps = src[None], trg[None], kps[None]
    if src.shape != trg.shape:
        raise LowMetricError(f"src_feats {tuple(src.shape)} and trg_feats {tuple(trg.shape)} differ in shape")
    b, d, p, q = src.shape
    if p != q or min(d, p) == 0:
        raise LowMetricError(f"feature grids must be [D, P, P] with D, P > 0, got {tuple(src.shape[1:])}")
    if kps.shape[0] != b or kps.shape[-1] != 2:
        raise LowMetricError(f"src_kps must be [{'B, ' if batched else ''}K, 2] (x, y) for {b} pair(s), "
                             f"got {tuple(kps.shape if batched else kps.shape[1:])}")
    padding = torch.isnan(kps).all(dim=-1)
    if not torch.isfinite(kps[~padding]).all():
        raise LowMetricError("src_kps: a keypoint has a NaN or Inf coordinate (padding rows must be all NaN)")
    out = torch.full_like(kps, float("nan"))
    step = max(1, budget_bytes // max(1, 4 * kps.shape[1] * p * p))
    for start in range(0, b, step):
        rows = slice(start, start + step)
        out[rows] = _match(src[rows], trg[rows], kps[rows].nan_to_num(0.0), window, temperature, size)
    out[padding] = float("nan")
    return out if batched else out[0]


def _match(src: torch.Tensor, trg: torch.Tensor, kps: torch.Tensor, window: int, temperature: float,
           size: float) -> torch.Tensor:
    """[b, K, 2] target pixels for [b, K, 2] source keypoints on [b, D, P, P] grids (all finite)."""
    b, d, p, _ = src.shape
    cols_rows = patch_index(kps, p, size)
    flat = (cols_rows[..., 1] * p + cols_rows[..., 0])[:, None, :].expand(b, d, -1)  # [b, D, K]
    src_desc = unit_rows(src, dim=1).reshape(b, d, p * p).gather(2, flat).transpose(1, 2)  # [b, K, D]
    sim = torch.bmm(src_desc, unit_rows(trg, dim=1).reshape(b, d, p * p))  # [b, K, P*P]
    best = sim.argmax(dim=2)
    best_xy = torch.stack([best % p, best // p], dim=2)
    if not window:
        return patch_to_pixel(best_xy.float(), p, size)
    grid_x = torch.arange(p, device=sim.device).repeat(p)  # column of each flat index
    grid_y = torch.arange(p, device=sim.device).repeat_interleave(p)  # row of each flat index
    inside = ((grid_x - best_xy[..., :1]).abs() <= window) & ((grid_y - best_xy[..., 1:]).abs() <= window)
    prob = torch.softmax(torch.where(inside, sim, torch.zeros_like(sim)) / temperature, dim=2)
    expected = torch.stack([prob @ grid_x.float(), prob @ grid_y.float()], dim=2)
    return patch_to_pixel(expected.clamp(0, p - 1), p, size)


def keypoint_errors(pred_kps: Any, gt_kps: Any) -> np.ndarray:
    """Euclidean pixel error per keypoint between [K, 2] predictions and ground truth."""
    pred = as_tensor(pred_kps, "pred_kps", ndim=2).double().cpu().numpy()
    gt = as_tensor(gt_kps, "gt_kps", ndim=2).double().cpu().numpy()
    if pred.shape != gt.shape or pred.shape[1] != 2:
        raise LowMetricError(f"pred_kps {pred.shape} and gt_kps {gt.shape} must both be [K, 2]")
    return np.linalg.norm(pred - gt, axis=1)


def _thresholds(threshold: Any, k: int) -> np.ndarray:
    try:
        thr = np.asarray(threshold, dtype=np.float64)
    except (TypeError, ValueError):
        raise LowMetricError(f"threshold must be a number or one number per keypoint, got {threshold!r}") from None
    if thr.ndim == 0:
        thr = np.full(k, float(thr))
    if thr.shape != (k,):
        raise LowMetricError(f"threshold must be a scalar or one per keypoint ({k}), got shape {thr.shape}")
    if not np.isfinite(thr).all() or (thr <= 0).any():
        raise LowMetricError("threshold must be finite and > 0 (max side of the target bounding box)")
    return thr


def pck(pred_kps: Any, gt_kps: Any, threshold: Any, alpha: float = 0.10) -> float:
    """Fraction of keypoints whose error is below alpha * threshold (scalar or one per keypoint)."""
    err = keypoint_errors(pred_kps, gt_kps)
    if err.size == 0:
        raise LowMetricError("pck: no keypoints")
    alpha = positive(alpha, "alpha")
    return float(np.mean(err < alpha * _thresholds(threshold, err.size)))


@dataclass
class PckTable:
    """Accumulates per-pair keypoint errors and reports C the SPair way (per image and per keypoint)."""

    alphas: Sequence[float] = ALPHAS
    _pairs: list[tuple[str, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.alphas, (str, bytes)) or not isinstance(self.alphas, Sequence):
            raise LowMetricError(f"alphas must be a list of numbers, got {self.alphas!r}")
        alphas = {positive(a, "alpha") for a in self.alphas}
        if any(a >= 1 for a in alphas):
            raise LowMetricError(f"alpha is a fraction of the box size, below 1: got {max(alphas):g}")
        self.alphas = (C_ALPHA, *sorted(alphas - {C_ALPHA}, reverse=True))

    def add_batch(self, categories: Sequence[str], pred_kps: Any, gt_kps: Any, thresholds: Any) -> None:
        """Record a batch of pairs: [B, K, 2] predictions and ground truth whose all-NaN rows are
        padding (pairs with fewer keypoints), and one threshold per pair."""
        pred = as_tensor(pred_kps, "pred_kps", ndim=3, finite=False).double().cpu().numpy()
        gt = as_tensor(gt_kps, "gt_kps", ndim=3, finite=False).double().cpu().numpy()
        if pred.shape != gt.shape or pred.shape[-1] != 2 or len(categories) != len(pred):
            raise LowMetricError(f"pred_kps {pred.shape} and gt_kps {gt.shape} must both be [B, K, 2] for "
                                 f"{len(categories)} categories")
        thr = _thresholds(thresholds, len(pred))
        keep = ~(np.isnan(pred).all(-1) | np.isnan(gt).all(-1))
        if not (np.isfinite(pred[keep]).all() and np.isfinite(gt[keep]).all()):
            raise LowMetricError("pred_kps / gt_kps: NaN or Inf outside padding rows")
        for category, p, g, t, k in zip(categories, pred, gt, thr, keep):
            if k.any():
                self._pairs.append((category, np.linalg.norm(p[k] - g[k], axis=1) / t))

    def add(self, category: str, pred_kps: Any, gt_kps: Any, threshold: float) -> None:
        """Record one pair: keypoints visible in both images, threshold = max side of the target box."""
        err = keypoint_errors(pred_kps, gt_kps)
        if err.size:
            self._pairs.append((category, err / _thresholds(threshold, err.size)))

    def summary(self) -> dict[str, Any]:
        """C (x100, mean over pairs) per alpha, per-keypoint PCK, per-category table and counts."""
        if not self._pairs:
            raise LowMetricError("no pair with a keypoint visible in both images: C is undefined")
        by_cat: dict[str, list[np.ndarray]] = defaultdict(list)
        for cat, rel in self._pairs:
            by_cat[cat].append(rel)

        def per_image(rels: list[np.ndarray], alpha: float) -> float:
            return 100.0 * float(np.mean([np.mean(r < alpha) for r in rels]))

        def per_keypoint(rels: list[np.ndarray], alpha: float) -> float:
            return 100.0 * float(np.mean(np.concatenate(rels) < alpha))

        rels = [r for _, r in self._pairs]
        key = {a: f"pck@{a:g}" for a in self.alphas}
        return {
            "C": per_image(rels, C_ALPHA),
            "per_image": {key[a]: per_image(rels, a) for a in self.alphas},
            "per_keypoint": {key[a]: per_keypoint(rels, a) for a in self.alphas},
            "per_category": {
                cat: {**{key[a]: per_image(v, a) for a in self.alphas}, "pairs": len(v), "keypoints": int(sum(map(len, v)))}
                for cat, v in sorted(by_cat.items())
            },
            "pairs": len(rels),
            "keypoints": int(sum(map(len, rels))),
        }
