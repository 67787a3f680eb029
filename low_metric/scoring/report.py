"""A scored record as the tables a person reads (the CLI prints them, the Space shows them)."""

from __future__ import annotations

from typing import Any


def headline(record: dict[str, Any]) -> dict[str, Any]:
    """Encoder, A, C and mean AC of a record (None where not measured or not calibrated)."""
    return {"encoder": record["encoder"], "A": record["A"]["A"] if "A" in record else None,
            "C": record["C"]["C"] if "C" in record else None,
            "AC": record["AC"]["AC_mean"] if "AC" in record else None}


def category_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-category correspondence table: pairs, keypoints and PCK (%) at each alpha."""
    return [{"category": cat, "pairs": v["pairs"], "keypoints": v["keypoints"],
             **{k.upper(): round(x, 2) for k, x in v.items() if k.startswith("pck@")}}
            for cat, v in record["C"]["per_category"].items()]


def prediction_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """AC and the predicted score per benchmark (none without a calibration)."""
    ac = record.get("AC")
    if not ac:
        return []
    return [{"benchmark": b, "AC": round(ac["AC"][b], 3), "predicted score": round(y, 2)}
            for b, y in ac["predicted"].items()]


def ac_note(record: dict[str, Any], calibration: dict[str, Any] | None) -> str:
    """Why a record has, or lacks, an AC score."""
    if "AC" in record:
        return "AC: the law's prediction, relative to the calibration's representations (about 0..1)."
    if not calibration:
        return "AC needs a law fitted under the same protocol: no calibration is configured."
    if "A" not in record or "C" not in record:
        return "AC needs both A and C: turn the A score on."
    return "AC needs a law fitted under the same protocol: these options differ from the calibration's."
