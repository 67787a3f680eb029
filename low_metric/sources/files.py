"""Reading the files people hand to low_metric: one line naming the file when it cannot be read."""

from __future__ import annotations

from pathlib import Path

from low_metric.core.errors import LowMetricError


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of ``path``; a missing file, a folder or other bytes are one line naming it."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LowMetricError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LowMetricError(f"{path}: is a directory, not a {what}") from None
    except UnicodeDecodeError:
        raise LowMetricError(f"{path}: not UTF-8 text (not a {what})") from None
    except OSError as exc:
        raise LowMetricError(f"{path}: cannot be read ({exc.strerror})") from None
