"""The C score: zero-shot keypoint correspondence and PCK (SPEC.md section 3).

All coordinates are (x, y) pixels in the ``image_size`` square frame (840 by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from low_metric.core.alignment import resample_tokens
from low_metric.core.checks import positive
from low_metric.core.errors import LowMetricError
from low_metric.core.frame import FRAME_SIZE
from low_metric.core.tensors import as_tensor, finite_unit_rows, in_safe_range, row_norms, unit_rows

C_ALPHA = 0.10  # C is PCK at alpha 0.10, whatever other alphas are reported
ALPHAS = (C_ALPHA, 0.05, 0.01)


def descriptor_grid(tokens: torch.Tensor, grid: tuple[int, int], size: int = 16) -> torch.Tensor:
    """[N, h*w, D] tokens -> [N, D, P, P] L2-normalised descriptors, bilinearly resampled when h x w != P x P."""
    tokens = as_tensor(tokens, "tokens", ndim=3, finite=False)
    x = unit_rows(resample_tokens(tokens, grid, (size, size)))
    return x.transpose(1, 2).reshape(x.shape[0], -1, size, size)


def patch_index(kps: torch.Tensor, size: int, image_size: float = FRAME_SIZE) -> torch.Tensor:
    """[..., 2] pixel (x, y) -> [..., 2] integer patch (col, row): floor(coord * P / image_size), clamped."""
    return torch.clamp(torch.floor(kps * size / image_size).long(), 0, size - 1)


def patch_to_pixel(xy_patch: torch.Tensor, size: int, image_size: float = FRAME_SIZE) -> torch.Tensor:
    """Patch units -> pixels: x_px = x_patch * (image_size / P) + floor((image_size / P) / 2)."""
    stride = image_size / size
    return xy_patch * stride + float(np.floor(stride / 2))


def pad_keypoints(kps: Sequence[Any]) -> torch.Tensor:
    """[B, K_max, 2] float32 from B arrays of [K_i, 2] (x, y) keypoints, the missing rows NaN (padding)."""
    arrays = []
    for i, k in enumerate(kps):
        try:
            a = np.asarray(k.detach().cpu() if isinstance(k, torch.Tensor) else k, dtype=np.float32)
        except (TypeError, ValueError):
            raise LowMetricError(f"keypoints[{i}]: not a numeric array") from None
        if a.ndim != 2 or a.shape[1] != 2:
            raise LowMetricError(f"keypoints[{i}]: expected [K, 2] (x, y), got shape {a.shape}")
        arrays.append(a)
    out = np.full((len(arrays), max((len(a) for a in arrays), default=0), 2), np.nan, dtype=np.float32)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    if arrays and not np.isfinite(np.concatenate(arrays)).all():
        raise LowMetricError("keypoints: contains NaN or Inf")
    return torch.from_numpy(out)


def _settings(window: Any, temperature: Any, image_size: Any) -> tuple[int, float, float]:
    window = 0 if window is None else window
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
        raise LowMetricError(f"window must be a whole number >= 0 (0 or None: nearest neighbour), got {window!r}")
    return int(window), positive(temperature, "temperature"), positive(image_size, "image_size")


def _padded_keypoints(kps: torch.Tensor) -> torch.Tensor:
    """The all-NaN rows (padding) of [..., K, 2] keypoints; any other NaN or Inf is refused."""
    padding = torch.isnan(kps).all(dim=-1)
    if not torch.isfinite(kps[~padding]).all():
        raise LowMetricError("src_kps: a keypoint has a NaN or Inf coordinate (padding rows must be all NaN)")
    return padding


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
    window, temperature, size = _settings(window, temperature, image_size)
    src = as_tensor(src_feats, "src_feats", finite=False)
    batched = src.ndim == 4
    if src.ndim not in (3, 4):
        raise LowMetricError(f"src_feats must be [D, P, P] or [B, D, P, P], got shape {tuple(src.shape)}")
    trg = as_tensor(trg_feats, "trg_feats", ndim=src.ndim, device=src.device, finite=False)
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
    padding = _padded_keypoints(kps)
    flat = _flat_patch(kps.nan_to_num(0.0), p, size)  # [B, K]
    out = torch.full_like(kps, float("nan"))
    step = max(1, budget_bytes // max(1, 4 * kps.shape[1] * p * p))
    for start in range(0, b, step):
        rows = slice(start, start + step)
        s, t = src[rows].reshape(-1, d, p * p), trg[rows].reshape(-1, d, p * p)
        desc = finite_unit_rows(s.gather(2, flat[rows, None, :].expand(-1, d, -1)).transpose(1, 2),
                                "src_feats (at a source keypoint)")  # [b, K, D]
        out[rows] = patch_to_pixel(_locate(_cosines(desc, t), p, window, temperature), p, size)
    out[padding] = float("nan")
    return out if batched else out[0]


def _flat_patch(kps: torch.Tensor, size: int, image_size: float) -> torch.Tensor:
    """Flat index row * P + col of the patch under each (x, y) keypoint."""
    cols_rows = patch_index(kps, size, image_size)
    return cols_rows[..., 1] * size + cols_rows[..., 0]


def _cosines(desc: torch.Tensor, trg: torch.Tensor) -> torch.Tensor:
    """[b, K, P*P] cosines of unit descriptors [b, K, D] with the columns of target grids [b, D, P*P]:
    one pass for the target norms, then the product divided by them (targets outside the safe
    range of float32 are normalised first). NaN or Inf in a target grid is refused."""
    norms = row_norms(trg, dim=1)
    if not torch.isfinite(norms).all():
        raise LowMetricError("trg_feats: contains NaN or Inf")
    if not in_safe_range(norms):
        return torch.bmm(desc, unit_rows(trg, dim=1))
    sim = torch.bmm(desc, trg.to(desc.dtype))
    return sim.div_(norms.to(sim.dtype))


def _locate(sim: torch.Tensor, p: int, window: int, temperature: float) -> torch.Tensor:
    """[..., 2] matched (x, y) in patch units from similarities [..., P*P] to a P x P target grid:
    the hard argmax, or the window soft-argmax around it."""
    best = sim.argmax(dim=-1, keepdim=True)
    bx, by = best % p, best // p
    if not window:
        return torch.cat([bx, by], dim=-1).to(sim.dtype)
    w = min(window, p - 1)
    if (2 * w + 1) ** 2 >= p * p:  # the window covers the grid: softmax over every cell
        cells = torch.arange(p * p, device=sim.device)
        inside = ((cells % p - bx).abs() <= w) & ((cells // p - by).abs() <= w)
        prob = torch.softmax(torch.where(inside, sim, 0.0) / temperature, dim=-1)
        xy = torch.stack([(cells % p).to(sim.dtype), (cells // p).to(sim.dtype)], dim=-1)
        return (prob @ xy).clamp(0, p - 1)
    # the (2w+1)^2 window cells gathered; the cells outside all hold 0, so they add
    # (P*P - inside) * exp(-m / T) to the normaliser and their summed coordinates times that weight
    offsets = torch.arange(-w, w + 1, device=sim.device)
    xs = (bx + offsets.repeat(2 * w + 1)).clamp(-1, p)  # [..., (2w+1)^2]
    ys = (by + offsets.repeat_interleave(2 * w + 1)).clamp(-1, p)
    valid = (xs >= 0) & (xs < p) & (ys >= 0) & (ys < p)
    values = sim.gather(-1, torch.where(valid, ys * p + xs, 0)).masked_fill_(~valid, float("-inf"))
    n_out = (p * p - valid.sum(dim=-1, keepdim=True)).to(sim.dtype)
    m = torch.where(n_out > 0, values.amax(dim=-1, keepdim=True).clamp_min(0.0), values.amax(dim=-1, keepdim=True))
    weights = torch.exp((values - m) / temperature)  # 0 at the invalid cells
    w_out = torch.exp(-m / temperature)
    total = p * (p - 1) / 2 * p  # sum of x (and of y) over every cell of the grid
    z = weights.sum(dim=-1, keepdim=True) + n_out * w_out
    xy_in = torch.stack([(weights * xs).sum(-1), (weights * ys).sum(-1)], dim=-1)
    xy_out_sum = total - torch.stack([(valid * xs).sum(-1), (valid * ys).sum(-1)], dim=-1)
    return ((xy_in + xy_out_sum * w_out) / z).clamp(0, p - 1)


def match_image_pairs(
    tokens: Any,
    grid: tuple[int, int],
    src_index: Sequence[int],
    trg_index: Sequence[int],
    src_kps: Any,
    *,
    size: int = 16,
    window: int | None = 5,
    temperature: float = 0.02,
    image_size: int = FRAME_SIZE,
    budget_bytes: int = 16 * 2**20,
) -> torch.Tensor:
    """:func:`match_keypoints` for B pairs among N images given by their tokens [N, h*w, D] on an
    h x w grid (descriptors: their bilinear resampling to P x P = ``size`` x ``size``, normalised,
    as :func:`descriptor_grid`): pair b maps ``src_kps[b]`` ([B, K, 2], NaN rows are padding) from
    image ``src_index[b]`` into image ``trg_index[b]``; returns [B, K, 2], on the tokens' device.

    No P x P grid is built. Source descriptors are interpolated where the keypoints fall. For each
    target image, all keypoints headed for it meet its tokens in one product, on the coarser of the
    token and P x P grids; as resampling is linear, resampling these similarities to P x P and
    dividing by the norms of the resampled descriptors (from 2 x 2 Gram blocks of the tokens) gives
    the cosines to the target's P x P descriptors. Targets go a chunk at a time, within ``budget_bytes``.
    """
    window, temperature, image_size = _settings(window, temperature, image_size)
    tokens = as_tensor(tokens, "tokens", ndim=3, finite=False)
    n, t, d = tokens.shape
    if t != grid[0] * grid[1] or d == 0:
        raise LowMetricError(f"tokens [N, {t}, {d}] do not form a {grid[0]}x{grid[1]} grid of D > 0 values")
    kps = as_tensor(src_kps, "src_kps", ndim=3, device=tokens.device, finite=False).float()
    src_i = torch.as_tensor(np.asarray(src_index, dtype=np.int64), device=tokens.device)
    trg_i = torch.as_tensor(np.asarray(trg_index, dtype=np.int64), device=tokens.device)
    if not (src_i.ndim == trg_i.ndim == 1 and len(src_i) == len(trg_i) == kps.shape[0] and kps.shape[-1] == 2):
        raise LowMetricError(f"src_index ({len(src_i)}), trg_index ({len(trg_i)}) and src_kps {tuple(kps.shape)} "
                             "must describe the same B pairs ([B], [B], [B, K, 2])")
    if len(src_i) and not (0 <= int(torch.minimum(src_i, trg_i).min()) and int(torch.maximum(src_i, trg_i).max()) < n):
        raise LowMetricError(f"src_index / trg_index must index the {n} images")
    padding = _padded_keypoints(kps)
    out = torch.full_like(kps, float("nan"))
    pair, slot = (~padding).nonzero(as_tuple=True)  # one row per real keypoint, grouped by target image
    order = torch.argsort(trg_i[pair], stable=True)
    pair, slot = pair[order], slot[order]
    src_of, flat = src_i[pair], _flat_patch(kps[pair, slot], size, image_size)
    ends = torch.bincount(trg_i[pair], minlength=n).cumsum(0).tolist()
    starts = [0, *ends[:-1]]
    coarse = tuple(grid) if grid[0] * grid[1] <= size * size else (size, size)
    cells = size * size
    pred = torch.empty(len(pair), 2, device=tokens.device)
    image_bytes = 4 * t * d * (1 if coarse == (size, size) else 6)  # its tokens (and 2 x 2 blocks for the norms)
    for chunk in _chunks(torch.unique(trg_i[pair]).tolist(), starts, ends,
                         row_bytes=4 * (cells + coarse[0] * coarse[1] + 2 * d), image_bytes=image_bytes, budget=budget_bytes):
        work = resample_tokens(tokens[chunk].float(), grid, coarse)  # a copy; onto P x P when that is coarser
        norms = _resampled_norms(work, coarse, size)  # [n, P*P]
        if not in_safe_range(norms):  # cosines are scale-free: bring each image to max |value| 1
            work = work / work.abs().amax(dim=(1, 2), keepdim=True).clamp_min(torch.finfo(work.dtype).tiny)
            norms = _resampled_norms(work, coarse, size)
        if not torch.isfinite(norms).all():
            raise LowMetricError("tokens: contains NaN or Inf")
        norms = torch.where(norms > 0, norms, 1.0)  # zero vectors (after rescaling: truly zero)
        if coarse == (size, size):  # the work tokens are the descriptors: normalise them in place
            work.div_(norms[..., None])
        lo, hi = starts[chunk[0]], ends[chunk[-1]]
        desc = finite_unit_rows(_sample_grid(tokens, grid, size, src_of[lo:hi], flat[lo:hi]),
                                "tokens (at a source keypoint)")  # the chunk's keypoints, on their source images
        sim = torch.empty(hi - lo, coarse[0] * coarse[1], device=tokens.device)
        for j, image in enumerate(chunk):
            a, b = starts[image] - lo, ends[image] - lo
            torch.mm(desc[a:b], work[j].T, out=sim[a:b])
        if coarse != (size, size):  # bilinear, separably (x, then y), then divided by the descriptor norms
            sim = (sim.view(-1, coarse[1]) @ _bilinear_matrix(size, coarse[1], sim.device).T).view(-1, coarse[0], size)
            sim = torch.matmul(_bilinear_matrix(size, coarse[0], sim.device), sim).view(-1, cells)
            for j, image in enumerate(chunk):
                sim[starts[image] - lo:ends[image] - lo].div_(norms[j])
        pred[lo:hi] = patch_to_pixel(_locate(sim, size, window, temperature), size, image_size)
    out[pair, slot] = pred
    return out


def _chunks(images: list[int], starts: list[int], ends: list[int], *, row_bytes: int, image_bytes: int,
            budget: int) -> list[list[int]]:
    """Consecutive runs of target images whose similarity rows and token work fit the budget."""
    chunks: list[list[int]] = []
    used = budget
    for image in images:
        cost = (ends[image] - starts[image]) * row_bytes + image_bytes
        if used + cost > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(image)
        used += cost
    return chunks


def _bilinear(size: int, n_in: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each of ``size`` output positions, its two input neighbours and the weight of the second:
    bilinear resampling of ``n_in`` positions with align_corners=False (F.interpolate's rule)."""
    src = ((torch.arange(size, device=device, dtype=torch.float32) + 0.5) * (n_in / size) - 0.5).clamp_min(0.0)
    lo = src.long()
    return lo, (lo + 1).clamp_max(n_in - 1), src - lo


