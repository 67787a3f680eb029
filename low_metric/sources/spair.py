"""SPair-71k in its real layout (SPEC 3), keypoints and boxes in original pixels and in the 840 frame.

Layout under ``root``::

    JPEGImages/<category>/<name>.jpg
    ImageAnnotation/<category>/<name>.json
    PairAnnotation/<split>/<index>-<src>-<trg>:<category>.json

A pair file holds ``src_imname``, ``trg_imname``, ``src_bndbox``/``trg_bndbox`` ([x1, y1, x2, y2]),
``src_kps``/``trg_kps`` (the [x, y] of the keypoints visible in both), ``kps_ids``, ``category``,
and usually ``src_imsize``/``trg_imsize`` ([w, h, c]), ``mirror``, ``viewpoint_variation``, ...
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from low_metric.core.errors import LowMetricError
from low_metric.core.frame import Frame, box_threshold
from low_metric.sources.files import read_text
from low_metric.sources.images import source_hash

_ORIENTATIONS_SWAPPING_AXES = frozenset({5, 6, 7, 8})


@dataclass(frozen=True, eq=False)
class SpairPair:
    """One annotated pair; ``*_kps`` are [K, 2] (x, y), boxes [x1, y1, x2, y2], sizes (w, h)."""

    id: str
    category: str
    src: str
    trg: str
    src_path: Path
    trg_path: Path
    src_size: tuple[int, int]
    trg_size: tuple[int, int]
    kps_ids: tuple[int, ...]
    src_kps: np.ndarray
    trg_kps: np.ndarray
    src_box: np.ndarray
    trg_box: np.ndarray
    src_kps_frame: np.ndarray
    trg_kps_frame: np.ndarray
    src_box_frame: np.ndarray
    trg_box_frame: np.ndarray
    threshold: float
    """max(height, width) of the target box in the 840 frame (PCK threshold before alpha)."""


def parse_pair(
    pair_id: str,
    record: Mapping,
    root: Path,
    src_size: tuple[int, int],
    trg_size: tuple[int, int],
) -> SpairPair:
    """Validate one pair record and map its keypoints and boxes into the frame (no I/O)."""
    try:
        category = str(record["category"])
        src, trg = str(record["src_imname"]), str(record["trg_imname"])
        fields = {name: record[name] for name in ("src_kps", "trg_kps", "src_bndbox", "trg_bndbox", "kps_ids")}
        kps_ids = tuple(int(i) for i in fields["kps_ids"])
        src_kps, trg_kps = (_points(fields[k], pair_id, k) for k in ("src_kps", "trg_kps"))
        src_box, trg_box = (_box(fields[k], pair_id, k) for k in ("src_bndbox", "trg_bndbox"))
    except LowMetricError:
        raise
    except KeyError as exc:
        raise LowMetricError(f"SPair pair {pair_id}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise LowMetricError(f"SPair pair {pair_id}: malformed annotation ({exc})") from None
    if not len(src_kps) == len(trg_kps) == len(kps_ids):
        raise LowMetricError(
            f"SPair pair {pair_id}: keypoint counts differ "
            f"(src_kps {len(src_kps)}, trg_kps {len(trg_kps)}, kps_ids {len(kps_ids)})"
        )
    if not len(src_kps):
        raise LowMetricError(f"SPair pair {pair_id}: no keypoints")
    for side, size in (("src", src_size), ("trg", trg_size)):
        stated = record.get(f"{side}_imsize")
        if stated is not None and tuple(int(v) for v in stated[:2]) != tuple(size):
            raise LowMetricError(
                f"SPair pair {pair_id}: {side}_imsize {list(stated)} disagrees with the image ({size[0]}x{size[1]})"
            )
    src_frame, trg_frame = Frame(*src_size), Frame(*trg_size)
    trg_box_frame = trg_frame.box(trg_box)
    return SpairPair(
        id=pair_id,
        category=category,
        src=src,
        trg=trg,
        src_path=root / "JPEGImages" / category / src,
        trg_path=root / "JPEGImages" / category / trg,
        src_size=tuple(src_size),
        trg_size=tuple(trg_size),
        kps_ids=kps_ids,
        src_kps=src_kps,
        trg_kps=trg_kps,
        src_box=src_box,
        trg_box=trg_box,
        src_kps_frame=src_frame.points(src_kps),
        trg_kps_frame=trg_frame.points(trg_kps),
        src_box_frame=src_frame.box(src_box),
        trg_box_frame=trg_box_frame,
        threshold=float(box_threshold(trg_box_frame)),
    )


def _points(value: Sequence, pair_id: str, name: str) -> np.ndarray:
    points = np.asarray(value, dtype=np.float64)
    if points.size == 0:
        return points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise LowMetricError(f"SPair pair {pair_id}: {name} is not a list of finite [x, y]")
    return points


def _box(value: Sequence, pair_id: str, name: str) -> np.ndarray:
    box = np.asarray(value, dtype=np.float64)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise LowMetricError(f"SPair pair {pair_id}: {name} is not [x1, y1, x2, y2]")
    if not (box[2] > box[0] and box[3] > box[1]):
        raise LowMetricError(f"SPair pair {pair_id}: {name} {box.tolist()} is empty or inverted (x2 <= x1 or y2 <= y1)")
    return box


def outside_keypoints(pair: SpairPair) -> int:
    """How many of a pair's keypoints lie outside their image (matching clamps them to the border patch)."""
    count = 0
    for kps, (width, height) in ((pair.src_kps, pair.src_size), (pair.trg_kps, pair.trg_size)):
        count += int(np.sum((kps[:, 0] < 0) | (kps[:, 1] < 0) | (kps[:, 0] > width) | (kps[:, 1] > height)))
    return count


