"""Values derived from files, remembered across runs while the files keep their size and mtime.

Decoding an image to hash its pixels, reading a model folder to hash its content, or building a
model's skeleton to learn its protocol cost more than anything else a rerun does once its features
are cached. A :class:`StatMemo` keeps each such value (a hash, or a JSON object such as an encoder
protocol keyed by its commit) in one JSON file, with the (path, size, mtime_ns) of the files it was
computed from; when one of them changes (another size or modification time) it is computed again.
The scorer keeps its memo beside the feature cache and makes it :meth:`StatMemo.active` while it
reads data and describes models; outside that, nothing is remembered across runs.

File: ``{"format": "low_metric.stat_memo/2", "entries": {name: {"stats": [[path, size, mtime_ns],
...], "value": ..., "sha256": hex}}}``, written atomically. Each entry's SHA-256 (of its name, stats
and value as canonical JSON) is recomputed on reading: an entry that fails it is dropped (and
computed again); a damaged or foreign file is ignored (and replaced).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

FORMAT = "low_metric.stat_memo/2"
_ACTIVE: ContextVar[StatMemo | None] = ContextVar("low_metric_stat_memo", default=None)


def file_stats(paths: Sequence[Path]) -> list[list]:
    """[resolved path, size, mtime_ns] of each file (OSError when one cannot be read)."""
    out = []
    for path in paths:
        stat = path.stat()
        out.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return out


class StatMemo:
    """JSON values by name, each valid while its files' stats are those recorded with it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        self._dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return
        if isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("entries"), dict):
            self.entries = {k: v for k, v in data["entries"].items() if _valid(k, v)}

    def lookup(self, name: str, files: Sequence[Path], compute: Callable[[], Any],
               valid: Callable[[Any], bool] = lambda value: True) -> Any:
        """The value recorded under ``name`` if ``files`` are unchanged and ``valid(value)``, else
        ``compute()`` (recorded)."""
        stats = file_stats(files)
        entry = self.entries.get(name)
        if entry is not None and entry["stats"] == stats and valid(entry["value"]):
            return entry["value"]
        value = compute()
        self.entries[name] = {"stats": stats, "value": value, "sha256": _digest(name, stats, value)}
        self._dirty = True
        return value

    @contextlib.contextmanager
    def active(self) -> Iterator[StatMemo]:
        """Use this memo for :func:`memoised` hashes within the block, then save it."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)
            self.save()

    def save(self) -> None:
        """Write the memo atomically (a concurrent writer's entries may be lost: they are recomputed)."""
        if not self._dirty:
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"format": FORMAT, "entries": self.entries}, f)
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError:
            Path(tmp).unlink(missing_ok=True)  # a memo that cannot be written costs time, not results


def _digest(name: str, stats: list, value: Any) -> str:
    return hashlib.sha256(json.dumps([name, stats, value], sort_keys=True).encode()).hexdigest()


def _valid(name: str, entry: object) -> bool:
    """A well-formed entry whose recorded SHA-256 matches its content."""
    if not (isinstance(entry, dict) and {"stats", "value", "sha256"} <= entry.keys() and isinstance(entry["stats"], list)
            and all(isinstance(s, list) and len(s) == 3 and isinstance(s[0], str)
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in s[1:]) for s in entry["stats"])):
        return False
    return entry["sha256"] == _digest(name, entry["stats"], entry["value"])


def memoised(name: str, files: Sequence[Path], compute: Callable[[], Any],
             valid: Callable[[Any], bool] = lambda value: True) -> Any:
    """``compute()``, or the active memo's value of ``name`` while ``files`` are unchanged (and it
    passes ``valid``)."""
    memo = _ACTIVE.get()
    return compute() if memo is None else memo.lookup(name, files, compute, valid)