def _bilinear_matrix(size: int, n_in: int, device: torch.device) -> torch.Tensor:
    """[size, n_in] matrix of :func:`_bilinear`'s weights (two per row, or one where clamped)."""
    lo, hi, lam = _bilinear(size, n_in, device)
    out = torch.zeros(size, n_in, device=device)
    rows = torch.arange(size, device=device)
    out.index_put_((rows, lo), 1 - lam, accumulate=True)
    return out.index_put_((rows, hi), lam, accumulate=True)


def _sample_grid(tokens: torch.Tensor, grid: tuple[int, int], size: int, image: torch.Tensor,
                 flat: torch.Tensor) -> torch.Tensor:
    """[M, D] rows of ``resample_tokens(tokens, grid, (size, size))`` at (image, flat cell) pairs,
    by the same bilinear rule, without resampling whole grids."""
    h, w = grid
    if (h, w) == (size, size):
        return tokens[image, flat].float()
    y0, y1, ly = (v[flat // size] for v in _bilinear(size, h, tokens.device))
    x0, x1, lx = (v[flat % size] for v in _bilinear(size, w, tokens.device))
    ly, lx = ly[:, None], lx[:, None]

    def at(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return tokens[image, y * w + x].float()

    return (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1))


def _resampled_norms(tokens: torch.Tensor, grid: tuple[int, int], size: int) -> torch.Tensor:
    """[n, P*P] norms of the rows of ``resample_tokens(tokens, grid, (size, size))`` for an h x w grid
    no finer than P x P: each resampled row mixes the 4 tokens of a 2 x 2 block, so its squared norm
    is w^T G w with G that block's 4 x 4 Gram matrix (no P x P grid built)."""
    h, w = grid
    if (h, w) == (size, size):
        return torch.linalg.vector_norm(tokens, dim=-1)
    dev = tokens.device
    rows, cols = torch.arange(h, device=dev), torch.arange(w, device=dev)
    down, right = (rows + 1).clamp_max(h - 1)[:, None] * w, (cols + 1).clamp_max(w - 1)
    corners = torch.stack([rows[:, None] * w + cols, rows[:, None] * w + right, down + cols, down + right], -1)
    blocks = tokens[:, corners.reshape(-1, 4)]  # [n, h*w, 4, D]: the block whose top-left is each token
    gram = blocks @ blocks.transpose(-1, -2)  # [n, h*w, 4, 4]
    y0, _, ly = _bilinear(size, h, dev)
    x0, _, lx = _bilinear(size, w, dev)
    weights = torch.stack([(1 - ly)[:, None] * (1 - lx), (1 - ly)[:, None] * lx, ly[:, None] * (1 - lx),
                           ly[:, None] * lx], -1).reshape(-1, 4)  # [P*P, 4]
    cell_gram = gram[:, (y0[:, None] * w + x0).reshape(-1)]  # [n, P*P, 4, 4]
    return ((cell_gram @ weights[:, :, None]).squeeze(-1) * weights).sum(-1).clamp_min(0.0).sqrt()


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
        rel = np.linalg.norm(pred - gt, axis=-1) / thr[:, None]
        self._pairs.extend((category, r[k]) for category, r, k in zip(categories, rel, keep) if k.any())

    def add(self, category: str, pred_kps: Any, gt_kps: Any, threshold: float) -> None:
        """Record one pair: keypoints visible in both images, threshold = max side of the target box."""
        err = keypoint_errors(pred_kps, gt_kps)
        if err.size:
            self._pairs.append((category, err / _thresholds(threshold, err.size)))

    def summary(self) -> dict[str, Any]:
        """C (x100, mean over pairs) per alpha, per-keypoint PCK, per-category table and counts."""
        if not self._pairs:
            raise LowMetricError("no pair with a keypoint visible in both images: C is undefined")
        lengths = np.array([len(r) for _, r in self._pairs])
        hits = np.concatenate([r for _, r in self._pairs])[None, :] < np.array(self.alphas)[:, None]  # [alphas, kps]
        per_pair = np.add.reduceat(hits, np.r_[0, np.cumsum(lengths)[:-1]], axis=1) / lengths  # [alphas, pairs]
        categories = np.array([c for c, _ in self._pairs])
        key = [f"pck@{a:g}" for a in self.alphas]

        def per_image(rows: np.ndarray) -> dict[str, float]:
            return {k: 100.0 * float(np.mean(v)) for k, v in zip(key, np.ascontiguousarray(per_pair[:, rows]))}

        everything = np.ones(len(lengths), dtype=bool)
        overall = per_image(everything)
        table = {}
        for cat in sorted(set(categories.tolist())):
            rows = categories == cat
            table[cat] = {**per_image(rows), "pairs": int(rows.sum()), "keypoints": int(lengths[rows].sum())}
        return {
            "C": overall[key[0]],  # alphas[0] is C_ALPHA
            "per_image": overall,
            "per_keypoint": {k: 100.0 * float(np.mean(v)) for k, v in zip(key, hits)},
            "per_category": table,
            "pairs": len(lengths),
            "keypoints": int(lengths.sum()),
        }
