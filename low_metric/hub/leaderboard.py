"""The shared results dataset (pure: layout, rows, its card, reading back, export).

Layout: one JSON Lines file per encoder and protocol, ``results/<org>--<name>/<protocol_hash>.jsonl``,
holding one flat row of a fixed schema (:data:`FEATURES`): the headline numbers as columns and the
full record as a JSON string. Every file has the same columns and types whatever library the encoder
comes from, so ``datasets.load_dataset`` (and the Hub's Dataset Viewer, which uses it) reads the whole
dataset; the card declares the files and the schema (``configs``, ``dataset_info``). Concurrent
publishers never touch the same file. Rows read back are checked against their record, whose
protocol hash is recomputed: a row is never trusted.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from low_metric.core.errors import LowMetricError
from low_metric.scoring.results import check_record, write_text_atomic

RESULTS_DIR = "results"
DATA_FILES = f"{RESULTS_DIR}/*/*.jsonl"
LICENSE = "apache-2.0"  # the numbers carry low_metric's own licence
FEATURES = {  # column -> datasets dtype; A, C, AC and mode may be null (not measured / no calibration)
    "encoder": "string", "revision": "string", "A": "float64", "C": "float64", "AC": "float64", "mode": "string",
    "data": "string", "library": "string", "protocol_hash": "string", "low_metric": "string", "timestamp": "timestamp[s, tz=UTC]",
    "record": "string",
}
COLUMNS = tuple(c for c in FEATURES if c != "record") + ("path",)  # what tables and exports show
_RUN_ONLY = ("counts",)  # how a run went, not what it found: differs between equal results


def result_path(record: dict[str, Any]) -> str:
    """Where a record lives in the dataset: ``results/<org>--<name>/<protocol_hash>.jsonl``."""
    encoder = (record.get("encoder_protocol") or {}).get("id") or record.get("encoder")
    digest = record.get("protocol_hash")
    if not encoder or not digest:
        raise LowMetricError(f"{record.get('encoder')}: not a low_metric result (no encoder id or protocol hash)")
    folder = re.sub(r"[^A-Za-z0-9._+-]", "_", encoder.replace("/", "--"))
    return f"{RESULTS_DIR}/{folder}/{digest}.jsonl"


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _utc(timestamp: str) -> str:
    """An ISO 8601 time as ``YYYY-MM-DDTHH:MM:SSZ`` (what the ``timestamp`` column reads as UTC)."""
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise LowMetricError(f"{timestamp!r} is not an ISO 8601 time") from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_row(record: dict[str, Any], published: str) -> dict[str, Any]:
    """The flat row of a checked record; ``timestamp`` is when it was scored (its ``environment``), or for
    a record older than that, ``published`` (ISO 8601)."""
    kept = {k: v for k, v in record.items() if k not in _RUN_ONLY}
    encoder = record["encoder_protocol"]
    data = record["protocol"].get("data") or {}
    return {
        "encoder": encoder.get("id") or record["encoder"],
        "revision": encoder.get("revision"),
        "A": _number(record["A"]["A"]) if "A" in record else None,
        "C": _number(record["C"]["C"]) if "C" in record else None,
        "AC": _number(record["AC"]["AC_mean"]) if "AC" in record else None,
        "mode": record["A"]["mode"] if "A" in record else None,
        "data": (data.get("pairs") or data.get("images") or {}).get("source"),
        "library": encoder.get("library"),
        "protocol_hash": record["protocol_hash"],
        "low_metric": record["protocol"].get("low_metric"),
        "timestamp": _utc((record.get("environment") or {}).get("timestamp") or published),
        "record": json.dumps(kept, sort_keys=True, separators=(",", ":")),
    }


def row_file(row: dict[str, Any]) -> str:
    """The text of a row's file: one JSON line."""
    return json.dumps(row, sort_keys=False, separators=(",", ":")) + "\n"


def same_result(old_text: str | None, row: dict[str, Any]) -> bool:
    """Whether a dataset file already holds ``row`` (whatever its timestamp): publishing it again changes nothing."""
    try:
        old = json.loads(old_text or "null")
    except json.JSONDecodeError:
        return False
    return isinstance(old, dict) and {k: v for k, v in old.items() if k != "timestamp"} == \
        {k: v for k, v in row.items() if k != "timestamp"}


