"""The law of vision representation (SPEC.md section 4): benchmark score from (A, C).

    A^, C^, y^ = min-max normalised over the fit set
    y^ ~ w0 + w1 A^ + w2 C^ + w3 A^2 + w4 A^ C^ + w5 C^2      (kind "ac2", the paper's law)

Variants for ablation: "a" (1, A^, A^2), "c" (1, C^, C^2), "linear" (1, A^, C^). The min/max
constants are frozen at fit time and stored with the law.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from low_metric.core.checks import as_vector
from low_metric.core.errors import LowMetricError

KINDS = ("ac2", "a", "c", "linear")


def design_matrix(a: np.ndarray, c: np.ndarray, kind: str = "ac2") -> np.ndarray:
    """Columns of the law's polynomial in normalised (A, C)."""
    one = np.ones_like(a)
    columns = {
        "ac2": (one, a, c, a * a, a * c, c * c),
        "a": (one, a, a * a),
        "c": (one, c, c * c),
        "linear": (one, a, c),
    }
    if kind not in columns:
        raise LowMetricError(f"unknown law kind {kind!r}; choose from {', '.join(KINDS)}")
    return np.stack(columns[kind], axis=1)


def n_params(kind: str) -> int:
    return design_matrix(np.zeros(1), np.zeros(1), kind).shape[1]


