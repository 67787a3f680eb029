"""A content-addressed feature cache in a few large append-only shard files.

Each entry is keyed by a hash of (encoder protocol, preprocessing, image content hash) and holds
one float tensor. A process appends to its own shard, so concurrent writers never share a file;
each record carries the SHA-256 of its payload, so a record cut short by a kill, or corrupted on
disk, is detected, dropped and recomputed. Layout of a record:

    b"LMF1" | uint32 header length | header JSON {key, dtype, shape, sha256} | payload bytes
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import struct
import tempfile
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from low_metric.core.errors import LowMetricError
from low_metric.scoring.results import protocol_hash

MAGIC = b"LMF1"
FORMAT = "low_metric.feature_cache/1"
MANIFEST = "cache.json"
STAT_MEMO = "stat_memo.json"  # beside the shards: hashes of the run's image files and model folders (statmemo)


def _is_shard(path: Path) -> bool:
    return path.name.startswith("shard-") and path.name.endswith(".bin") and path.is_file()


def _write_manifest(manifest: Path, *, replace: bool) -> None:
    """Write the manifest to a temporary file, then link (or, to repair, rename) it into place: a
    reader never sees a half-written manifest, and of two creators one wins, the other finds it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}.", dir=manifest.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({"format": FORMAT}) + "\n")
        if replace:
            os.replace(tmp, manifest)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, manifest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def cache_key(*parts: Any) -> str:
    """SHA-256 of the canonical JSON of the parts."""
    return protocol_hash(list(parts))


@dataclass(frozen=True)
class _Entry:
    path: Path
    offset: int
    length: int
    dtype: str
    shape: tuple[int, ...]
    sha256: str


