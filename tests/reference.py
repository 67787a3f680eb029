"""Independent numpy renderings of SPEC.md, written from the text, for the tests to compare against."""

from __future__ import annotations

import math

import numpy as np


def a_score(target: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """SPEC 2: mean over images of mean over target tokens of max cosine to the reference tokens."""
    per_image = []
    for t, r in zip(target, reference):
        total = 0.0
        for tok in t:
            cos = [float(tok @ k) / (np.linalg.norm(tok) * np.linalg.norm(k)) for k in r]
            total += max(cos)
        per_image.append(total / len(t))
    return float(np.mean(per_image))


def match_keypoints(src: np.ndarray, trg: np.ndarray, kps: np.ndarray, window: int, temperature: float = 0.02, size: int = 840) -> np.ndarray:
    """SPEC 3, one keypoint at a time, with explicit loops over the target grid."""
    d, p, _ = src.shape
    stride = size / p
    out = []
    for x, y in kps:
        col = min(p - 1, max(0, math.floor(x * p / size)))
        row = min(p - 1, max(0, math.floor(y * p / size)))
        s = src[:, row, col] / np.linalg.norm(src[:, row, col])
        sim = np.zeros((p, p))
        for i in range(p):
            for j in range(p):
                t = trg[:, i, j]
                sim[i, j] = s @ t / np.linalg.norm(t)
        bi, bj = np.unravel_index(np.argmax(sim), sim.shape)
        if window:
            masked = np.zeros_like(sim)
            for i in range(p):
                for j in range(p):
                    if abs(i - bi) <= window and abs(j - bj) <= window:
                        masked[i, j] = sim[i, j]
            e = np.exp((masked - masked.max()) / temperature)
            prob = e / e.sum()
            ey = sum(prob[i, j] * i for i in range(p) for j in range(p))
            ex = sum(prob[i, j] * j for i in range(p) for j in range(p))
            ex, ey = min(max(ex, 0), p - 1), min(max(ey, 0), p - 1)
        else:
            ex, ey = float(bj), float(bi)
        out.append((ex * stride + math.floor(stride / 2), ey * stride + math.floor(stride / 2)))
    return np.array(out)


def pck(pred: np.ndarray, gt: np.ndarray, threshold, alpha: float) -> float:
    thr = np.broadcast_to(np.asarray(threshold, dtype=float), (len(gt),))
    hits = [np.hypot(*(p - g)) < alpha * t for p, g, t in zip(pred, gt, thr)]
    return sum(hits) / len(hits)


def fit_law(a: np.ndarray, c: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """SPEC 4 by the normal equations: weights and in-sample R^2 of the degree-2 law."""
    def mm(v):
        return (v - v.min()) / (v.max() - v.min())

    an, cn, yn = mm(a), mm(c), mm(y)
    x = np.column_stack([np.ones_like(an), an, cn, an**2, an * cn, cn**2])
    w = np.linalg.solve(x.T @ x, x.T @ yn)
    resid = yn - x @ w
    return w, 1 - resid @ resid / np.sum((yn - yn.mean()) ** 2)


def ridge_a_score(target: np.ndarray, reference: np.ndarray, calibration: list[int], held_out: list[int],
                  strength: float) -> float:
    """SPEC 2, ridge mode, in float64, for target and reference tokens on the same grid: rows
    L2-normalised, centred, W = (Xc^T Xc + lam I)^-1 Xc^T Yc with lam = strength x the mean eigenvalue
    of Xc^T Xc, bias from the means; A of the mapped held-out target against the held-out reference."""
    def unit(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    x = unit(target[calibration].reshape(-1, target.shape[-1]).astype(np.float64))
    y = unit(reference[calibration].reshape(-1, reference.shape[-1]).astype(np.float64))
    xm, ym = x.mean(0), y.mean(0)
    gram = (x - xm).T @ (x - xm)
    w = np.linalg.solve(gram + strength * np.trace(gram) / len(gram) * np.eye(len(gram)), (x - xm).T @ (y - ym))
    mapped = [unit(t.astype(np.float64)) @ w + (ym - xm @ w) for t in target[held_out]]
    return a_score(mapped, list(reference[held_out].astype(np.float64)))
