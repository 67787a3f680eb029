"""Results files: one JSON record per encoder with its full protocol, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from low_metric.core.errors import LowMetricError

try:
    VERSION = version("low_metric")  # recorded in every protocol
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0+unknown"
RESULTS_FORMAT = "low_metric.results/1"
CALIBRATION_FORMAT = "low_metric.calibration/2"  # /2: transfer calibrations (maps, laws, intervals, hashes)


def protocol_hash(protocol: Any) -> str:
    """SHA-256 of the canonical JSON of a protocol: equal hashes mean comparable numbers."""
    return hashlib.sha256(json.dumps(protocol, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a finite number")


def read_json(path: str | Path, expected_format: str) -> dict[str, Any]:
    """A results or calibration file, checked for its format tag (NaN and Infinity refused)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(), parse_constant=_no_constant)
    except FileNotFoundError:
        raise LowMetricError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise LowMetricError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        raise LowMetricError(f"{path}: not a {expected_format} file")
    return data
