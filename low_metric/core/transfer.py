"""Transfer calibration (SPEC.md section 4b): a user's (A, C) placed on the paper's scale.

Anchors are representations of the paper's table measured under the user's protocol. Per measure,
least squares over the anchors fits ``paper = alpha * own + beta`` (alpha > 0 required: a map that
reverses the order is refused); one map per benchmark for A (the paper has one A per benchmark),
one for C. A new encoder's own values are mapped, and the law fitted on all 13 released rows (its
min/max frozen) predicts each benchmark. The interval adds, in quadrature, the RMS of the
leave-one-anchor-out transfer errors (maps refitted without an anchor, that anchor mapped and
predicted, compared with the law at its paper values) and the law's own leave-one-out RMS error.
Mapped values outside the released rows' range are flagged as extrapolation.

Two other calibrations share the :class:`Calibration` form: ``identity`` (values measured under the
paper's own protocol: no maps, the released law directly) and ``refit`` (laws fitted on the anchors'
own values, for comparison; interval from their leave-one-out error, extrapolation beyond the
anchors' range).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from low_metric.core.checks import as_vector
from low_metric.core.errors import LowMetricError
from low_metric.core.law import KINDS, Law, fit_law, loo_errors, n_params

METHODS = ("transfer", "refit", "identity")
MIN_ANCHORS = {"transfer": 3, "refit": n_params("ac2") + 1}


@dataclass(frozen=True)
class AffineMap:
    """``paper = alpha * own + beta``."""

    alpha: float
    beta: float

    def __call__(self, x: Any) -> np.ndarray:
        return self.alpha * np.asarray(x, dtype=np.float64) + self.beta


IDENTITY = AffineMap(1.0, 0.0)


def _affine(own: np.ndarray, paper: np.ndarray, what: str) -> AffineMap:
    """Least-squares affine map, any sign (the leave-one-out refits use it as is)."""
    if np.ptp(own) <= 1e-12 * max(1.0, float(np.abs(own).max())):
        raise LowMetricError(f"{what}: the anchors' own values are all equal ({own[0]:g}): no map can be fitted")
    x = np.column_stack([own, np.ones_like(own)])
    alpha, beta = np.linalg.lstsq(x, paper, rcond=None)[0]
    return AffineMap(float(alpha), float(beta))


def fit_affine(own: Any, paper: Any, what: str = "map") -> AffineMap:
    """The map onto the paper's scale over the anchors; refused unless it keeps their order (alpha > 0)."""
    paper_v = as_vector(paper, f"{what} (paper values)")
    own_v = as_vector(own, f"{what} (own values)", length=len(paper_v))
    if len(own_v) < 2:
        raise LowMetricError(f"{what}: an affine map needs at least 2 anchors, got {len(own_v)}")
    m = _affine(own_v, paper_v, what)
    if not m.alpha > 0:
        raise LowMetricError(f"{what}: the anchors' own values reverse the paper's order (alpha = {m.alpha:.3g} <= 0): "
                             "refused; check the anchors' names and measurements")
    return m


@dataclass(frozen=True)
class Placement:
    """One encoder on the paper's scale: per benchmark, the law's inputs, AC, the prediction and its interval."""

    method: str
    mapped_a: dict[str, float]
    mapped_c: float
    ac: dict[str, float]
    predicted: dict[str, float]
    interval: dict[str, tuple[float, float]]
    extrapolation: dict[str, bool]

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "AC": dict(self.ac),
            "AC_mean": float(np.mean(list(self.ac.values()))),
            "predicted": dict(self.predicted),
            "interval": {b: [lo, hi] for b, (lo, hi) in self.interval.items()},
            "extrapolation": dict(self.extrapolation),
            "mapped": {"A": dict(self.mapped_a), "C": self.mapped_c},
        }


