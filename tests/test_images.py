"""Image loading: one picture, every path in, the same pixels and hash; unreadable images counted."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from low_metric.core.errors import LowMetricError
from low_metric.core.frame import Frame
from low_metric.sources.images import ImageSet, content_hash, load_image, pad_to_frame
from low_metric.sources.mini import mini_benchmark_root
from low_metric.sources.spair import load_spair
from tests.test_spair import write_image, write_pair


@pytest.fixture
def photo() -> Path:
    """A real photograph (JPEG) shipped with the package."""
    return mini_benchmark_root() / "JPEGImages" / "homography" / "chelsea.jpg"


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    """Five distinct real photographs copied into a folder."""
    folder = tmp_path / "photos"
    folder.mkdir()
    sources = sorted((mini_benchmark_root() / "JPEGImages" / "homography").glob("*_h1.jpg"))[:5]
    return [Path(shutil.copy(p, folder / p.name)) for p in sources]


def test_content_hash_is_sha256_of_size_and_rgb_pixels() -> None:
    image = Image.new("RGB", (2, 1), (1, 2, 3))
    assert content_hash(image) == hashlib.sha256(b"RGB 2x1\n" + bytes([1, 2, 3, 1, 2, 3])).hexdigest()
    assert content_hash(Image.new("RGB", (1, 2), (1, 2, 3))) != content_hash(image)
    assert content_hash(Image.new("L", (2, 1), 7)) == content_hash(Image.new("RGB", (2, 1), (7, 7, 7)))


def test_same_picture_through_every_path(photo: Path, tmp_path: Path) -> None:
    expected = np.asarray(Image.open(photo).convert("RGB"))
    reference = content_hash(Image.fromarray(expected))

    folder = tmp_path / "folder" / "sub"
    folder.mkdir(parents=True)
    shutil.copy(photo, folder / "x.jpg")
    Image.fromarray(expected).save(tmp_path / "same_pixels.png")

    spair_root = tmp_path / "spair"
    write_image(spair_root, "cat", "x.jpg", Image.new("RGB", (8, 8)), {0: [1, 1]})
    shutil.copy(photo, spair_root / "JPEGImages" / "cat" / "x.jpg")
    write_image(spair_root, "cat", "y.jpg", Image.new("RGB", (9, 9)), {0: [2, 2]})
    write_pair(spair_root, 1, "cat", "x.jpg", "y.jpg", [[1, 1]], [[2, 2]], [0, 0, 8, 8], [0, 0, 9, 9], [0])
    spair_image = load_spair(spair_root).pairs[0].src_path

    saved = tmp_path / "saved"
    table = datasets.Dataset.from_dict({"image": [str(photo)]}).cast_column("image", datasets.Image())
    table.save_to_disk(str(saved))

    images = {
        "file": load_image(photo),
        "bytes": load_image(photo.read_bytes()),
        "png of the same pixels": load_image(tmp_path / "same_pixels.png"),
        "files": ImageSet.from_files([photo]).image(0),
        "folder": ImageSet.from_folder(tmp_path / "folder").image(0),
        "spair": load_image(spair_image),
        "saved dataset": ImageSet.from_dataset(saved).image(0),
        "imagefolder dataset": ImageSet.from_dataset(tmp_path / "folder").image(0),
        "datasets' own decoding": datasets.load_from_disk(str(saved))[0]["image"],
    }
    for how, image in images.items():
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), expected, err_msg=how)
        assert content_hash(image) == reference, how
    sets = [ImageSet.from_files([spair_image]), ImageSet.from_folder(tmp_path / "folder"), ImageSet.from_dataset(saved)]
    assert {s.hashes for s in sets} == {(reference,)}
    assert len({s.set_hash for s in sets}) == 1


def test_exif_orientation_applied_as_datasets_does(photo: Path, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.open(photo).save(path, exif=exif, quality=95)
    image = load_image(path)
    assert image.size == Image.open(photo).size[::-1]
    table = datasets.Dataset.from_dict({"image": [str(path)]}).cast_column("image", datasets.Image())
    assert content_hash(table[0]["image"]) == content_hash(image)


def write_corrupt(folder: Path, photo: Path) -> None:
    data = photo.read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "text.jpg").write_text("this is not an image")
    (folder / "notes.txt").write_text("not an image file name, ignored")


def test_corrupt_images_are_reported_skipped_and_counted(photos: list[Path]) -> None:
    folder = photos[0].parent
    write_corrupt(folder, photos[0])
    with pytest.warns(UserWarning) as caught:
        images = ImageSet.from_folder(folder)
    messages = " ".join(str(w.message) for w in caught)
    assert "truncated.jpg" in messages and "text.jpg" in messages
    assert (images.requested, images.loaded, len(images.skipped)) == (7, 5, 2)
    assert dict(images.skipped).keys() == {"truncated.jpg", "text.jpg"}
    assert "truncated" in dict(images.skipped)["truncated.jpg"]
    assert "cannot identify" in dict(images.skipped)["text.jpg"]
    assert list(images.ids) == sorted(p.name for p in photos)
    assert [content_hash(i) for i in images] == list(images.hashes)


def test_corrupt_dataset_row_is_skipped(photo: Path, tmp_path: Path) -> None:
    rows = [{"bytes": photo.read_bytes(), "path": None}, {"bytes": b"\xff\xd8\xff junk", "path": None}]
    table = datasets.Dataset.from_dict({"image": rows, "label": [0, 1]}).cast_column("image", datasets.Image())
    table.save_to_disk(str(tmp_path / "ds"))
    with pytest.warns(UserWarning, match="train/1"):
        images = ImageSet.from_dataset(tmp_path / "ds")
    assert (images.requested, images.loaded, images.ids) == (2, 1, ("train/0",))
    assert images.skipped[0][0] == "train/1"
    with pytest.raises(LowMetricError, match="no column 'picture'"):
        ImageSet.from_dataset(tmp_path / "ds", image_column="picture")
    with pytest.raises(LowMetricError, match="holds"):
        ImageSet.from_dataset(tmp_path / "ds", image_column="label")


def test_dataset_dict_split_and_missing_split(photo: Path, tmp_path: Path) -> None:
    table = datasets.Dataset.from_dict({"image": [str(photo)]}).cast_column("image", datasets.Image())
    datasets.DatasetDict({"validation": table}).save_to_disk(str(tmp_path / "dd"))
    assert ImageSet.from_dataset(tmp_path / "dd", split="validation").ids == ("validation/0",)
    with pytest.raises(LowMetricError, match="no split 'train'"):
        ImageSet.from_dataset(tmp_path / "dd")


def test_unreadable_file_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(LowMetricError, match="text.jpg"):
        load_image(tmp_path / "text.jpg")
    missing = pytest.raises(LowMetricError, match="no readable images in the given files")
    with pytest.warns(UserWarning, match="missing.png"), missing:
        ImageSet.from_files([tmp_path / "missing.png"])


def test_empty_sources_are_errors_naming_them(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(LowMetricError, match="empty"):
        ImageSet.from_folder(tmp_path / "empty")
    with pytest.raises(LowMetricError, match="not found.*nowhere"):
        ImageSet.from_folder(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"\x89PNG broken")
    with pytest.warns(UserWarning), pytest.raises(LowMetricError, match="no readable images in folder .*bad"):
        ImageSet.from_folder(tmp_path / "bad")


def test_subsampling_is_deterministic(photos: list[Path]) -> None:
    folder = photos[0].parent
    first = ImageSet.from_folder(folder, count=3, seed=0)
    assert first.ids == ImageSet.from_folder(folder, count=3, seed=0).ids
    assert first.set_hash == ImageSet.from_folder(folder, count=3, seed=0).set_hash
    assert len(first) == first.requested == 3 and list(first.ids) == sorted(first.ids)
    draws = {ImageSet.from_folder(folder, count=3, seed=s).ids for s in range(6)}
    assert len(draws) > 1
    assert ImageSet.from_files(photos, count=2, seed=1).ids == ImageSet.from_files(photos, count=2, seed=1).ids
    with pytest.raises(LowMetricError, match="cannot take 6 images"):
        ImageSet.from_folder(folder, count=6)


def test_set_hash_follows_order_and_content(photos: list[Path]) -> None:
    forward = ImageSet.from_files(photos)
    assert ImageSet.from_files(photos[::-1]).set_hash != forward.set_hash
    assert ImageSet.from_files(photos[:4]).set_hash != forward.set_hash


def test_image_changed_after_hashing_is_an_error(photos: list[Path]) -> None:
    images = ImageSet.from_files(photos)
    shutil.copy(photos[1], photos[0])
    with pytest.raises(LowMetricError, match="changed"):
        images.image(0)


@pytest.mark.parametrize("size", [(317, 211), (120, 400), (840, 840), (1000, 999)])
def test_pad_to_frame_places_the_image_at_the_frame_offset(size: tuple[int, int]) -> None:
    image = Image.new("RGB", size, (200, 100, 50))
    padded = np.asarray(pad_to_frame(image))
    frame = Frame(*size)
    (new_w, new_h), (ox, oy) = frame.resized, frame.offset
    assert padded.shape == (840, 840, 3)
    content = np.argwhere(padded.any(axis=2))
    assert content.min(axis=0).tolist() == [oy, ox]
    assert content.max(axis=0).tolist() == [oy + new_h - 1, ox + new_w - 1]
    np.testing.assert_array_equal(padded[oy + new_h // 2, ox + new_w // 2], [200, 100, 50])


def test_pad_to_frame_dot_lands_where_frame_maps_it() -> None:
    for size, dot in (((300, 180), (40, 150)), ((180, 300), (150, 40)), ((640, 480), (600, 20))):
        image = Image.new("RGB", size)
        image.paste((255, 255, 255), (dot[0] - 2, dot[1] - 2, dot[0] + 3, dot[1] + 3))
        padded = np.asarray(pad_to_frame(load_image(_png_bytes(image)))).mean(axis=2)
        rows, cols = np.nonzero(padded > 100)
        expected = Frame(*size).points([dot])[0]
        assert cols.mean() == pytest.approx(expected[0], abs=1.5)
        assert rows.mean() == pytest.approx(expected[1], abs=1.5)


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_source_hash_follows_the_file_not_a_stale_memo(tmp_path):
    import os

    from low_metric.sources.images import source_hash

    path = tmp_path / "x.png"
    first, second = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    first.save(path)
    assert source_hash(path) == content_hash(first) == source_hash(str(path))
    second.save(path)
    os.utime(path, ns=(1, 1))  # a different modification time, as any real rewrite has
    assert source_hash(path) == content_hash(second) != content_hash(first)
    assert source_hash(path.read_bytes()) == content_hash(second)