class FeatureCache:
    """Tensors by key, in shard files under ``root``; ``get`` verifies, ``put`` appends."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LowMetricError(f"feature cache {self.root}: cannot create ({exc.strerror})") from None
        self._open_manifest()
        self._shard: Path | None = None
        self.dropped = 0
        self._intact: set[_Entry] = set()  # records whose payload this process has hashed and found intact
        self._index: dict[str, list[_Entry]] = {}  # a key may sit in several shards (recomputed after corruption)
        self.refresh()

    def _open_manifest(self) -> None:
        """Check ``cache.json``, or create it atomically (every accelerate rank may do this at once);
        a damaged one beside intact shards is rebuilt, a foreign folder refused."""
        manifest = self.root / MANIFEST
        if not manifest.exists():
            foreign = [p.name for p in self.root.iterdir() if not (_is_shard(p) or p.name == STAT_MEMO or
                                                                   p.name.startswith((f".{MANIFEST}.", f".{STAT_MEMO}.")))]
            if foreign:
                raise LowMetricError(f"{self.root} is not empty and not a low_metric feature cache (no {MANIFEST}; "
                                     f"holds {foreign[0]})")
            _write_manifest(manifest, replace=False)
        try:
            found = json.loads(manifest.read_text(encoding="utf-8")).get("format")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            found = None
        if found == FORMAT:
            return
        if found is None and any(_is_shard(p) for p in self.root.iterdir()):
            warnings.warn(f"{manifest} was damaged: rebuilt from the shards beside it", stacklevel=3)
            _write_manifest(manifest, replace=True)
            return
        raise LowMetricError(f"{self.root} is not a low_metric feature cache of format {FORMAT} (found {found!r})")

    def refresh(self) -> None:
        """Re-read every shard's records (e.g. after other processes wrote theirs)."""
        index: dict[str, list[_Entry]] = {}
        for shard in sorted(self.root.glob("shard-*.bin")):
            if not shard.is_file():
                warnings.warn(f"{shard} is not a file: ignored", stacklevel=2)
                continue
            for key, entry in self._scan(shard).items():
                index.setdefault(key, []).append(entry)
        self._index = index

    def _scan(self, shard: Path) -> dict[str, _Entry]:
        """The records of one shard; after a damaged header, scanning resumes at the next record."""
        found: dict[str, _Entry] = {}
        size = shard.stat().st_size
        if size == 0:
            return found
        with open(shard, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            pos = 0
            while (pos := data.find(MAGIC, pos)) >= 0 and pos + 8 <= size:
                (hlen,) = struct.unpack("<I", data[pos + 4:pos + 8])
                start = pos + 8 + hlen
                try:
                    header = json.loads(data[pos + 8:start])
                    shape = tuple(int(n) for n in header["shape"])
                    length = int(np.prod(shape)) * np.dtype(header["dtype"]).itemsize
                    entry = _Entry(shard, start, length, header["dtype"], shape, str(header["sha256"]))
                    key = str(header["key"])
                except (ValueError, KeyError, TypeError):
                    pos += 1  # a damaged header: look for the next record
                    continue
                if start + length > size:
                    break  # cut short by a kill: the rest is recomputed
                found[key] = entry
                pos = start + length
        return found

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def get(self, key: str) -> torch.Tensor | None:
        """The stored tensor, or None when absent or corrupt (corrupt copies are forgotten)."""
        out = self._read(key, lambda entry: np.empty(entry.shape, dtype=entry.dtype))
        return None if out is None else torch.from_numpy(out)

    def verify(self, key: str) -> bool:
        """Whether ``key`` has an intact record (its SHA-256 recomputed, once per process)."""
        return self._read(key, lambda entry: np.empty(entry.length, dtype=np.uint8), reread=False) is not None

    def get_stacked(self, keys: list[str]) -> torch.Tensor | None:
        """The tensors of ``keys`` stacked [N, ...], each read (and verified) straight into one buffer;
        None when one is absent or corrupt, or their records differ in dtype or shape."""
        found = [self._index.get(key) for key in keys]
        kinds = {(e.dtype, e.shape) for entries in found if entries for e in entries}
        if not keys or not all(found) or len(kinds) != 1:
            return None
        dtype, shape = kinds.pop()
        out = np.empty((len(keys), *shape), dtype=dtype)
        for key, row in zip(keys, out):
            if self._read(key, lambda entry, row=row: row) is None:
                return None
        return torch.from_numpy(out)

    def _read(self, key: str, buffer: Callable[[_Entry], np.ndarray], reread: bool = True) -> Any:
        """The first intact record of ``key`` read into ``buffer(entry)`` (as a tensor unless it is a
        given array); a record is hashed the first time this process reads it, and a damaged one is
        forgotten. ``reread=False``: a record already found intact is not read again (returns True)."""
        entries = self._index.get(key, [])
        while entries:
            entry = entries[0]
            if entry in self._intact and not reread:
                return True
            out = buffer(entry)
            with open(entry.path, "rb") as f:
                f.seek(entry.offset)
                complete = f.readinto(memoryview(out.reshape(-1)).cast("B")) == entry.length
            if complete and (entry in self._intact or hashlib.sha256(out).hexdigest() == entry.sha256):
                self._intact.add(entry)
                return out if reread else True
            entries.pop(0)
            self.dropped += 1
        self._index.pop(key, None)
        return None

    def put(self, items: list[tuple[str, torch.Tensor]]) -> None:
        """Append (key, tensor) records to this process's shard, synced to disk before returning."""
        if self._shard is None:
            self._shard = self.root / f"shard-{os.getpid()}-{uuid.uuid4().hex[:8]}.bin"
        with open(self._shard, "ab") as f:
            for key, tensor in items:
                array = np.ascontiguousarray(tensor.detach().cpu().numpy())
                payload = array.tobytes()
                digest = hashlib.sha256(payload).hexdigest()
                header = json.dumps({"key": key, "dtype": array.dtype.str, "shape": list(array.shape), "sha256": digest}).encode()
                offset = f.tell()
                f.write(MAGIC + struct.pack("<I", len(header)) + header + payload)
                entry = _Entry(self._shard, offset + 8 + len(header), len(payload), array.dtype.str, tuple(array.shape), digest)
                self._index[key] = [entry]
            f.flush()
            os.fsync(f.fileno())
