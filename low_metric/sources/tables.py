"""Tables of representations with (A per benchmark, C, benchmark scores): the paper's, or the user's.

The paper's table (``data/paper_table.csv``, see ``data/README.md`` for provenance) has one row per
representation, the 8 benchmark scores, ``A_<benchmark>`` for each, and ``C``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from low_metric.core.errors import LowMetricError
from low_metric.sources.files import read_text

PAPER_BENCHMARKS = (
    "mmbench_en",
    "mme",
    "mmmu_val",
    "ok_vqa",
    "textvqa_val",
    "vizwiz_vqa_val",
    "scienceqa_img",
    "seed_image",
)


@dataclass(frozen=True)
class Table:
    """Representations with their C, A per benchmark and benchmark scores."""

    names: list[str]
    c: np.ndarray
    a: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]

    @property
    def benchmarks(self) -> list[str]:
        return list(self.scores)

    @property
    def mean_a(self) -> np.ndarray:
        """Each representation's A averaged over the benchmarks (one point per representation)."""
        return np.mean([self.a[b] for b in self.benchmarks], axis=0)

    def benchmark(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A, C, y) of one benchmark."""
        if name not in self.scores:
            raise LowMetricError(f"unknown benchmark {name!r}; the table has {', '.join(self.scores)}")
        return self.a[name], self.c, self.scores[name]


def parse_table(text: str, source: str = "table") -> Table:
    """A table from CSV text with columns representation, C, <benchmark>, A_<benchmark>."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise LowMetricError(f"{source}: no rows")
    cols = rows[0].keys()
    missing = {"representation", "C"} - set(cols)
    if missing:
        raise LowMetricError(f"{source}: missing column(s) {', '.join(sorted(missing))}")
    benchmarks = [b[2:] for b in cols if b.startswith("A_") and b[2:] in cols]
    if not benchmarks:
        raise LowMetricError(f"{source}: no benchmark with both <name> and A_<name> columns")

    def column(name: str) -> np.ndarray:
        try:
            return np.array([float(r[name]) for r in rows])
        except (TypeError, ValueError):
            raise LowMetricError(f"{source}: column {name} has a non-numeric value") from None

    return Table(
        [r["representation"] for r in rows],
        column("C"),
        {b: column(f"A_{b}") for b in benchmarks},
        {b: column(b) for b in benchmarks},
    )


def paper_table() -> Table:
    """The 13 representations of Yang et al. (arXiv 2408.16357), shipped with the package."""
    text = resources.files("low_metric").joinpath("data/paper_table.csv").read_text()
    return parse_table(text, "paper table")


def load_table(name_or_path: str) -> Table:
    """``"paper"`` for the shipped table, or the path of a CSV of the same layout."""
    if name_or_path == "paper":
        return paper_table()
    path = Path(name_or_path)
    if not path.exists():
        raise LowMetricError(f"table {name_or_path!r}: no such file (use 'paper' for the paper's table)")
    return parse_table(read_text(path, "CSV table"), str(path))
