"""Images for the scores: decoding, content hashes, ordered image sets, and the 840 frame.

Every path in (a file, a folder, a SPair-71k directory, a `datasets` row) decodes through
:func:`load_image`, so one picture gives the same RGB pixels and the same :func:`content_hash`
whichever way it arrived.
"""

from __future__ import annotations

import functools
import hashlib
import io
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from low_metric.core.errors import LowMetricError
from low_metric.core.frame import FRAME_SIZE, Frame
from low_metric.sources.statmemo import memoised

ImageSource = str | Path | bytes
"""A path to an image file, or the encoded bytes of one."""

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_image(source: ImageSource) -> Image.Image:
    """Decode a path or encoded bytes into an RGB image, EXIF orientation applied (as `datasets` does)."""
    is_bytes = isinstance(source, (bytes, bytearray))
    try:
        with Image.open(io.BytesIO(source) if is_bytes else source) as image:
            image.load()
            return ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        name = f"<{len(source)} bytes>" if is_bytes else str(source)
        raise LowMetricError(f"cannot read image {name}: {_one_line(exc)}") from exc


def content_hash(image: Image.Image) -> str:
    """sha256 of the decoded RGB pixels and the size: the identity of a picture, not of its file."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    digest = hashlib.sha256(f"RGB {rgb.width}x{rgb.height}\n".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1 << 16)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    return content_hash(load_image(path))


def source_hash(source: ImageSource) -> str:
    """:func:`content_hash` of an image source; a file is decoded for it once while its size and
    modification time stay the same (the SPair set and an image set over the same files share it),
    across runs when a :mod:`~low_metric.sources.statmemo` is active (the scorer's, beside its cache)."""
    if isinstance(source, (str, Path)):
        path = Path(source).resolve()
        try:
            stat = path.stat()
        except OSError:
            pass  # load_image reports it
        else:
            return memoised(f"pixels:{path}", [path], lambda: _file_hash(str(path), stat.st_size, stat.st_mtime_ns),
                            valid=lambda v: isinstance(v, str) and len(v) == 64)
    return content_hash(load_image(source))


def pad_to_frame(
    image: Image.Image,
    size: int = FRAME_SIZE,
    resample: Image.Resampling = Image.Resampling.BICUBIC,
) -> Image.Image:
    """SPEC 3's frame: resize keeping the aspect ratio (longer side = size), zero-pad centred to size x size."""
    frame = Frame(image.width, image.height, size)
    canvas = Image.new("RGB", (size, size))
    canvas.paste(image.convert("RGB").resize(frame.resized, resample), frame.offset)
    return canvas


def subsample(n: int, count: int | None, seed: int, source: str) -> list[int]:
    """Indices of `count` of `n` items drawn without replacement by `seed`, in ascending order (all if None)."""
    if count is None:
        return list(range(n))
    if count < 1 or count > n:
        raise LowMetricError(f"cannot take {count} images from {source}: it has {n}")
    return sorted(int(i) for i in np.random.default_rng(seed).choice(n, size=count, replace=False))


@dataclass(frozen=True)
class ImageSet:
    """An ordered set of decodable images: ids, content hashes, and lazy access to the pixels.

    Built by :meth:`from_folder`, :meth:`from_files` or :meth:`from_dataset`, which decode every
    chosen image once to hash it; unreadable ones are warned about and listed in ``skipped`` as
    ``(id, reason)``, so ``requested == loaded + len(skipped)``.
    """

    source: str
    ids: tuple[str, ...]
    hashes: tuple[str, ...]
    requested: int
    skipped: tuple[tuple[str, str], ...]
    _fetch: Callable[[int], ImageSource] = field(repr=False)

    @property
    def loaded(self) -> int:
        return len(self.ids)

    @property
    def set_hash(self) -> str:
        """sha256 over the ordered content hashes."""
        return hashlib.sha256("\n".join(self.hashes).encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.ids)

    def image(self, index: int) -> Image.Image:
        """Decode the index-th image again; error if it no longer matches its recorded hash."""
        image = load_image(self._fetch(index))
        if content_hash(image) != self.hashes[index]:
            raise LowMetricError(f"image {self.ids[index]} of {self.source} changed since it was hashed")
        return image

    def __iter__(self) -> Iterator[Image.Image]:
        return (self.image(i) for i in range(len(self)))

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], count: int | None = None, seed: int = 0) -> ImageSet:
        """Images from explicit file paths, ids = the paths as given."""
        paths = [Path(p) for p in paths]
        return _build("the given files", [str(p) for p in paths], paths.__getitem__, count, seed)

    @classmethod
    def from_folder(cls, path: str | Path, count: int | None = None, seed: int = 0) -> ImageSet:
        """Image files (by extension) anywhere under a folder, ids = relative paths in sorted order."""
        root = Path(path)
        if not root.is_dir():
            raise LowMetricError(f"image folder not found: {root}")
        files = sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        ids = [p.relative_to(root).as_posix() for p in files]
        return _build(f"folder {root}", ids, files.__getitem__, count, seed)

    @classmethod
    def from_dataset(
        cls,
        name_or_path: str | Path,
        split: str = "train",
        image_column: str = "image",
        count: int | None = None,
        seed: int = 0,
        revision: str | None = None,
        config: str | None = None,
        first: int | None = None,
    ) -> ImageSet:
        """Images of a `datasets` dataset: a Hub id, a local dataset dir, or a `save_to_disk` dir.

        ids are ``"<split>/<row>"``; the encoded bytes (or file) of each row are decoded by
        :func:`load_image`, not by `datasets`, so a corrupt row is skipped, not fatal. ``config`` is
        the dataset's configuration name; ``first=N`` takes rows 0..N-1 in split order (streamed
        from the Hub: only those rows are downloaded), ``count`` a seeded sample. A column holding a
        list of images gives each row's first image.
        """
        source = f"dataset {name_or_path}{f' ({config})' if config else ''} [{split}]"
        if first is not None and count is not None:
            raise LowMetricError(f"{source}: give either the first N rows or a sample count, not both")
        if first is not None and not _saved_dataset(Path(name_or_path)):
            cells = _first_rows(name_or_path, split, revision, config, image_column, first, source)
            return _build(source, [f"{split}/{i}" for i in range(len(cells))], lambda i: _raw_cell(cells[i]), None, seed)
        table = _open_dataset(name_or_path, split, revision, config)
        if image_column not in table.column_names:
            raise LowMetricError(f"{source} has no column {image_column!r} (columns: {table.column_names})")
        column = _raw_image_column(table, image_column, source)
        return _build(source, [f"{split}/{i}" for i in range(len(table))], column, count, seed, first)


