"""Real scored records for the publishing tests: the scorer run on tiny encoders served by the Hub double."""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any

from low_metric.core.law import fit_law
from low_metric.scoring.calibration import predict
from low_metric.scoring.scorer import ScoreConfig, score_encoders
from low_metric.sources.tables import paper_table

OTHER_CARD = """---
license: apache-2.0
tags:
- vision
model-index:
- name: someone-vit
  results:
  - task:
      type: image-classification
      name: Image Classification
    dataset:
      name: ImageNet-1k
      type: imagenet-1k
      split: validation
    metrics:
    - type: accuracy
      value: 81.2
      name: Top-1 accuracy
    source:
      name: Their paper
      url: https://example.org/paper
---
# someone-vit

A card written by someone else: this body must survive.
"""


def score(names: list[str], reference: str, cache: Path, **options: Any) -> list[dict[str, Any]]:
    """Records of ``names`` on the built-in mini benchmark, one reference, a shared feature cache."""
    return score_encoders(names, ScoreConfig(references=(reference,), cache_dir=str(cache), **options))


def with_ac(record: dict[str, Any]) -> dict[str, Any]:
    """The record with AC and predicted scores, from laws fitted on the paper's table under its protocol."""
    table = paper_table()
    laws = {b: asdict(fit_law(*table.benchmark(b), benchmark=b, protocol_hash=record["protocol_hash"]))
            for b in table.benchmarks}
    out = copy.deepcopy(record)
    out["AC"] = predict(out, {"protocol_hash": record["protocol_hash"], "laws": laws})
    return out
