"""The AC policy (SPEC.md section 5): which candidates to fine-tune, and which are predicted best.

Candidates' (A, C) are normalised to the unit square over the candidate pool (every candidate's
A and C is known: they are cheap). The square is split into 2^L x 2^L cells from L = 1; cells
holding an already fine-tuned candidate are skipped, the others visited in random order, one
candidate per cell; when none is left, L grows. From 2 observed scores on, the law is fitted on
the observed candidates (least squares, minimum-norm while under-determined), every candidate is
predicted, and the top k are recommended (observed candidates rank by their true score).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from low_metric.core.checks import as_vector
from low_metric.core.errors import LowMetricError
from low_metric.core.law import design_matrix

MAX_LEVEL = 30


def unit_square(a: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min-max normalise A and C over the candidate pool."""
    out = []
    for v, name in ((a, "A"), (c, "C")):
        lo, hi = float(v.min()), float(v.max())
        if hi - lo <= 0:
            raise LowMetricError(f"{name} is constant over the candidates: the policy's grid is undefined")
        out.append((v - lo) / (hi - lo))
    return out[0], out[1]


def cells(a_n: np.ndarray, c_n: np.ndarray, level: int) -> np.ndarray:
    """Cell index of each point of the unit square in a 2^level x 2^level grid."""
    side = 2**level
    ix = np.minimum((a_n * side).astype(int), side - 1)
    iy = np.minimum((c_n * side).astype(int), side - 1)
    return ix * side + iy


def next_candidate(a_n: np.ndarray, c_n: np.ndarray, observed: np.ndarray, rng: np.random.Generator) -> int | None:
    """Index of the next candidate to fine-tune, or None when all are observed."""
    free = ~observed
    if not free.any():
        return None
    for level in range(1, MAX_LEVEL + 1):
        cell = cells(a_n, c_n, level)
        open_cells = np.setdiff1d(np.unique(cell[free]), cell[observed])
        if open_cells.size:
            chosen = rng.choice(open_cells)
            return int(rng.choice(np.flatnonzero(free & (cell == chosen))))
    return int(rng.choice(np.flatnonzero(free)))  # candidates at identical (A, C): no grid separates them


def predict(a_n: np.ndarray, c_n: np.ndarray, observed: np.ndarray, y_obs: np.ndarray, kind: str = "ac2") -> np.ndarray:
    """Law fitted on the observed candidates, evaluated on all, in benchmark units."""
    lo, hi = float(y_obs.min()), float(y_obs.max())
    span = hi - lo if hi > lo else 1.0
    w = np.linalg.lstsq(design_matrix(a_n[observed], c_n[observed], kind), (y_obs - lo) / span, rcond=None)[0]
    return design_matrix(a_n, c_n, kind) @ w * span + lo


def ranking(a_n: np.ndarray, c_n: np.ndarray, observed: np.ndarray, y_obs: np.ndarray) -> np.ndarray:
    """All candidates, best first: observed by true score, the rest by the law (needs >= 2 observed)."""
    score = np.full(len(a_n), -np.inf)
    if observed.sum() >= 2:
        score = predict(a_n, c_n, observed, y_obs)
    score[observed] = y_obs
    return np.argsort(-score, kind="stable")


@dataclass(frozen=True)
class Recall:
    """Recall@k after n fine-tunes (n = 1..budget) for the AC policy and random order."""

    ac: np.ndarray
    random: np.ndarray
    k: int
    trials: int


def simulate(a: np.ndarray, c: np.ndarray, y: np.ndarray, *, budget: int, trials: int = 1000, k: int = 3, seed: int = 0) -> Recall:
    """Share of trials where the truly best candidate is among the top k after n fine-tunes."""
    y = as_vector(y, "y")
    a, c = as_vector(a, "A", length=len(y)), as_vector(c, "C", length=len(y))
    if not 1 <= budget <= len(y):
        raise LowMetricError(f"budget must be between 1 and the number of candidates ({len(y)}), got {budget}")
    if trials < 1 or k < 1:
        raise LowMetricError("trials and k must be >= 1")
    a_n, c_n = unit_square(a, c)
    best = int(np.argmax(y))
    rng = np.random.default_rng(seed)
    ac_hits = np.zeros(budget)
    random_hits = np.zeros(budget)
    for _ in range(trials):
        observed = np.zeros(len(y), dtype=bool)
        for n in range(budget):
            observed[next_candidate(a_n, c_n, observed, rng)] = True
            top = ranking(a_n, c_n, observed, y[observed])[:k] if n >= 1 else np.flatnonzero(observed)
            ac_hits[n] += best in top
        position = int(np.flatnonzero(rng.permutation(len(y)) == best)[0])
        random_hits += np.arange(budget) >= position
    return Recall(ac_hits / trials, random_hits / trials, k, trials)


@dataclass(frozen=True)
class Recommendation:
    """What to fine-tune next and which candidates are predicted best, given observed scores."""

    next: str | None
    top: list[str]
    predicted: dict[str, float] | None
    observed: dict[str, float]


def recommend(
    names: list[str], a: np.ndarray, c: np.ndarray, observed: dict[str, float], *, k: int = 3, seed: int = 0
) -> Recommendation:
    """The interactive policy: "I fine-tuned these, with these scores: which next, which best?"."""
    if len(set(names)) != len(names):
        raise LowMetricError("candidate names must be unique")
    a, c = as_vector(a, "A", length=len(names)), as_vector(c, "C", length=len(names))
    unknown = sorted(set(observed) - set(names))
    if unknown:
        raise LowMetricError(f"observed candidate(s) not among the candidates: {', '.join(unknown)}")
    a_n, c_n = unit_square(a, c)
    mask = np.array([n in observed for n in names])
    y_obs = as_vector([observed[n] for n in names if n in observed], "observed scores")
    nxt = next_candidate(a_n, c_n, mask, np.random.default_rng(seed))
    predicted = None
    if mask.sum() >= 2:
        predicted = dict(zip(names, predict(a_n, c_n, mask, y_obs).tolist()))
    order = ranking(a_n, c_n, mask, y_obs) if mask.any() else np.array([], dtype=int)
    top = [names[i] for i in order[:k] if mask.sum() >= 2 or mask[i]]
    return Recommendation(None if nxt is None else names[nxt], top, predicted, dict(observed))
