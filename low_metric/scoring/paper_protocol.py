"""The paper's protocol as a preset (``low-metric score --protocol paper``): the settings under which
the released law applies directly, with no transfer calibration.

A in projector mode on the first 100 images lmms-eval feeds each of the 8 benchmarks, one A per
benchmark, against CLIP@224 and CLIP@336 through their released stage-1 projectors; C on the
SPair-71k test split with SPEC 3's settings. Results carry ``"preset": "paper"`` in their protocol.
"""

from __future__ import annotations

from dataclasses import replace

from low_metric.core.errors import LowMetricError
from low_metric.scoring.calibration import paper_projectors
from low_metric.scoring.scorer import DEFAULT_REFERENCES, ScoreConfig
from low_metric.sources.paper import PAPER_BENCHMARK_IMAGES

PAPER_C = {"patch": 16, "window": 5, "temperature": 0.02, "layer": -2}


def paper_config(config: ScoreConfig, *, dtype: str = "bfloat16") -> ScoreConfig:
    """``config`` under the paper's protocol (the official code ran in bf16); refuses settings that
    would leave it. Projectors: the paper's stage-1 checkpoints, unless ``config`` names its own."""
    if not (config.alignment and config.correspondence):
        raise LowMetricError("--protocol paper measures both A and C (drop --no-alignment / --no-correspondence)")
    if not config.spair:
        raise LowMetricError("--protocol paper measures C on SPair-71k: give its root with --spair")
    if config.split != "test" or config.limit is not None or config.categories is not None:
        raise LowMetricError("--protocol paper uses the whole SPair-71k test split (no --split, --limit or --category)")
    if config.images or config.dataset or config.count is not None:
        raise LowMetricError("--protocol paper fixes the A images (lmms-eval's first 100 per benchmark): "
                             "no --images, --dataset or --count")
    if config.references != DEFAULT_REFERENCES:
        raise LowMetricError("--protocol paper's references are CLIP@224 and CLIP@336 (no --reference)")
    changed = [k for k, v in PAPER_C.items() if getattr(config, k) != v]
    if changed or config.resolution is not None:
        raise LowMetricError(f"--protocol paper fixes {', '.join(changed or ['resolution'])} "
                             "(P 16, window 5, temperature 0.02, layer -2, native resolution)")
    return replace(config, mode="projector", benchmark_images=PAPER_BENCHMARK_IMAGES, preset="paper", dtype=dtype,
                   projectors={**paper_projectors(), **config.projectors})
