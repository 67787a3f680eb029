"""The built-in mini benchmark: real photographs in SPair-71k layout, shipped inside the package.

56 test pairs, 57 images: ``face`` (16 pairs, 8 images; cross-identity, 68 iBUG landmarks),
``homography`` (36 pairs, 45 images; known random homographies and photometric changes) and
``graffiti`` (4 pairs, 4 images; the real graf1/graf3 viewpoint change). Sources, licences and
processing of every image: ``low_metric/data/mini/SOURCES.md``; generator:
``scripts/build_mini_benchmark.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

from low_metric.core.errors import LowMetricError
from low_metric.sources.images import ImageSet
from low_metric.sources.spair import SpairSet, load_spair


def mini_benchmark_root() -> Path:
    """The folder of the mini benchmark inside the installed package."""
    root = files("low_metric").joinpath("data", "mini")
    if not isinstance(root, Path) or not (root / "PairAnnotation").is_dir():
        raise LowMetricError(f"mini benchmark not found on disk at {root} (package data missing?)")
    return root


def load_mini(split: str = "test", categories: Sequence[str] | None = None, limit: int | None = None) -> SpairSet:
    """The mini benchmark through the SPair-71k loader (same code path as the real data)."""
    return load_spair(mini_benchmark_root(), split=split, categories=categories, limit=limit)


def mini_images() -> ImageSet:
    """The mini benchmark's distinct images, for the A score."""
    return ImageSet.from_files(load_mini().images)
