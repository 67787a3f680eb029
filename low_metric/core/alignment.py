"""The A score: cross-modal alignment of a representation's tokens with CLIP's (SPEC.md section 2).

    a_i = mean over target tokens t of max over reference tokens k of cos(t, R_i,k)
    A   = mean over images of a_i, averaged over references.

Similarities are batched matrix products over images of the same token counts, in chunks whose
[B, T, R] similarity block stays under a memory budget: nothing of size T x T x D is formed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from low_metric.core.checks import positive
from low_metric.core.errors import LowMetricError
from low_metric.core.tensors import (
    as_tensor,
    as_token_list,
    in_safe_range,
    refuse_non_finite,
    row_norms,
    unit_rows,
)

DEFAULT_BUDGET_BYTES = 256 * 2**20


def _tokens(x: Any, name: str, device: torch.device | str | None) -> torch.Tensor | list[torch.Tensor]:
    """One [N, T, D] tensor, or a list of [T, D] tensors (token counts may differ), checked for shape;
    finiteness is checked on the results (one pass over the data, not two)."""
    if isinstance(x, (np.ndarray, torch.Tensor)) and x.ndim == 3:
        blocks = [as_tensor(x, name, ndim=3, device=device, finite=False)]
        names = [name]
    else:
        blocks = [as_tensor(t, f"{name}[{i}]", ndim=2, device=device, finite=False)
                  for i, t in enumerate(as_token_list(x, name))]
        names = [f"{name}[{i}]" for i in range(len(blocks))]
    for block, label in zip(blocks, names):
        if block.shape[-2] == 0 or block.shape[-1] == 0:
            raise LowMetricError(f"{label}: no tokens or zero width (shape {tuple(block.shape)})")
    return blocks[0] if len(blocks) == 1 and blocks[0].ndim == 3 else blocks


def _mean_max_cos(t: torch.Tensor, r: torch.Tensor, budget_bytes: int) -> torch.Tensor:
    """[B] mean over target tokens of the max cosine to the reference tokens, for t [B, T, D] and
    r [B, R, D] as given (not normalised): max_k cos(t, r_k) = max_k (t . r_k / |r_k|) / |t|, so the
    product of the raw tokens is scaled in place by the reference norms, its max divided by the
    target norms; no normalised copy. Tokens whose norms leave the safe range of float32 are
    normalised first. Target rows are chunked so a [B, rows, R] block fits the budget."""
    t_norms, r_norms = row_norms(t), row_norms(r)
    if in_safe_range(t_norms) and in_safe_range(r_norms):
        t, r = _matmul_operands(t, r)
        r_scale = (1 / r_norms).float().transpose(1, 2)  # [B, 1, R]
        t_norms = t_norms.float()[..., 0]  # [B, T]
    else:
        t, r, r_scale, t_norms = unit_rows(t), unit_rows(r), None, None
    b, n_t, _ = t.shape
    rows = max(1, budget_bytes // (4 * b * r.shape[1]))
    r_t = r.transpose(1, 2)
    total = torch.zeros(b, dtype=torch.float64, device=t.device)
    for start in range(0, n_t, rows):
        sim = _bmm(t[:, start:start + rows], r_t)
        best = (sim if r_scale is None else sim.mul_(r_scale)).amax(dim=2)
        if t_norms is not None:
            best = best / t_norms[:, start:start + rows]
        total += best.sum(dim=1, dtype=torch.float64)
    return total / n_t


def _matmul_operands(t: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The operands in the product's dtype: float32, or on a GPU both inputs' float16 / bfloat16
    (the product then accumulates and returns float32, see :func:`_bmm`)."""
    half = (torch.float16, torch.bfloat16)
    if t.device.type == "cuda" and t.dtype == r.dtype and t.dtype in half:
        return t, r
    return t.float(), r.float()


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched product in float32: half-precision operands (GPU) accumulate in float32."""
    if a.dtype in (torch.float16, torch.bfloat16):
        return torch.bmm(a, b, out_dtype=torch.float32)
    return torch.bmm(a, b)


def alignment_per_image(
    target: Any,
    reference: Any,
    *,
    device: torch.device | str | None = None,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
) -> np.ndarray:
    """a_i for each image: target and reference are lists of [tokens, D] (or [N, tokens, D]).

    Huge but finite values are exact (each token is scaled by its largest |value| before
    normalising); NaN or Inf anywhere is a one-line error naming the image.
    """
    budget_bytes = int(positive(budget_bytes, "budget_bytes"))
    tgt = _tokens(target, "target", device)
    ref = _tokens(reference, "reference", tgt[0].device if isinstance(tgt, list) else tgt.device)
    if len(tgt) != len(ref):
        raise LowMetricError(f"target has {len(tgt)} images but reference has {len(ref)}")
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (t, r) in enumerate(zip(tgt, ref)):
        if t.shape[1] != r.shape[1]:
            raise LowMetricError(
                f"image {i}: target width D={t.shape[1]} differs from reference width D={r.shape[1]} "
                "(map both into one space: projector or ridge mode)"
            )
        groups[(t.shape[0], r.shape[0])].append(i)
    out = np.empty(len(tgt), dtype=np.float64)
    for (n_t, n_r), idx in groups.items():
        step = max(1, budget_bytes // (4 * n_t * n_r))
        for start in range(0, len(idx), step):
            chunk = idx[start : start + step]
            t = _block(tgt, chunk)
            r = _block(ref, chunk)
            out[chunk] = _mean_max_cos(t, r, budget_bytes).cpu().numpy()
    if not np.isfinite(out).all():
        i = int(np.flatnonzero(~np.isfinite(out))[0])
        culprit = "target" if not torch.isfinite(tgt[i]).all() else "reference"
        raise LowMetricError(f"{culprit}[{i}]: contains NaN or Inf")
    return out


def _block(tokens: torch.Tensor | list[torch.Tensor], chunk: list[int]) -> torch.Tensor:
    """[len(chunk), T, D]: a view of one [N, T, D] tensor for a contiguous chunk, else stacked."""
    if isinstance(tokens, torch.Tensor) and chunk == list(range(chunk[0], chunk[-1] + 1)):
        return tokens[chunk[0]:chunk[-1] + 1]
    return torch.stack([tokens[i] for i in chunk])


def a_score(
    target: Any,
    reference: Any,
    *,
    device: torch.device | str | None = None,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
) -> float:
    """The A score of target tokens against one reference, or the mean over a dict of references."""
    if isinstance(reference, Mapping):
        if not reference:
            raise LowMetricError("reference: empty dict of references")
        return float(np.mean([a_score(target, r, device=device, budget_bytes=budget_bytes) for r in reference.values()]))
    return float(alignment_per_image(target, reference, device=device, budget_bytes=budget_bytes).mean())


def resample_tokens(tokens: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resample [N, h*w, D] grid tokens onto an H x W grid: [N, H*W, D]."""
    n, t, d = tokens.shape
    h, w = grid
    if t != h * w:
        raise LowMetricError(f"{t} tokens do not form a {h}x{w} grid")
    if tuple(new_grid) == (h, w):
        return tokens
    x = tokens.reshape(n, h, w, d).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=tuple(new_grid), mode="bilinear", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(n, new_grid[0] * new_grid[1], d)


