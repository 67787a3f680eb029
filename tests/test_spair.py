"""The SPair-71k loader on small fixtures written in the real SPair-71k file format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from low_metric.core.errors import LowMetricError
from low_metric.sources.images import content_hash, load_image, pad_to_frame
from low_metric.sources.spair import load_spair


def write_image(root: Path, category: str, name: str, image: Image.Image, keypoints: dict[int, list]) -> None:
    """One JPEG and its ImageAnnotation JSON, as in SPair-71k (kps "0".."N-1", null when not visible)."""
    (root / "JPEGImages" / category).mkdir(parents=True, exist_ok=True)
    image.save(root / "JPEGImages" / category / name, quality=95)
    count = max(keypoints, default=-1) + 1
    annotation = {
        "filename": name, "src_database": "test", "src_annotation": "", "src_image": name,
        "image_width": image.width, "image_height": image.height, "image_depth": 3, "category": category,
        "pose": "Frontal", "truncated": 0, "occluded": 0, "difficult": 0,
        "bndbox": [0, 0, image.width, image.height],
        "kps": {str(i): keypoints.get(i) for i in range(count)}, "azimuth_id": 0,
    }
    (root / "ImageAnnotation" / category).mkdir(parents=True, exist_ok=True)
    (root / "ImageAnnotation" / category / f"{Path(name).stem}.json").write_text(json.dumps(annotation))


def write_pair(root: Path, index: int, category: str, src: str, trg: str, src_kps: list, trg_kps: list,
               src_box: list, trg_box: list, kps_ids: list, split: str = "test") -> Path:
    """One PairAnnotation JSON with the fields of the real SPair-71k pair files."""
    sizes = {}
    for name in (src, trg):
        with Image.open(root / "JPEGImages" / category / name) as image:
            sizes[name] = [image.width, image.height, 3]
    stem = f"{index:06d}-{Path(src).stem}-{Path(trg).stem}:{category}"
    record = {
        "filename": f"{stem}.json", "src_json_path": f"ImageAnnotation/{category}/{Path(src).stem}.json",
        "trg_json_path": f"ImageAnnotation/{category}/{Path(trg).stem}.json",
        "src_imname": src, "trg_imname": trg, "src_imsize": sizes[src], "trg_imsize": sizes[trg],
        "src_bndbox": src_box, "trg_bndbox": trg_box, "category": category,
        "src_pose": "Left", "trg_pose": "Right", "src_kps": src_kps, "trg_kps": trg_kps,
        "mirror": 0, "viewpoint_variation": 1, "scale_variation": 0, "truncation": 0, "occlusion": 0,
        "pair_id": index, "kps_ids": [str(i) for i in kps_ids],
    }
    path = root / "PairAnnotation" / split / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def dotted(width: int, height: int, points: list[tuple[int, int]]) -> Image.Image:
    """Black image with a white 5x5 dot centred on each point."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for x, y in points:
        draw.rectangle([x - 2, y - 2, x + 2, y + 2], fill=(255, 255, 255))
    return image


@pytest.fixture
def spair(tmp_path: Path) -> Path:
    """Two categories, three pairs; `cat/a.jpg` is used by two pairs."""
    root = tmp_path / "SPair-71k"
    write_image(root, "cat", "a.jpg", dotted(400, 300, [(50, 60), (200, 150), (350, 250)]),
                {0: [50, 60], 2: [200, 150], 5: [350, 250]})
    write_image(root, "cat", "b.jpg", dotted(200, 320, [(30, 40), (100, 160)]), {0: [30, 40], 2: [100, 160]})
    write_image(root, "cat", "c.jpg", dotted(320, 200, [(60, 20), (300, 180)]), {2: [60, 20], 5: [300, 180]})
    write_image(root, "dog", "d.jpg", dotted(500, 250, [(100, 100)]), {1: [100, 100]})
    write_image(root, "dog", "e.jpg", dotted(250, 500, [(120, 400)]), {1: [120, 400]})
    write_pair(root, 1, "cat", "a.jpg", "b.jpg", [[50, 60], [200, 150]], [[30, 40], [100, 160]],
               [10, 20, 390, 280], [5, 10, 180, 300], [0, 2])
    write_pair(root, 2, "cat", "a.jpg", "c.jpg", [[200, 150], [350, 250]], [[60, 20], [300, 180]],
               [10, 20, 390, 280], [20, 0, 310, 190], [2, 5])
    write_pair(root, 3, "dog", "d.jpg", "e.jpg", [[100, 100]], [[120, 400]],
               [50, 50, 450, 240], [30, 100, 230, 480], [1])
    return root