def parse_row_file(path: str, text: str) -> dict[str, Any]:
    """The row of a dataset file, checked: the fixed schema, a record that checks (its protocol hash
    recomputed, every number finite) and whose columns are the row's; ``path`` added. Raises
    LowMetricError naming what is wrong."""
    try:
        (line,) = [line for line in text.splitlines() if line.strip()]
        row = json.loads(line)
        record = json.loads(row["record"])
    except (ValueError, TypeError, KeyError):
        raise LowMetricError(f"{path}: not a low_metric results row (one JSON line with a record)") from None
    if not isinstance(row, dict) or set(row) != set(FEATURES):
        raise LowMetricError(f"{path}: its columns are not the results dataset's")
    if record_row(check_record(record, path), row["timestamp"]) != row:
        raise LowMetricError(f"{path}: its columns disagree with its record")
    if path != result_path(record):
        raise LowMetricError(f"{path}: not where its record belongs ({result_path(record)})")
    return row | {"path": path}


def dataset_card(dataset_id: str, existing: str | None = None) -> str:
    """README of a results dataset (``huggingface_hub.DatasetCardData``): the data files and their schema
    (``configs``, ``dataset_info``), so the Viewer and ``datasets.load_dataset`` read it, a licence and a
    name. An ``existing`` card keeps everything else (its text, licence, name, other metadata), and is
    returned as it is when it already declares this schema."""
    from huggingface_hub import DatasetCard, DatasetCardData

    configs = [{"config_name": "default", "data_files": [{"split": "train", "path": DATA_FILES}]}]
    info = {"config_name": "default", "features": [{"name": name, "dtype": dtype} for name, dtype in FEATURES.items()]}
    if existing is not None:
        try:
            card = DatasetCard(existing)
        except ValueError:
            card = None
        if card is not None:
            data = card.data.to_dict()
            if data.get("configs") == configs and data.get("dataset_info") == info:
                return existing
            card.data.configs, card.data.dataset_info = configs, info
            card.data.license = card.data.license or LICENSE
            card.data.pretty_name = card.data.pretty_name or f"low_metric results: {dataset_id}"
            return str(card)
    data = DatasetCardData(license=LICENSE, pretty_name=f"low_metric results: {dataset_id}",
                           tags=["low_metric", "vision-encoders"], configs=configs, dataset_info=info)
    body = (
        f"# {dataset_id}\n\n"
        "A and C scores of vision encoders (after \"Law of Vision Representation in MLLMs\", arXiv 2408.16357), "
        "published by low_metric; AC where a calibration was applied.\n\n"
        f"One file per encoder and protocol, `{RESULTS_DIR}/<org>--<name>/<protocol_hash>.jsonl`: one row with "
        f"the columns {', '.join(f'`{c}`' for c in FEATURES)} (`record`: the full result and its protocol, as "
        "JSON). Only rows with equal `protocol_hash` are comparable.\n\n"
        f"```python\nfrom datasets import load_dataset\nrows = load_dataset(\"{dataset_id}\", split=\"train\")\n```\n"
    )
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}"))


def merge_results(files: Mapping[str, str]) -> list[dict[str, Any]]:
    """One checked row per dataset file ({path: text}), grouped by protocol, best AC (else C) first.

    Files that do not check are skipped with a warning naming the problem.
    """
    rows = []
    for path, text in files.items():
        try:
            rows.append(parse_row_file(path, text))
        except LowMetricError as e:
            warnings.warn(f"{e}; skipped", stacklevel=2)
    return sorted(rows, key=lambda r: (r["protocol_hash"], -(r["AC"] if r["AC"] is not None else -1e9),
                                       -(r["C"] if r["C"] is not None else -1e9), r["encoder"]))


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as aligned text, one block per protocol (only rows of one protocol compare)."""
    blocks: dict[str, list[str]] = {}
    for r in rows:
        block = blocks.setdefault(r["protocol_hash"], [
            f"protocol {r['protocol_hash'][:12]} (low_metric {r['low_metric']}, {r['data']})",
            f"{'encoder':<48}{'A':>9}{'C':>8}{'AC':>8}"])
        a, c, ac = (f"{r[k]:.{d}f}" if r[k] is not None else "-" for k, d in (("A", 4), ("C", 2), ("AC", 3)))
        block.append(f"{r['encoder']:<48}{a:>9}{c:>8}{ac:>8}")
    return "\n\n".join("\n".join(b) for b in blocks.values())


def write_table(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Export rows as CSV (``.csv``, the table's columns) or a JSON list (otherwise, records included), atomically."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    else:
        text = json.dumps(rows, indent=2) + "\n"
    return write_text_atomic(path, text)