def _range(v: np.ndarray, name: str) -> tuple[float, float]:
    lo, hi = float(v.min()), float(v.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        raise LowMetricError(f"{name} is constant over the fit set (min = max = {lo:g}): cannot normalise")
    return lo, hi


def _minmax(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (v - lo) / (hi - lo)


@dataclass
class Law:
    """A fitted law: weights on normalised (A, C) and the fit set's min/max constants."""

    kind: str
    weights: list[float]
    a_range: tuple[float, float]
    c_range: tuple[float, float]
    y_range: tuple[float, float]
    r2: float
    n: int
    benchmark: str = ""
    names: list[str] = field(default_factory=list)
    protocol_hash: str | None = None

    def __post_init__(self) -> None:
        """Refuse what would give non-finite predictions: every law, fitted or read back, is checked."""
        if self.kind not in KINDS:
            raise LowMetricError(f"not a law: kind {self.kind!r} (one of {', '.join(KINDS)})")
        self.weights = as_vector(self.weights, f"law {self.benchmark or self.kind}: weights",
                                 length=n_params(self.kind)).tolist()
        for name in ("a_range", "c_range", "y_range"):
            lo, hi = as_vector(getattr(self, name), f"law {self.benchmark or self.kind}: {name}", length=2)
            if not hi - lo > 1e-12 * max(1.0, abs(hi)):
                raise LowMetricError(f"law {self.benchmark or self.kind}: {name} [{lo:g}, {hi:g}] is empty "
                                     "(min must be below max)")
            setattr(self, name, (float(lo), float(hi)))

    def outside(self, a: Any, c: Any) -> np.ndarray:
        """Whether each (A, C) lies outside the fit set's range of A or C (an extrapolation)."""
        a_v, c_v = np.atleast_1d(np.asarray(a, dtype=np.float64)), np.atleast_1d(np.asarray(c, dtype=np.float64))
        a_n, c_n = _minmax(a_v, *self.a_range), _minmax(c_v, *self.c_range)
        out = np.zeros(a_v.shape, dtype=bool)
        if self.kind != "c":
            out |= (a_n < 0) | (a_n > 1)
        if self.kind != "a":
            out |= (c_n < 0) | (c_n > 1)
        return out

    def ac_score(self, a: Any, c: Any) -> np.ndarray:
        """The law's normalised prediction y^ (about 0..1 relative to the fit set)."""
        a_v, c_v = np.atleast_1d(np.asarray(a, dtype=np.float64)), np.atleast_1d(np.asarray(c, dtype=np.float64))
        if a_v.shape != c_v.shape or not (np.isfinite(a_v).all() and np.isfinite(c_v).all()):
            raise LowMetricError("A and C must be finite and of the same length")
        x = design_matrix(_minmax(a_v, *self.a_range), _minmax(c_v, *self.c_range), self.kind)
        return x @ np.asarray(self.weights)

    def predict(self, a: Any, c: Any) -> np.ndarray:
        """Predicted benchmark score on the benchmark's own scale."""
        lo, hi = self.y_range
        return self.ac_score(a, c) * (hi - lo) + lo

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> "Law":
        """A law from its saved form, validated (keys, types, finite weights of the right count, ranges)."""
        if not isinstance(data, dict):
            raise LowMetricError(f"not a saved law: expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        if missing := sorted(required - set(data)):
            raise LowMetricError(f"not a saved law: missing {', '.join(missing)}")
        if extra := sorted(set(data) - names):
            raise LowMetricError(f"not a saved law: unknown key(s) {', '.join(extra)}")
        for key in ("r2", "n"):
            if isinstance(data[key], bool) or not isinstance(data[key], (int, float)) or not np.isfinite(data[key]):
                raise LowMetricError(f"not a saved law: {key} must be a finite number, got {data[key]!r}")
        if not isinstance(data.get("benchmark", ""), str) or not isinstance(data.get("names", []), list):
            raise LowMetricError("not a saved law: benchmark must be a string and names a list")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "Law":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LowMetricError(f"not a saved law: invalid JSON ({exc})") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Law":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LowMetricError(f"{path}: not a readable law file ({exc})") from None
        return cls.from_json(text)


def _solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares (minimum norm when under-determined)."""
    return np.linalg.lstsq(x, y, rcond=None)[0]


def _r2(y: np.ndarray, fitted: np.ndarray) -> float:
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - fitted) ** 2)) / ss_tot


def fit_law(
    a: Any,
    c: Any,
    y: Any,
    *,
    kind: str = "ac2",
    benchmark: str = "",
    names: list[str] | None = None,
    protocol_hash: str | None = None,
) -> Law:
    """Fit the law on representations with scores (A_j, C_j, y_j)."""
    y_v = as_vector(y, "y")
    a_v = as_vector(a, "A", length=len(y_v))
    c_v = as_vector(c, "C", length=len(y_v))
    need = n_params(kind)
    if len(y_v) < need:
        raise LowMetricError(f"the {kind} law has {need} parameters and needs at least {need} points, got {len(y_v)}")
    a_rng = _range(a_v, "A") if kind != "c" else (float(a_v.min()), float(a_v.min()) + 1.0)
    c_rng = _range(c_v, "C") if kind != "a" else (float(c_v.min()), float(c_v.min()) + 1.0)
    y_rng = _range(y_v, "y (benchmark score)")
    x = design_matrix(_minmax(a_v, *a_rng), _minmax(c_v, *c_rng), kind)
    y_n = _minmax(y_v, *y_rng)
    w = _solve(x, y_n)
    return Law(kind, w.tolist(), a_rng, c_rng, y_rng, _r2(y_n, x @ w), len(y_v), benchmark, list(names or []), protocol_hash)


def loo_errors(a: Any, c: Any, y: Any, *, kind: str = "ac2") -> np.ndarray:
    """Leave-one-out prediction errors (predicted - true, benchmark units) for each point.

    Each held-out point is predicted by a law fitted on the others, min/max from those others.
    (Taking min/max over all points, as the paper's scripts do, gives the same predictions: every
    law kind is a full polynomial with intercept, a family closed under affine rescaling.)
    """
    y_v = as_vector(y, "y")
    a_v, c_v = as_vector(a, "A", length=len(y_v)), as_vector(c, "C", length=len(y_v))
    if len(y_v) - 1 < n_params(kind):
        raise LowMetricError(f"leave-one-out of the {kind} law needs at least {n_params(kind) + 1} points, got {len(y_v)}")
    errors = np.empty(len(y_v))
    for i in range(len(y_v)):
        keep = np.arange(len(y_v)) != i
        errors[i] = fit_law(a_v[keep], c_v[keep], y_v[keep], kind=kind).predict(a_v[i], c_v[i])[0] - y_v[i]
    return errors