@dataclass(frozen=True)
class RidgeMap:
    """y = normalize(x) @ weight + bias, fitted in closed form on paired tokens."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Mapped [..., Dy] rows: (x @ weight) divided by the norms of x, plus bias (no normalised copy of x)."""
        norms = row_norms(x)
        if not in_safe_range(norms):
            return torch.matmul(unit_rows(x), self.weight).add_(self.bias)
        return torch.matmul(x.float(), self.weight).div_(norms.float()).add_(self.bias)


def fit_ridge(x: torch.Tensor, y: torch.Tensor, strength: float) -> RidgeMap:
    """Ridge regression from L2-normalised x [M, Dx] to L2-normalised y [M, Dy].

    The penalty is ``strength`` times the mean eigenvalue of the centred x covariance, so the same
    strength means the same shrinkage whatever the width or scale of the features. The products
    (the bulk of the work) run in float32; the small [Dx, Dx] system is solved in float64.
    """
    strength = positive(strength, "ridge strength", allow_zero=True)
    if x.shape[0] != y.shape[0]:
        raise LowMetricError(f"ridge: {x.shape[0]} input tokens but {y.shape[0]} output tokens")
    xc, yc = unit_rows(x), unit_rows(y)  # our own float32 copies: centred in place
    x_mean, y_mean = xc.mean(0), yc.mean(0)
    xc -= x_mean
    yc -= y_mean
    gram = (xc.T @ xc).double()
    penalty = strength * torch.trace(gram) / gram.shape[0] + 1e-12
    gram.diagonal().add_(penalty)
    weight = torch.linalg.solve(gram, (xc.T @ yc).double()).float()
    return RidgeMap(weight, y_mean - x_mean @ weight)


def calibration_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of n images into (calibration, held-out) index arrays, both non-empty."""
    if n < 2:
        raise LowMetricError(f"ridge mode needs at least 2 images (calibration and held-out), got {n}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise LowMetricError(f"calibration fraction must be in (0, 1), got {fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_cal = min(n - 1, max(1, round(fraction * n)))
    return np.sort(perm[:n_cal]), np.sort(perm[n_cal:])


@dataclass(frozen=True)
class RidgeAlignment:
    """A score in ridge mode, per reference and averaged, with the split it used."""

    a: float
    per_reference: dict[str, float]
    calibration: list[int]
    held_out: list[int]


def ridge_a_score(
    target: torch.Tensor,
    target_grid: tuple[int, int],
    references: Mapping[str, tuple[torch.Tensor, tuple[int, int]]],
    *,
    calibration: float = 0.5,
    strength: float = 1e-3,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> RidgeAlignment:
    """Training-free A: map target tokens into each reference's space by ridge, score held-out images.

    target: [N, h*w, Dt] tokens on ``target_grid``; references: name -> ([N, H*W, Dr], (H, W)) on the
    same N images. Pairs for the fit are the target grid resampled onto each reference grid.
    """
    tgt = as_tensor(target, "target", ndim=3, device=device, finite=False)
    if not references:
        raise LowMetricError("ridge mode: no references")
    refuse_non_finite(tgt, "target")
    cal, held = calibration_split(tgt.shape[0], calibration, seed)
    per_ref: dict[str, float] = {}
    for name, (ref_tokens, ref_grid) in references.items():
        ref = as_tensor(ref_tokens, f"reference {name}", ndim=3, device=tgt.device, finite=False)
        if ref.shape[0] != tgt.shape[0]:
            raise LowMetricError(f"reference {name} has {ref.shape[0]} images, target has {tgt.shape[0]}")
        refuse_non_finite(ref, f"reference {name}")
        paired = resample_tokens(tgt[cal], target_grid, ref_grid)
        ridge = fit_ridge(paired.reshape(-1, tgt.shape[-1]), ref[cal].reshape(-1, ref.shape[-1]), strength)
        per_ref[name] = a_score(ridge(tgt[held]), ref[held])
    return RidgeAlignment(float(np.mean(list(per_ref.values()))), per_ref, cal.tolist(), held.tolist())
