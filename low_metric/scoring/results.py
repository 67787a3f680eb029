"""Results files: one JSON record per encoder with its full protocol, written atomically."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from low_metric.core.errors import LowMetricError
from low_metric.sources.files import read_text


def _version() -> str:
    """The package version recorded in every protocol: a copy's stamp (a Space carries the library as
    source, stamped by ``low_metric.hub.spaces``), else the installed metadata."""
    stamp = Path(__file__).resolve().parents[1] / "VERSION"
    if stamp.is_file():
        return stamp.read_text().strip()
    try:
        return version("low_metric")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+unknown"


VERSION = _version()
VERSIONED = ("torch", "transformers", "timm", "open_clip_torch", "diffusers", "accelerate", "huggingface_hub")


def environment() -> dict[str, Any]:
    """When and with what a record was made (outside the protocol hash: not part of the protocol)."""
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return {"timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": versions}


RESULTS_FORMAT = "low_metric.results/1"
CALIBRATION_FORMAT = "low_metric.calibration/2"  # /2: transfer calibrations (maps, laws, intervals, hashes)


def protocol_hash(protocol: Any) -> str:
    """SHA-256 of the canonical JSON of a protocol: equal hashes mean comparable numbers."""
    try:
        text = json.dumps(protocol, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise LowMetricError("a protocol holds NaN or Inf: every setting must be a finite number") from None
    return hashlib.sha256(text.encode()).hexdigest()


def check_writable(path: str | Path) -> Path:
    """Fail before any work when the output cannot be written (tried for real: root ignores modes)."""
    path = Path(path)
    if path.is_dir():
        raise LowMetricError(f"output {path} is a directory")
    if not path.parent.is_dir():
        raise LowMetricError(f"output folder {path.parent} does not exist")
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
        if path.exists():
            with open(path, "a"):
                pass
    except OSError as exc:
        raise LowMetricError(f"output {path} is not writable ({exc.strerror})") from None
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write to a temporary file beside ``path``, then rename: readers never see half a file."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """JSON written atomically; NaN or Inf (not JSON) is refused before anything is written."""
    try:
        text = json.dumps(obj, indent=2, allow_nan=False)
    except ValueError:
        raise LowMetricError(f"{path}: refusing to write NaN or Inf") from None
    write_text_atomic(path, text + "\n")


def _no_constants(name: str) -> Any:
    raise LowMetricError(f"holds {name}, which is not a finite number")


def read_json(path: str | Path, expected_format: str) -> dict[str, Any]:
    """A results or calibration file, checked for its format tag (NaN and Infinity refused)."""
    path = Path(path)
    text = read_text(path, f"{expected_format} file")
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except LowMetricError as exc:
        raise LowMetricError(f"{path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LowMetricError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        raise LowMetricError(f"{path}: not a {expected_format} file")
    return data


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The records of a results file, each checked by :func:`check_record` (hashes recomputed)."""
    data = read_json(path, RESULTS_FORMAT)
    records = data.get("results")
    if not isinstance(records, list) or not records:
        raise LowMetricError(f"{path}: 'results' must be a non-empty list of records")
    return [check_record(r, f"{path}: record {i}") for i, r in enumerate(records)]


def check_record(record: Any, where: str = "record") -> dict[str, Any]:
    """A scored record, validated as read back: required keys and types, every number finite, and
    its protocol and result hashes recomputed (an edited protocol under a kept hash is refused)."""
    if not isinstance(record, dict):
        raise LowMetricError(f"{where}: not a JSON object")
    for key, kind in (("encoder", str), ("protocol", dict), ("protocol_hash", str), ("encoder_protocol", dict)):
        if not isinstance(record.get(key), kind):
            raise LowMetricError(f"{where}: '{key}' must be a {kind.__name__}, got {type(record.get(key)).__name__}")
    where = f"{where} ({record['encoder']})"
    if "A" not in record and "C" not in record:
        raise LowMetricError(f"{where}: holds neither A nor C")
    for part, key in (("A", "A"), ("C", "C")):
        if part in record:
            value = record[part].get(key) if isinstance(record[part], dict) else None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise LowMetricError(f"{where}: {part}.{key} must be a number, got {value!r}")
    _finite(record, where)
    if protocol_hash(record["protocol"]) != record["protocol_hash"]:
        raise LowMetricError(f"{where}: protocol_hash does not match its protocol (edited?): refused")
    if "result_hash" in record and record["result_hash"] != protocol_hash(
            {"protocol": record["protocol"], "encoder": record["encoder_protocol"]}):
        raise LowMetricError(f"{where}: result_hash does not match its protocol and encoder (edited?): refused")
    return record


def _finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise LowMetricError(f"{where}: holds a NaN or Inf")
    if isinstance(value, dict):
        for v in value.values():
            _finite(v, where)
    elif isinstance(value, list):
        for v in value:
            _finite(v, where)
