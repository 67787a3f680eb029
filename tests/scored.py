"""Real scored records for the publishing tests: the scorer run on tiny encoders served by the Hub double."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from low_metric.scoring.calibration import build_calibration, predict
from low_metric.scoring.scorer import ScoreConfig, score_encoders
from low_metric.sources.tables import paper_table

TRANSFORMER_ANCHORS = ("CLIP336", "CLIP224", "OpenCLIP", "DINOv2", "SigLIP", "CLIP224+DINOv2", "CLIP336+DINOv2")

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


def calibration_for(protocol: dict[str, Any]) -> dict[str, Any]:
    """A transfer calibration under ``protocol`` whose anchors are the paper's 7 transformer representations
    with their own values (mean A, C) taken as measured (plumbing, not science)."""
    table = paper_table()
    anchors = {n: {"A": float(table.mean_a[table.names.index(n)]), "C": float(table.c[table.names.index(n)])}
               for n in TRANSFORMER_ANCHORS}
    return build_calibration(anchors, protocol=protocol)


def with_ac(record: dict[str, Any]) -> dict[str, Any]:
    """The record with AC and predicted scores, from a calibration made under its protocol."""
    out = copy.deepcopy(record)
    out["AC"] = predict(out, calibration_for(record["protocol"]))
    return out
