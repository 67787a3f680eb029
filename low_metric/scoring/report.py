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
    """Per benchmark: AC, the predicted score, its interval and whether it extrapolates (none without a calibration)."""
    ac = record.get("AC")
    if not ac:
        return []
    return [{"benchmark": b, "AC": round(ac["AC"][b], 3), "predicted score": round(y, 2),
             "interval": f"{ac['interval'][b][0]:.2f} to {ac['interval'][b][1]:.2f}",
             "extrapolation": "yes" if ac["extrapolation"][b] else "no"}
            for b, y in ac["predicted"].items()]


def paper_scale(record: dict[str, Any]) -> tuple[float, float] | None:
    """The record's (A, C) on the paper's scale: mapped A averaged over benchmarks (as the paper's
    points are), mapped C; None without a calibration."""
    ac = record.get("AC")
    if not ac:
        return None
    mapped = ac["mapped"]["A"]
    return sum(mapped.values()) / len(mapped), ac["mapped"]["C"]


def ac_note(record: dict[str, Any], calibration: dict[str, Any] | None) -> str:
    """Why a record has, or lacks, an AC score."""
    if "AC" in record:
        ac = record["AC"]
        outside = [b for b, flag in ac["extrapolation"].items() if flag]
        where = (f" Extrapolation (beyond the paper's 13 representations) on {', '.join(outside)}." if outside else "")
        return (f"AC: the law of the paper's 13 representations at this encoder's (A, C) mapped onto the paper's "
                f"scale ({ac['method']} calibration), about 0..1.{where}")
    if not calibration:
        return "AC needs a calibration onto the paper's scale: no calibration is configured."
    if "A" not in record or "C" not in record:
        return "AC needs both A and C: turn the A score on."
    return "AC needs a calibration made under the same protocol: these options differ from the calibration's."