@dataclass(frozen=True, eq=False)
class SpairSet:
    """The pairs of one split (sorted by category, then file name) and the images they use."""

    root: Path
    split: str
    limit: int | None
    pairs: tuple[SpairPair, ...]

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({p.category for p in self.pairs}))

    @property
    def images(self) -> tuple[Path, ...]:
        """Distinct image paths, sorted: encode each once, however many pairs use it."""
        return tuple(sorted({p.src_path for p in self.pairs} | {p.trg_path for p in self.pairs}))

    @cached_property
    def image_hashes(self) -> dict[Path, str]:
        """Content hash of each image in :attr:`images` (decodes every image once)."""
        return {path: source_hash(path) for path in self.images}

    @cached_property
    def hash(self) -> str:
        """sha256 over the pair annotations and the content hashes of the images."""
        digest = hashlib.sha256(f"spair split={self.split}\n".encode())
        for pair in self.pairs:
            record = {
                "id": pair.id,
                "category": pair.category,
                "src": pair.src,
                "trg": pair.trg,
                "kps_ids": list(pair.kps_ids),
                "src_kps": pair.src_kps.tolist(),
                "trg_kps": pair.trg_kps.tolist(),
                "src_box": pair.src_box.tolist(),
                "trg_box": pair.trg_box.tolist(),
            }
            digest.update((json.dumps(record, sort_keys=True) + "\n").encode())
        for path, image_hash in self.image_hashes.items():
            name = path.relative_to(self.root / "JPEGImages").as_posix()
            digest.update(f"{name} {image_hash}\n".encode())
        return digest.hexdigest()


def load_spair(
    root: str | Path,
    split: str = "test",
    categories: Sequence[str] | None = None,
    limit: int | None = None,
) -> SpairSet:
    """Load one split of a SPair-71k directory; ``limit`` keeps the first N pairs of each category.

    Any missing image or annotation file, or malformed pair, is a :class:`LowMetricError`.
    """
    root = Path(root)
    pair_dir = root / "PairAnnotation" / split
    if not pair_dir.is_dir():
        raise LowMetricError(f"SPair split folder not found: {pair_dir}")
    if limit is not None and limit < 1:
        raise LowMetricError(f"SPair limit must be a positive number of pairs per category, got {limit}")
    by_category = _pair_files_by_category(pair_dir)
    wanted = sorted(by_category) if categories is None else list(dict.fromkeys(categories))
    unknown = [c for c in wanted if c not in by_category]
    if unknown:
        raise LowMetricError(f"SPair {pair_dir} has no pairs of {unknown} (has {sorted(by_category)})")
    sizes: dict[Path, tuple[int, int]] = {}
    pairs = []
    for category in wanted:
        for path in by_category[category][:limit]:
            pairs.append(_load_pair(path, category, root, sizes))
    if not pairs:
        raise LowMetricError(f"SPair {pair_dir} holds no pairs")
    outside = {p.id: n for p in pairs if (n := outside_keypoints(p))}
    if outside:
        warnings.warn(f"SPair {pair_dir}: {sum(outside.values())} keypoints in {len(outside)} pairs lie outside "
                      f"their image (first: {next(iter(outside))}); matching clamps them to the border patch",
                      stacklevel=2)
    return SpairSet(root=root, split=split, limit=limit, pairs=tuple(pairs))


def _pair_files_by_category(pair_dir: Path) -> dict[str, list[Path]]:
    by_category: dict[str, list[Path]] = {}
    for path in sorted(pair_dir.glob("*.json")):
        if ":" not in path.stem:
            raise LowMetricError(f"not a SPair pair file name (<id>:<category>.json): {path}")
        by_category.setdefault(path.stem.rsplit(":", 1)[1], []).append(path)
    return by_category


def _load_pair(path: Path, category: str, root: Path, sizes: dict[Path, tuple[int, int]]) -> SpairPair:
    record = _read_json(path)
    if record.get("category") != category:
        raise LowMetricError(f"SPair pair {path}: category {record.get('category')!r} but file name says {category!r}")
    images = []
    for side in ("src", "trg"):
        name = record.get(f"{side}_imname")
        if not isinstance(name, str):
            raise LowMetricError(f"SPair pair {path.stem}: missing field '{side}_imname'")
        annotation = root / "ImageAnnotation" / category / f"{Path(name).stem}.json"
        if not annotation.is_file():
            raise LowMetricError(f"SPair image annotation not found: {annotation}")
        image = root / "JPEGImages" / category / name
        if image not in sizes:
            sizes[image] = _image_size(image)
        images.append(image)
    return parse_pair(path.stem, record, root, sizes[images[0]], sizes[images[1]])


def _read_json(path: Path) -> dict:
    try:
        record = json.loads(read_text(path, "SPair annotation"))
    except json.JSONDecodeError as exc:
        raise LowMetricError(f"cannot read SPair annotation {path}: {type(exc).__name__}") from exc
    if not isinstance(record, dict):
        raise LowMetricError(f"SPair annotation {path} is not a JSON object")
    return record


def _image_size(path: Path) -> tuple[int, int]:
    """(w, h) of the image as :func:`load_image` will decode it (EXIF rotation included), from its header."""
    if not path.is_file():
        raise LowMetricError(f"SPair image not found: {path}")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(0x0112) in _ORIENTATIONS_SWAPPING_AXES:
                width, height = height, width
    except (OSError, SyntaxError, ValueError) as exc:
        raise LowMetricError(f"cannot read SPair image {path}: {type(exc).__name__}: {exc}") from exc
    return width, height