def _build(
    source: str,
    ids: Sequence[str],
    fetch: Callable[[int], ImageSource],
    count: int | None,
    seed: int,
    first: int | None = None,
) -> ImageSet:
    """Decode and hash the chosen items; warn about and record those that cannot be read."""
    if not ids:
        raise LowMetricError(f"no images in {source}")
    if first is not None and not 1 <= first <= len(ids):
        raise LowMetricError(f"cannot take the first {first} images from {source}: it has {len(ids)}")
    chosen = list(range(first)) if first is not None else subsample(len(ids), count, seed, source)
    kept: list[int] = []
    hashes: list[str] = []
    skipped: list[tuple[str, str]] = []
    for i in chosen:
        try:
            hashes.append(source_hash(fetch(i)))
            kept.append(i)
        except LowMetricError as exc:
            skipped.append((ids[i], str(exc)))
            warnings.warn(f"{source}: skipping {ids[i]}: {exc}", stacklevel=3)
    if not kept:
        raise LowMetricError(f"no readable images in {source} ({len(skipped)} skipped)")
    return ImageSet(
        source=source,
        ids=tuple(ids[i] for i in kept),
        hashes=tuple(hashes),
        requested=len(chosen),
        skipped=tuple(skipped),
        _fetch=lambda k: fetch(kept[k]),
    )


def _saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in ("state.json", "dataset_dict.json"))


def _open_dataset(name_or_path: str | Path, split: str, revision: str | None, config: str | None = None):
    """One split of a dataset: `load_from_disk` for a saved dataset dir, `load_dataset` otherwise."""
    import datasets

    path = Path(name_or_path)
    try:
        if not _saved_dataset(path):
            return datasets.load_dataset(str(name_or_path), config, split=split, revision=revision)
        table = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many types (not found, offline, bad format)
        raise LowMetricError(f"cannot load dataset {name_or_path} [{split}]: {_one_line(exc)}") from exc
    if isinstance(table, datasets.DatasetDict):
        if split not in table:
            raise LowMetricError(f"dataset {name_or_path} has no split {split!r} (splits: {list(table)})")
        table = table[split]
    return table


def _undecoded(feature, column: str, source: str):
    """The feature of ``column`` with its images left encoded (an image, or a list of images)."""
    import datasets

    if isinstance(feature, datasets.Image):
        return datasets.Image(decode=False)
    inner = getattr(feature, "feature", None)
    if isinstance(inner, datasets.Image):
        return type(feature)(datasets.Image(decode=False))
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string", "binary", "large_binary"):
        return feature
    raise LowMetricError(f"column {column!r} of {source} holds {feature}, not images")


def _raw_cell(cell) -> ImageSource:
    """An undecoded image cell (or the first of a list of them) as bytes or a path."""
    if isinstance(cell, list):
        cell = cell[0] if cell else None
    if cell is None:
        raise LowMetricError("the row has no image")
    if isinstance(cell, dict):
        return cell["bytes"] if cell.get("bytes") is not None else cell["path"]
    return cell


def _first_rows(name: str | Path, split: str, revision: str | None, config: str | None, column: str, first: int,
                source: str) -> list:
    """The image cells of a Hub dataset's first ``first`` rows, streamed (nothing else is downloaded)."""
    import datasets

    if first < 1:
        raise LowMetricError(f"cannot take the first {first} images from {source}")
    try:
        stream = datasets.load_dataset(str(name), config, split=split, revision=revision, streaming=True)
        if stream.features is None or column not in stream.features:
            raise LowMetricError(f"{source} has no column {column!r} (columns: {list(stream.features or {})})")
        stream = stream.cast_column(column, _undecoded(stream.features[column], column, source))
        cells = [row[column] for row in stream.take(first)]
    except LowMetricError:
        raise
    except Exception as exc:  # datasets raises many types (not found, offline, bad format)
        raise LowMetricError(f"cannot load dataset {name} [{split}]: {_one_line(exc)}") from exc
    if len(cells) < first:
        raise LowMetricError(f"cannot take the first {first} images from {source}: it has {len(cells)}")
    return cells


def _raw_image_column(table, column: str, source: str) -> Callable[[int], ImageSource]:
    """Row -> encoded bytes or file path of its image, without letting `datasets` decode it."""
    raw = table.cast_column(column, _undecoded(table.features[column], column, source))
    return lambda i: _raw_cell(raw[i][column])
