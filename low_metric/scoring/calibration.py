"""Placing encoders on the law: fit per-benchmark laws on the paper's representations scored under
the current protocol, then predict benchmark scores for any encoder scored the same way."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from low_metric.core.errors import LowMetricError
from low_metric.core.law import Law, fit_law
from low_metric.scoring.results import CALIBRATION_FORMAT, VERSION
from low_metric.sources.tables import Table, paper_table

# The paper's representations and their Hub ids (LLaVA vision towers; diffusers pipelines).
PAPER_ENCODERS = {
    "CLIP224": "openai/clip-vit-large-patch14",
    "CLIP336": "openai/clip-vit-large-patch14-336",
    "OpenCLIP": "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
    "DINOv2": "facebook/dinov2-large",
    "SigLIP": "google/siglip-base-patch16-224",
    "CLIP224+DINOv2": "openai/clip-vit-large-patch14+facebook/dinov2-large",
    "CLIP336+DINOv2": "openai/clip-vit-large-patch14-336+facebook/dinov2-large",
    "SDim": "lambdalabs/sd-image-variations-diffusers",
    "SD1.5": "runwayml/stable-diffusion-v1-5",
    "SD2.1": "stabilityai/stable-diffusion-2-1",
    "SDXL": "stabilityai/stable-diffusion-xl-base-1.0",
    "DiT": "facebook/DiT-XL-2-512",
    "SD3": "stabilityai/stable-diffusion-3-medium-diffusers",
}


def _ac(record: dict[str, Any]) -> tuple[float, float]:
    if "A" not in record or "C" not in record:
        raise LowMetricError(f"{record.get('encoder')}: the law needs both A and C; score with alignment and correspondence on")
    return float(record["A"]["A"]), float(record["C"]["C"])


def calibrate(records: dict[str, dict[str, Any]], table: Table | None = None) -> dict[str, Any]:
    """A calibration: one law per benchmark, fitted on {paper name: scored record}."""
    table = table or paper_table()
    hashes = {r["protocol_hash"] for r in records.values()}
    if len(hashes) != 1:
        raise LowMetricError("calibration records were scored under different protocols")
    unknown = sorted(set(records) - set(table.names))
    if unknown:
        raise LowMetricError(f"not in the paper's table: {', '.join(unknown)}")
    names = [n for n in table.names if n in records]
    a, c = np.array([_ac(records[n]) for n in names]).T
    rows = [table.names.index(n) for n in names]
    (protocol_hash,) = hashes
    laws = {
        b: asdict(fit_law(a, c, table.scores[b][rows], benchmark=b, names=names, protocol_hash=protocol_hash))
        for b in table.benchmarks
    }
    return {
        "format": CALIBRATION_FORMAT,
        "low_metric": VERSION,
        "protocol_hash": protocol_hash,
        "protocol": next(iter(records.values()))["protocol"],
        "representations": {n: {"encoder": records[n]["encoder"], "A": float(x), "C": float(y)} for n, x, y in zip(names, a, c)},
        "laws": laws,
    }


def laws_of(calibration: dict[str, Any]) -> dict[str, Law]:
    return {b: Law.from_dict(d) for b, d in calibration["laws"].items()}


def predict(record: dict[str, Any], calibration: dict[str, Any]) -> dict[str, Any]:
    """AC scores and predicted benchmark scores of one scored encoder; refuses another protocol."""
    if record.get("protocol_hash") != calibration["protocol_hash"]:
        raise LowMetricError(
            f"{record.get('encoder')}: protocol hash {str(record.get('protocol_hash'))[:12]} differs from the "
            f"calibration's {calibration['protocol_hash'][:12]}: score it with the calibration's settings"
        )
    a, c = _ac(record)
    laws = laws_of(calibration)
    ac = {b: float(law.ac_score(a, c)[0]) for b, law in laws.items()}
    return {
        "AC": ac,
        "AC_mean": float(np.mean(list(ac.values()))),
        "predicted": {b: float(law.predict(a, c)[0]) for b, law in laws.items()},
        "calibration_protocol_hash": calibration["protocol_hash"],
    }


def matches(record: dict[str, Any], calibration: dict[str, Any] | None) -> bool:
    """Whether ``calibration`` applies to ``record``: both A and C measured, under its protocol."""
    return bool(calibration) and "A" in record and "C" in record and \
        record.get("protocol_hash") == calibration["protocol_hash"]