@dataclass(frozen=True)
class Calibration:
    """What turns own (A, C) into predicted benchmark scores: maps, laws, ranges and error sizes.

    ``a_per_benchmark``: True when A is one value per benchmark, False when one A serves all, None
    (identity) when either is accepted. ``a_ranges`` / ``c_range``: the range of the law's inputs
    it was fitted on. ``transfer_rmse`` and ``law_rmse``: the interval's two parts, benchmark units.
    """

    method: str
    benchmarks: tuple[str, ...]
    laws: dict[str, Law]
    a_maps: dict[str, AffineMap]
    c_map: AffineMap
    a_ranges: dict[str, tuple[float, float]]
    c_range: tuple[float, float]
    transfer_rmse: dict[str, float]
    law_rmse: dict[str, float]
    a_per_benchmark: bool | None
    anchor_errors: dict[str, list[float]]

    def half_width(self, benchmark: str) -> float:
        return math.hypot(self.transfer_rmse[benchmark], self.law_rmse[benchmark])

    def _own_a(self, a: Any) -> dict[str, float]:
        if isinstance(a, Mapping):
            if self.a_per_benchmark is False:
                raise LowMetricError("this calibration maps one A for all benchmarks: give a single A")
            missing = [b for b in self.benchmarks if b not in a]
            if missing:
                raise LowMetricError(f"A is missing for benchmark(s) {', '.join(missing)}")
            values = {b: a[b] for b in self.benchmarks}
        else:
            if self.a_per_benchmark:
                raise LowMetricError("this calibration maps one A per benchmark: give A for each of "
                                     f"{', '.join(self.benchmarks)}")
            values = dict.fromkeys(self.benchmarks, a)
        out = {}
        for b, v in values.items():
            try:
                out[b] = float(v)
            except (TypeError, ValueError):
                raise LowMetricError(f"A for {b}: {v!r} is not a number") from None
            if not math.isfinite(out[b]):
                raise LowMetricError(f"A for {b} is not finite ({v!r})")
        return out

    def place(self, a: Any, c: Any) -> Placement:
        """Map own A (a number, or {benchmark: number}) and C, then predict every benchmark."""
        own_a = self._own_a(a)
        c_v = as_vector([c], "C")[0]
        mapped_c = float(self.c_map(c_v))
        mapped_a, ac, predicted, interval, extrapolation = {}, {}, {}, {}, {}
        c_out = not _within(mapped_c, self.c_range)
        for b in self.benchmarks:
            mapped_a[b] = float(self.a_maps[b](own_a[b]))
            law = self.laws[b]
            ac[b] = float(law.ac_score(mapped_a[b], mapped_c)[0])
            predicted[b] = float(law.predict(mapped_a[b], mapped_c)[0])
            h = self.half_width(b)
            interval[b] = (predicted[b] - h, predicted[b] + h)
            extrapolation[b] = c_out or not _within(mapped_a[b], self.a_ranges[b])
        numbers = [*mapped_a.values(), mapped_c, *ac.values(), *predicted.values()]
        if not all(math.isfinite(x) for x in numbers):
            raise LowMetricError("the calibration gives a non-finite prediction for these values")
        return Placement(self.method, mapped_a, mapped_c, ac, predicted, interval, extrapolation)

    # ------------------------------------------------------------------ plain data (JSON)
    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "benchmarks": list(self.benchmarks),
            "a_per_benchmark": self.a_per_benchmark,
            "maps": {"A": {b: [m.alpha, m.beta] for b, m in self.a_maps.items()}, "C": [self.c_map.alpha, self.c_map.beta]},
            "laws": {b: {"kind": law.kind, "weights": list(law.weights), "a_range": list(law.a_range),
                         "c_range": list(law.c_range), "y_range": list(law.y_range), "r2": law.r2, "n": law.n,
                         "benchmark": law.benchmark, "names": list(law.names), "protocol_hash": law.protocol_hash}
                     for b, law in self.laws.items()},
            "ranges": {"A": {b: list(r) for b, r in self.a_ranges.items()}, "C": list(self.c_range)},
            "transfer_rmse": dict(self.transfer_rmse),
            "law_rmse": dict(self.law_rmse),
            "anchor_errors": {b: list(v) for b, v in self.anchor_errors.items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Rebuild and check a calibration read back: types, finite numbers, alpha > 0, weights per law."""
        d = _Reader(data, "calibration")
        method = d.choice("method", METHODS)
        benchmarks = tuple(d.strings("benchmarks"))
        if not benchmarks or len(set(benchmarks)) != len(benchmarks):
            raise LowMetricError("calibration: benchmarks must be a non-empty list of distinct names")
        per = d.get("a_per_benchmark")
        if per not in (True, False, None):
            raise LowMetricError("calibration: a_per_benchmark must be true, false or null")
        maps = d.mapping("maps")
        a_maps = {b: _map(maps.pair(("A", b))) for b in benchmarks}
        c_map = _map(maps.pair(("C",)))
        laws_d = d.mapping("laws")
        laws = {b: _law(laws_d.mapping(b), b) for b in benchmarks}
        ranges = d.mapping("ranges")
        a_ranges = {b: _interval(ranges.pair(("A", b)), f"ranges.A.{b}") for b in benchmarks}
        c_range = _interval(ranges.pair(("C",)), "ranges.C")
        transfer_rmse = {b: d.mapping("transfer_rmse").number(b, low=0.0) for b in benchmarks}
        law_rmse = {b: d.mapping("law_rmse").number(b, low=0.0) for b in benchmarks}
        errors = d.mapping("anchor_errors")
        anchor_errors = {b: errors.numbers(b) for b in benchmarks}
        return cls(method, benchmarks, laws, a_maps, c_map, a_ranges, c_range, transfer_rmse, law_rmse, per, anchor_errors)


def _within(x: float, bounds: tuple[float, float]) -> bool:
    """``x`` inside ``bounds``, up to rounding (an anchor mapped exactly onto an end stays inside)."""
    lo, hi = bounds
    slack = 1e-9 * max(hi - lo, abs(lo), abs(hi), 1e-12)
    return lo - slack <= x <= hi + slack


class _Reader:
    """Checked access to a JSON object read back; every failure is one line naming the key."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise LowMetricError(f"{where}: expected an object, got {type(data).__name__}")
        self.data, self.where = data, where

    def get(self, key: str) -> Any:
        if key not in self.data:
            raise LowMetricError(f"{self.where}: missing {key!r}")
        return self.data[key]

    def mapping(self, key: str) -> _Reader:
        return _Reader(self.get(key), f"{self.where}.{key}")

    def choice(self, key: str, choices: Sequence[str]) -> str:
        value = self.get(key)
        if value not in choices:
            raise LowMetricError(f"{self.where}.{key}: {value!r} is not one of {', '.join(choices)}")
        return value

    def strings(self, key: str) -> list[str]:
        value = self.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LowMetricError(f"{self.where}.{key}: expected a list of strings")
        return value

    def number(self, key: str, low: float | None = None) -> float:
        return _finite(self.get(key), f"{self.where}.{key}", low)

    def numbers(self, key: str) -> list[float]:
        value = self.get(key)
        if not isinstance(value, list):
            raise LowMetricError(f"{self.where}.{key}: expected a list of numbers")
        return [_finite(v, f"{self.where}.{key}[{i}]") for i, v in enumerate(value)]

    def pair(self, path: tuple[str, ...]) -> tuple[list[float], str]:
        node: _Reader | Any = self
        for key in path[:-1]:
            node = node.mapping(key)
        where = f"{node.where}.{path[-1]}"
        value = node.get(path[-1])
        if not isinstance(value, list) or len(value) != 2:
            raise LowMetricError(f"{where}: expected two numbers")
        return [_finite(v, where) for v in value], where


def _finite(value: Any, where: str, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LowMetricError(f"{where}: expected a finite number, got {value!r}")
    if low is not None and value < low:
        raise LowMetricError(f"{where}: must be >= {low:g}, got {value!r}")
    return float(value)


def _map(pair: tuple[list[float], str]) -> AffineMap:
    (alpha, beta), where = pair
    if not alpha > 0:
        raise LowMetricError(f"{where}: alpha must be > 0 (a map that reverses the order is refused), got {alpha:g}")
    return AffineMap(alpha, beta)


def _interval(pair: tuple[list[float], str], where: str) -> tuple[float, float]:
    (lo, hi), _ = pair
    if not lo <= hi:
        raise LowMetricError(f"{where}: expected [low, high], got [{lo:g}, {hi:g}]")
    return lo, hi


def _law(d: _Reader, benchmark: str) -> Law:
    kind = d.choice("kind", KINDS)
    weights = d.numbers("weights")
    if len(weights) != n_params(kind):
        raise LowMetricError(f"{d.where}.weights: the {kind} law has {n_params(kind)} weights, got {len(weights)}")
    ranges = []
    for key in ("a_range", "c_range", "y_range"):
        (lo, hi), where = d.pair((key,))
        if not hi > lo:
            raise LowMetricError(f"{where}: expected low < high, got [{lo:g}, {hi:g}]")
        ranges.append((lo, hi))
    n = d.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise LowMetricError(f"{d.where}.n: expected a positive whole number")
    names = d.strings("names")
    protocol = d.get("protocol_hash")
    if protocol is not None and not isinstance(protocol, str):
        raise LowMetricError(f"{d.where}.protocol_hash: expected a string or null")
    if d.get("benchmark") != benchmark:
        raise LowMetricError(f"{d.where}.benchmark: expected {benchmark!r}")
    return Law(kind, weights, ranges[0], ranges[1], ranges[2], d.number("r2"), n, benchmark, names, protocol)


# ---------------------------------------------------------------------------------------- fitting
def _released_laws(paper_a: Mapping[str, np.ndarray], paper_c: np.ndarray, paper_y: Mapping[str, np.ndarray],
                   names: Sequence[str]) -> tuple[dict[str, Law], dict[str, float]]:
    """Each benchmark's law on all released rows, and its leave-one-out RMS error (benchmark units)."""
    laws, rmse = {}, {}
    for b, y in paper_y.items():
        laws[b] = fit_law(paper_a[b], paper_c, y, benchmark=b, names=list(names))
        rmse[b] = float(np.sqrt(np.mean(loo_errors(paper_a[b], paper_c, y) ** 2)))
    return laws, rmse


def _released_ranges(paper_a: Mapping[str, np.ndarray], paper_c: np.ndarray, benchmarks: Sequence[str]):
    return ({b: (float(paper_a[b].min()), float(paper_a[b].max())) for b in benchmarks},
            (float(paper_c.min()), float(paper_c.max())))


def identity_calibration(paper_a: Mapping[str, np.ndarray], paper_c: Any, paper_y: Mapping[str, np.ndarray],
                         names: Sequence[str] = ()) -> Calibration:
    """The paper's own protocol: no maps, the law on the released rows, its leave-one-out error as interval."""
    paper_c = as_vector(paper_c, "C")
    benchmarks = tuple(paper_y)
    laws, law_rmse = _released_laws(paper_a, paper_c, paper_y, names)
    a_ranges, c_range = _released_ranges(paper_a, paper_c, benchmarks)
    zeros = dict.fromkeys(benchmarks, 0.0)
    return Calibration("identity", benchmarks, laws, dict.fromkeys(benchmarks, IDENTITY), IDENTITY, a_ranges, c_range,
                       zeros, law_rmse, None, {b: [] for b in benchmarks})


def _own_a_columns(own_a: Any, benchmarks: Sequence[str], n: int) -> tuple[dict[str, np.ndarray], bool]:
    if isinstance(own_a, Mapping):
        missing = [b for b in benchmarks if b not in own_a]
        if missing:
            raise LowMetricError(f"anchors: A is missing for benchmark(s) {', '.join(missing)}")
        return {b: as_vector(own_a[b], f"A_{b} of the anchors", length=n) for b in benchmarks}, True
    a = as_vector(own_a, "A of the anchors", length=n)
    return dict.fromkeys(benchmarks, a), False


def fit_transfer(own_a: Any, own_c: Any, rows: Sequence[int], paper_a: Mapping[str, np.ndarray], paper_c: Any,
                 paper_y: Mapping[str, np.ndarray], names: Sequence[str] = ()) -> Calibration:
    """Transfer calibration from anchors: ``rows[j]`` is anchor j's row of the released table; ``own_a``
    one A per anchor or {benchmark: one per anchor}; ``own_c`` one C per anchor."""
    paper_c = as_vector(paper_c, "C of the released rows")
    rows = [int(r) for r in rows]
    n = len(rows)
    if len(set(rows)) != n:
        raise LowMetricError("anchors: a representation appears twice")
    if n < MIN_ANCHORS["transfer"]:
        raise LowMetricError(f"transfer calibration needs at least {MIN_ANCHORS['transfer']} anchors "
                             f"(leave-one-anchor-out refits its maps on the others), got {n}")
    benchmarks = tuple(paper_y)
    own_c = as_vector(own_c, "C of the anchors", length=n)
    own, per_benchmark = _own_a_columns(own_a, benchmarks, n)
    laws, law_rmse = _released_laws(paper_a, paper_c, paper_y, names)
    a_maps = {b: fit_affine(own[b], paper_a[b][rows], f"A map ({b})") for b in benchmarks}
    c_map = fit_affine(own_c, paper_c[rows], "C map")
    errors: dict[str, list[float]] = {b: [] for b in benchmarks}
    for j in range(n):
        keep = np.arange(n) != j
        kept = [rows[i] for i in np.flatnonzero(keep)]
        cj = _affine(own_c[keep], paper_c[kept], "C map")(own_c[j])
        for b in benchmarks:
            aj = _affine(own[b][keep], paper_a[b][kept], f"A map ({b})")(own[b][j])
            truth = laws[b].predict(paper_a[b][rows[j]], paper_c[rows[j]])[0]
            errors[b].append(float(laws[b].predict(aj, cj)[0] - truth))
    transfer_rmse = {b: float(np.sqrt(np.mean(np.square(e)))) for b, e in errors.items()}
    a_ranges, c_range = _released_ranges(paper_a, paper_c, benchmarks)
    return Calibration("transfer", benchmarks, laws, a_maps, c_map, a_ranges, c_range, transfer_rmse, law_rmse,
                       per_benchmark, errors)


def fit_refit(own_a: Any, own_c: Any, rows: Sequence[int], paper_y: Mapping[str, np.ndarray],
              names: Sequence[str] = ()) -> Calibration:
    """The comparison method: each benchmark's law refitted on the anchors' own (A, C) against the
    paper's scores; interval from its leave-one-anchor-out error, extrapolation beyond the anchors."""
    rows = [int(r) for r in rows]
    n = len(rows)
    if n < MIN_ANCHORS["refit"]:
        raise LowMetricError(f"refitting the law needs at least {MIN_ANCHORS['refit']} anchors "
                             f"(6 parameters and a leave-one-out check), got {n}")
    benchmarks = tuple(paper_y)
    own_c = as_vector(own_c, "C of the anchors", length=n)
    own, per_benchmark = _own_a_columns(own_a, benchmarks, n)
    laws, rmse, errors = {}, {}, {}
    for b in benchmarks:
        y = paper_y[b][rows]
        laws[b] = fit_law(own[b], own_c, y, benchmark=b, names=list(names))
        loo = loo_errors(own[b], own_c, y)
        errors[b], rmse[b] = loo.tolist(), float(np.sqrt(np.mean(loo**2)))
    a_ranges = {b: (float(own[b].min()), float(own[b].max())) for b in benchmarks}
    c_range = (float(own_c.min()), float(own_c.max()))
    zeros = dict.fromkeys(benchmarks, 0.0)
    return Calibration("refit", benchmarks, laws, dict.fromkeys(benchmarks, IDENTITY), IDENTITY, a_ranges, c_range,
                       zeros, rmse, per_benchmark, errors)
