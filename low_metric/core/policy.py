"""The AC policy (SPEC.md section 5): which candidates to fine-tune, and which are predicted best.

Candidates' (A, C) are normalised to the unit square over the candidate pool (every candidate's
A and C is known: they are cheap). The square is split into 2^L x 2^L cells from L = 1; cells
holding an already fine-tuned candidate are skipped, the others visited in random order, one
candidate per cell; when none is left, L grows. From 2 observed scores on, a recommendation rule
fits the law on the observed candidates and names the top k:

- ``paper``: the official simulation's rule (``visualizations/AC_sample.py`` + ``validate_run.py``
  of the paper's repository): the law by least squares with an unpenalised intercept (minimum norm
  while under-determined, as scikit-learn's LinearRegression), every candidate ranked by it;
- ``best-kept`` (the default, chosen on synthetic candidate sets by ``benchmarks/bench_policy.py``):
  from 3 fine-tunes on, the best fine-tuned candidate keeps a place and the other k - 1 go to the
  untried candidates ranked highest, in turn by a lightly ridged law (0.01 x the number observed, on
  the centred terms: it tames the exact interpolation the 6-parameter law does through 3..5 points)
  and by the plain law; with 2, the best fine-tuned one competes with the untried on the law's scale.

Evaluation (:func:`simulate`), two Recall@k curves over n = 1..budget fine-tunes: ``reached`` (the
paper's metric: the truly best candidate has been among the recommended top k after some m <= n)
and ``current`` (it is among the top k recommended right after n), against random order (success
only once the best itself is fine-tuned).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from low_metric.core.checks import as_vector
from low_metric.core.errors import LowMetricError
from low_metric.core.law import design_matrix

MAX_LEVEL = 30
Rule = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]
"""(a_n, c_n, observed mask, observed scores, k) -> (top k indices, each candidate's estimated score)."""


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


def law_predictions(a_n: np.ndarray, c_n: np.ndarray, observed: np.ndarray, y_obs: np.ndarray,
                    ridge: float = 0.0, kind: str = "ac2") -> np.ndarray:
    """The law fitted on the observed candidates, evaluated on all (benchmark units).

    Least squares on the centred terms, so the intercept is never penalised: minimum norm while
    under-determined; with ``ridge`` > 0 a penalty ``ridge`` x (number observed) on the terms."""
    x_all = design_matrix(a_n, c_n, kind)[:, 1:]
    x, mean_x, mean_y = x_all[observed], x_all[observed].mean(axis=0), float(y_obs.mean())
    z = x - mean_x
    if ridge > 0:
        w = np.linalg.solve(z.T @ z + ridge * len(y_obs) * np.eye(z.shape[1]), z.T @ (y_obs - mean_y))
    else:
        w = np.linalg.lstsq(z, y_obs - mean_y, rcond=None)[0]
    return (x_all - mean_x) @ w + mean_y


def paper_rule(a_n: np.ndarray, c_n: np.ndarray, observed: np.ndarray, y_obs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The official simulation's rule: every candidate ranked by the law fitted on the observed ones."""
    estimate = law_predictions(a_n, c_n, observed, y_obs)
    return np.argsort(-estimate, kind="stable")[:k], estimate


def best_kept_rule(a_n: np.ndarray, c_n: np.ndarray, observed: np.ndarray, y_obs: np.ndarray, k: int,
                   ridge: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """The rule chosen on synthetic candidate sets (``benchmarks/bench_policy.py``).

    With 2 fine-tuned, the law is a mere direction: the best fine-tuned candidate competes with the
    untried ones on its scale (the other observed one is left out). From 3 on, the best fine-tuned
    keeps a place and the untried places go in turn to the best of a lightly ridged law (``ridge``
    x the number observed) and of the plain law (minimum norm), each skipping what is already in.
    Estimates: observed candidates their scores, untried ones the (ridged) law's prediction."""
    best = int(np.flatnonzero(observed)[np.argmax(y_obs)])
    plain = law_predictions(a_n, c_n, observed, y_obs)
    if observed.sum() == 2:
        score = np.where(observed, -np.inf, plain)
        score[best] = y_obs.max()
        estimate = np.where(observed, 0.0, plain)
        estimate[observed] = y_obs
        return np.argsort(-score, kind="stable")[:k], estimate
    ridged = law_predictions(a_n, c_n, observed, y_obs, ridge=ridge)
    orders = [[int(i) for i in np.argsort(-law, kind="stable") if not observed[i]] for law in (ridged, plain)]
    top = [best]
    turn = 0
    while len(top) < k and any(orders):
        order = orders[turn % 2] or orders[(turn + 1) % 2]
        pick = order.pop(0)
        if pick not in top:
            top.append(pick)
            turn += 1
    estimate = ridged.copy()
    estimate[observed] = y_obs
    return np.array(top), estimate


RULES: dict[str, Rule] = {"best-kept": best_kept_rule, "paper": paper_rule}
DEFAULT_RULE = "best-kept"


def _rule(rule: str | Rule) -> tuple[str, Rule]:
    if callable(rule):
        return getattr(rule, "__name__", "custom"), rule
    if rule not in RULES:
        raise LowMetricError(f"unknown recommendation rule {rule!r}; choose from {', '.join(RULES)}")
    return rule, RULES[rule]


def recommended(rule: Rule, a_n: np.ndarray, c_n: np.ndarray, observed: np.ndarray, y_obs: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The top k (and the estimates) after the observed fine-tunes: the rule from 2 observed on;
    before that, the observed candidate itself (nothing to fit)."""
    if observed.sum() >= 2:
        return rule(a_n, c_n, observed, y_obs, k)
    return np.flatnonzero(observed)[:k], None


@dataclass(frozen=True)
class Recall:
    """Recall@k after n fine-tunes (n = 1..budget): the AC policy's ``reached`` and ``current``
    curves under ``rule``, and random order's."""

    reached: np.ndarray
    current: np.ndarray
    random: np.ndarray
    k: int
    trials: int
    rule: str

    @property
    def ac(self) -> np.ndarray:
        """The AC policy's current Recall@k (the curve earlier versions reported as ``ac``)."""
        return self.current


def simulate(a: np.ndarray, c: np.ndarray, y: np.ndarray, *, budget: int, trials: int = 1000, k: int = 3,
             seed: int = 0, rule: str | Rule = DEFAULT_RULE) -> Recall:
    """Share of trials where the truly best candidate is among the recommended top k: at some m <= n
    fine-tunes (``reached``), right after n (``current``); random order's for comparison."""
    y = as_vector(y, "y")
    a, c = as_vector(a, "A", length=len(y)), as_vector(c, "C", length=len(y))
    if not 1 <= budget <= len(y):
        raise LowMetricError(f"budget must be between 1 and the number of candidates ({len(y)}), got {budget}")
    if trials < 1 or k < 1:
        raise LowMetricError("trials and k must be >= 1")
    name, fn = _rule(rule)
    a_n, c_n = unit_square(a, c)
    best = int(np.argmax(y))
    rng = np.random.default_rng(seed)
    reached, current, random_hits = np.zeros(budget), np.zeros(budget), np.zeros(budget)
    for _ in range(trials):
        observed = np.zeros(len(y), dtype=bool)
        hit_once = False
        for n in range(budget):
            observed[next_candidate(a_n, c_n, observed, rng)] = True
            hit = best in recommended(fn, a_n, c_n, observed, y[observed], k)[0]
            hit_once |= hit
            current[n] += hit
            reached[n] += hit_once
        position = int(np.flatnonzero(rng.permutation(len(y)) == best)[0])
        random_hits += np.arange(budget) >= position
    return Recall(reached / trials, current / trials, random_hits / trials, k, trials, name)


@dataclass(frozen=True)
class Recommendation:
    """What to fine-tune next and which candidates are predicted best, given observed scores."""

    next: str | None
    top: list[str]
    predicted: dict[str, float] | None
    observed: dict[str, float]
    rule: str


def recommend(
    names: list[str], a: np.ndarray, c: np.ndarray, observed: dict[str, float], *, k: int = 3, seed: int = 0,
    rule: str = DEFAULT_RULE,
) -> Recommendation:
    """The interactive policy: "I fine-tuned these, with these scores: which next, which best?"."""
    if len(set(names)) != len(names):
        raise LowMetricError("candidate names must be unique")
    a, c = as_vector(a, "A", length=len(names)), as_vector(c, "C", length=len(names))
    unknown = sorted(set(observed) - set(names))
    if unknown:
        raise LowMetricError(f"observed candidate(s) not among the candidates: {', '.join(unknown)}")
    name, fn = _rule(rule)
    a_n, c_n = unit_square(a, c)
    mask = np.array([n in observed for n in names])
    y_obs = as_vector([observed[n] for n in names if n in observed], "observed scores")
    nxt = next_candidate(a_n, c_n, mask, np.random.default_rng(seed))
    top, estimate = recommended(fn, a_n, c_n, mask, y_obs, k)
    predicted = None if estimate is None else dict(zip(names, estimate.tolist()))
    return Recommendation(None if nxt is None else names[nxt], [names[i] for i in top], predicted, dict(observed), name)
