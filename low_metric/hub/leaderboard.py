"""The shared results dataset (pure: layout, file contents, merging, export).

Layout: one file per encoder and protocol, ``results/<org>--<name>/<protocol_hash>.json``, each a
``low_metric.results/1`` file holding that one record (without its run counters), so concurrent
publishers never touch the same file and any file reads back with ``low-metric predict``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from low_metric.core.errors import LowMetricError
from low_metric.scoring.results import RESULTS_FORMAT, write_text_atomic

RESULTS_DIR = "results"
COLUMNS = ("encoder", "revision", "A", "C", "AC", "mode", "data", "protocol_hash", "low_metric", "path")
_RUN_ONLY = ("counts",)  # how a run went, not what it found: differs between equal results


def result_path(record: dict[str, Any]) -> str:
    """Where a record lives in the dataset: ``results/<org>--<name>/<protocol_hash>.json``."""
    encoder = (record.get("encoder_protocol") or {}).get("id") or record.get("encoder")
    digest = record.get("protocol_hash")
    if not encoder or not digest:
        raise LowMetricError(f"{record.get('encoder')}: not a low_metric result (no encoder id or protocol hash)")
    folder = re.sub(r"[^A-Za-z0-9._+-]", "_", encoder.replace("/", "--"))
    return f"{RESULTS_DIR}/{folder}/{digest}.json"


def result_file(record: dict[str, Any]) -> str:
    """The text of a record's dataset file; equal results give equal text."""
    kept = {k: v for k, v in record.items() if k not in _RUN_ONLY}
    return json.dumps({"format": RESULTS_FORMAT, "results": [kept]}, indent=2, sort_keys=True) + "\n"


def dataset_card(dataset_id: str) -> str:
    """README of a new results dataset: what its files are and how to read them."""
    return (
        "---\ntags:\n- low_metric\n- vision-encoders\n---\n"
        f"# {dataset_id}\n\n"
        "A/C/AC scores of vision encoders (after \"Law of Vision Representation in MLLMs\", arXiv 2408.16357), "
        "published by low_metric.\n\n"
        "One file per encoder and protocol: `results/<org>--<name>/<protocol_hash>.json`, a "
        "`low_metric.results/1` file with one record and its full protocol. Only rows with equal "
        "`protocol_hash` are comparable.\n\n"
        f"```python\nfrom low_metric.hub.publish import read_leaderboard\nrows = read_leaderboard(\"{dataset_id}\")\n```\n"
    )


def _row(path: str, record: dict[str, Any]) -> dict[str, Any]:
    protocol = record.get("protocol") or {}
    data = protocol.get("data") or {}
    source = (data.get("pairs") or data.get("images") or {}).get("source")
    return {
        "encoder": (record.get("encoder_protocol") or {}).get("id") or record["encoder"],
        "revision": (record.get("encoder_protocol") or {}).get("revision"),
        "A": record["A"]["A"] if "A" in record else None,
        "C": record["C"]["C"] if "C" in record else None,
        "AC": record["AC"]["AC_mean"] if "AC" in record else None,
        "mode": record["A"]["mode"] if "A" in record else None,
        "data": source,
        "protocol_hash": record["protocol_hash"],
        "low_metric": protocol.get("low_metric"),
        "path": path,
    }


def merge_results(files: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per dataset file ({path: parsed JSON}), grouped by protocol, best AC (else C) first.

    Files that are not low_metric results files are skipped with a warning.
    """
    rows = []
    for path, data in files.items():
        try:
            (record,) = data["results"]
            if data.get("format") != RESULTS_FORMAT:
                raise ValueError
            rows.append(_row(path, record))
        except (KeyError, TypeError, ValueError):
            warnings.warn(f"{path}: not a {RESULTS_FORMAT} file with one record; skipped", stacklevel=2)
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
    """Export rows as CSV (``.csv``) or a JSON list (otherwise), written atomically."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    else:
        text = json.dumps(rows, indent=2) + "\n"
    return write_text_atomic(path, text)