def frame_of(width: int, height: int, xy: np.ndarray) -> np.ndarray:
    """Independent rendering of SPEC 3's frame: longer side to 840, centred zero padding."""
    if width >= height:
        new_w, new_h = 840, round(height * 840 / width)
    else:
        new_w, new_h = round(width * 840 / height), 840
    scale = np.array([new_w / width, new_h / height])
    return np.asarray(xy, float) * scale + [(840 - new_w) // 2, (840 - new_h) // 2]


def test_loads_pairs_in_real_format(spair: Path) -> None:
    data = load_spair(spair)
    assert [p.id for p in data.pairs] == ["000001-a-b:cat", "000002-a-c:cat", "000003-d-e:dog"]
    assert data.categories == ("cat", "dog")
    first = data.pairs[0]
    assert (first.category, first.src, first.trg) == ("cat", "a.jpg", "b.jpg")
    assert first.src_path == spair / "JPEGImages" / "cat" / "a.jpg"
    assert first.src_size == (400, 300) and first.trg_size == (200, 320)
    assert first.kps_ids == (0, 2)
    np.testing.assert_array_equal(first.src_kps, [[50, 60], [200, 150]])
    np.testing.assert_array_equal(first.trg_kps, [[30, 40], [100, 160]])
    np.testing.assert_allclose(first.src_kps_frame, frame_of(400, 300, [[50, 60], [200, 150]]))
    np.testing.assert_allclose(first.trg_kps_frame, frame_of(200, 320, [[30, 40], [100, 160]]))
    trg_box = frame_of(200, 320, [[5, 10], [180, 300]]).ravel()
    np.testing.assert_allclose(first.trg_box_frame, trg_box)
    np.testing.assert_allclose(first.src_box_frame, frame_of(400, 300, [[10, 20], [390, 280]]).ravel())
    assert first.threshold == pytest.approx(max(trg_box[2] - trg_box[0], trg_box[3] - trg_box[1]))
    assert first.threshold == pytest.approx(290 * 840 / 320)


def test_each_image_listed_once(spair: Path) -> None:
    data = load_spair(spair)
    names = [p.relative_to(spair / "JPEGImages").as_posix() for p in data.images]
    assert names == ["cat/a.jpg", "cat/b.jpg", "cat/c.jpg", "dog/d.jpg", "dog/e.jpg"]


def test_categories_and_limit_per_category(spair: Path) -> None:
    assert [p.id for p in load_spair(spair, categories=["dog"]).pairs] == ["000003-d-e:dog"]
    limited = load_spair(spair, limit=1)
    assert [p.id for p in limited.pairs] == ["000001-a-b:cat", "000003-d-e:dog"]
    assert len(limited.images) == 4
    with pytest.raises(LowMetricError, match="horse"):
        load_spair(spair, categories=["horse"])


def test_keypoints_line_up_with_padded_pixels(spair: Path) -> None:
    """The dot drawn at each keypoint is found, after pad_to_frame, where the frame maps the keypoint."""
    for pair in load_spair(spair).pairs:
        for path, frame_kps in ((pair.src_path, pair.src_kps_frame), (pair.trg_path, pair.trg_kps_frame)):
            padded = np.asarray(pad_to_frame(load_image(path))).mean(axis=2)
            for x, y in frame_kps:
                x0, y0 = int(x) - 15, int(y) - 15
                window = padded[y0:y0 + 31, x0:x0 + 31]
                rows, cols = np.nonzero(window > 128)
                assert len(rows), f"no dot near {x, y} in {path.name}"
                assert cols.mean() + x0 == pytest.approx(x, abs=2.5)
                assert rows.mean() + y0 == pytest.approx(y, abs=2.5)


def test_hash_covers_annotations_and_pixels(spair: Path) -> None:
    data = load_spair(spair)
    before = data.hash
    assert data.image_hashes == {p: content_hash(load_image(p)) for p in data.images}
    assert load_spair(spair).hash == before
    assert load_spair(shutil.copytree(spair, spair.parent / "moved")).hash == before
    pair_file = next((spair / "PairAnnotation" / "test").glob("000003-*"))
    record = json.loads(pair_file.read_text())
    record["trg_kps"] = [[121, 400]]
    pair_file.write_text(json.dumps(record))
    moved = load_spair(spair).hash
    assert moved != before
    dotted(250, 500, [(121, 401)]).save(spair / "JPEGImages" / "dog" / "e.jpg", quality=95)
    assert load_spair(spair).hash not in (before, moved)


def test_image_size_is_the_decoded_size_with_exif_rotation(spair: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise to display
    path = spair / "JPEGImages" / "dog" / "e.jpg"
    Image.open(path).transpose(Image.Transpose.ROTATE_270).save(path, exif=exif, quality=95)
    pair = load_spair(spair, categories=["dog"]).pairs[0]
    assert pair.trg_size == load_image(path).size == (250, 500)


def one_line_error(root: Path, match: str, **kwargs) -> str:
    with pytest.raises(LowMetricError, match=match) as info:
        load_spair(root, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_image_names_the_path(spair: Path) -> None:
    (spair / "JPEGImages" / "cat" / "c.jpg").unlink()
    message = one_line_error(spair, "not found")
    assert str(spair / "JPEGImages" / "cat" / "c.jpg") in message


def test_missing_image_annotation_names_the_path(spair: Path) -> None:
    (spair / "ImageAnnotation" / "dog" / "e.json").unlink()
    assert str(spair / "ImageAnnotation" / "dog" / "e.json") in one_line_error(spair, "annotation not found")


def test_missing_split_names_the_folder(spair: Path) -> None:
    assert str(spair / "PairAnnotation" / "val") in one_line_error(spair, "not found", split="val")


def test_keypoint_count_mismatch_names_the_pair(spair: Path) -> None:
    write_pair(spair, 4, "dog", "e.jpg", "d.jpg", [[120, 400], [10, 10]], [[100, 100]],
               [30, 100, 230, 480], [50, 50, 450, 240], [1])
    assert "000004-e-d:dog" in one_line_error(spair, "keypoint counts differ")


def test_image_size_disagreeing_with_annotation_is_an_error(spair: Path) -> None:
    pair_file = next((spair / "PairAnnotation" / "test").glob("000003-*"))
    record = json.loads(pair_file.read_text())
    record["trg_imsize"] = [500, 250, 3]
    pair_file.write_text(json.dumps(record))
    one_line_error(spair, "trg_imsize")


def test_missing_field_names_the_pair(spair: Path) -> None:
    pair_file = next((spair / "PairAnnotation" / "test").glob("000002-*"))
    record = json.loads(pair_file.read_text())
    del record["trg_bndbox"]
    pair_file.write_text(json.dumps(record))
    assert "000002-a-c:cat" in one_line_error(spair, "trg_bndbox")
