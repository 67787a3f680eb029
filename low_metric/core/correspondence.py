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
from low_metric.core.checks import as_tensor
from low_metric.core.errors import LowMetricError
from low_metric.core.frame import FRAME_SIZE

C_ALPHA = 0.10  # C is PCK at alpha 0.10, whatever other alphas are reported
ALPHAS = (C_ALPHA, 0.05, 0.01)


def descriptor_grid(tokens: torch.Tensor, grid: tuple[int, int], size: int = 16) -> torch.Tensor:
    """[N, h*w, D] tokens -> [N, D, P, P] L2-normalised descriptors, bilinearly resampled when h x w != P x P."""
    tokens = as_tensor(tokens, "tokens", ndim=3)
    x = resample_tokens(tokens, grid, (size, size))
    return F.normalize(x.float(), dim=-1).permute(0, 2, 1).reshape(x.shape[0], -1, size, size)


def patch_index(kps: torch.Tensor, size: int, image_size: int = FRAME_SIZE) -> torch.Tensor:
    """[K, 2] pixel (x, y) -> [K, 2] integer patch (col, row): floor(coord * P / image_size), clamped."""
    return torch.clamp(torch.floor(kps * size / image_size).long(), 0, size - 1)


def patch_to_pixel(xy_patch: torch.Tensor, size: int, image_size: int = FRAME_SIZE) -> torch.Tensor:
    """Patch units -> pixels: x_px = x_patch * (image_size / P) + floor((image_size / P) / 2)."""
    stride = image_size / size
    return xy_patch * stride + float(np.floor(stride / 2))


def match_keypoints(
    src_feats: Any,
    trg_feats: Any,
    src_kps: Any,
    *,
    window: int | None = 5,
    temperature: float = 0.02,
    image_size: int = FRAME_SIZE,
) -> torch.Tensor:
    """Predict target pixels [K, 2] for source keypoints [K, 2] from [D, P, P] feature grids.

    window > 0: window soft-argmax (similarities outside the (2w+1)^2 window around the hard argmax
    set to 0, softmax over all P*P at ``temperature``, expectation clamped to [0, P-1]).
    window 0 or None: nearest neighbour (hard argmax).
    """
    src = as_tensor(src_feats, "src_feats", ndim=3)
    trg = as_tensor(trg_feats, "trg_feats", ndim=3, device=src.device)
    kps = as_tensor(src_kps, "src_kps", ndim=2, device=src.device).float()
    if src.shape != trg.shape:
        raise LowMetricError(f"src_feats {tuple(src.shape)} and trg_feats {tuple(trg.shape)} differ in shape")
    d, p, q = src.shape
    if p != q:
        raise LowMetricError(f"feature grids must be square [D, P, P], got {tuple(src.shape)}")
    if kps.shape[1] != 2:
        raise LowMetricError(f"src_kps must be [K, 2] (x, y), got {tuple(kps.shape)}")
    if temperature <= 0:
        raise LowMetricError(f"temperature must be > 0, got {temperature}")
    if kps.shape[0] == 0:
        return kps.new_zeros((0, 2))
    cols_rows = patch_index(kps, p, image_size)
    src_desc = F.normalize(src.float(), dim=0)[:, cols_rows[:, 1], cols_rows[:, 0]].T  # [K, D]
    sim = src_desc @ F.normalize(trg.float(), dim=0).reshape(d, p * p)  # [K, P*P]
    best = sim.argmax(dim=1)
    best_xy = torch.stack([best % p, best // p], dim=1)
    if not window:
        return patch_to_pixel(best_xy.float(), p, image_size)
    grid_x = torch.arange(p, device=sim.device).repeat(p)  # column of each flat index
    grid_y = torch.arange(p, device=sim.device).repeat_interleave(p)  # row of each flat index
    inside = ((grid_x[None] - best_xy[:, :1]).abs() <= window) & ((grid_y[None] - best_xy[:, 1:]).abs() <= window)
    prob = torch.softmax(torch.where(inside, sim, torch.zeros_like(sim)) / temperature, dim=1)
    expected = torch.stack([prob @ grid_x.float(), prob @ grid_y.float()], dim=1)
    return patch_to_pixel(expected.clamp(0, p - 1), p, image_size)


def keypoint_errors(pred_kps: Any, gt_kps: Any) -> np.ndarray:
    """Euclidean pixel error per keypoint between [K, 2] predictions and ground truth."""
    pred = as_tensor(pred_kps, "pred_kps", ndim=2).double().cpu().numpy()
    gt = as_tensor(gt_kps, "gt_kps", ndim=2).double().cpu().numpy()
    if pred.shape != gt.shape or pred.shape[1] != 2:
        raise LowMetricError(f"pred_kps {pred.shape} and gt_kps {gt.shape} must both be [K, 2]")
    return np.linalg.norm(pred - gt, axis=1)


def _thresholds(threshold: Any, k: int) -> np.ndarray:
    thr = np.asarray(threshold, dtype=np.float64)
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
    if not alpha > 0:
        raise LowMetricError(f"alpha must be > 0, got {alpha}")
    return float(np.mean(err < alpha * _thresholds(threshold, err.size)))


@dataclass
class PckTable:
    """Accumulates per-pair keypoint errors and reports C the SPair way (per image and per keypoint)."""

    alphas: Sequence[float] = ALPHAS
    _pairs: list[tuple[str, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.alphas = (C_ALPHA, *sorted({float(a) for a in self.alphas} - {C_ALPHA}, reverse=True))

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
