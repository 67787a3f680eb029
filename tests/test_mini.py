"""The built-in mini benchmark: documented contents, annotations that agree with the pixels, licences."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import map_coordinates

import low_metric.sources.mini as mini_module
from low_metric.sources.images import load_image
from low_metric.sources.mini import load_mini, mini_benchmark_root, mini_images
from low_metric.sources.spair import SpairPair, SpairSet

PAIRS = {"face": 16, "graffiti": 4, "homography": 36}
IMAGES = {"face": 8, "graffiti": 4, "homography": 45}


@pytest.fixture(scope="module")
def mini() -> SpairSet:
    return load_mini()


def pair_record(pair: SpairPair) -> dict:
    return json.loads((mini_benchmark_root() / "PairAnnotation" / "test" / f"{pair.id}.json").read_text())


def image_record(path: Path) -> dict:
    category, name = path.parts[-2:]
    return json.loads((mini_benchmark_root() / "ImageAnnotation" / category / f"{Path(name).stem}.json").read_text())


def test_documented_counts(mini: SpairSet) -> None:
    assert mini.categories == tuple(PAIRS)
    assert {c: sum(p.category == c for p in mini.pairs) for c in PAIRS} == PAIRS
    assert {c: sum(p.parent.name == c for p in mini.images) for c in IMAGES} == IMAGES
    on_disk = sorted((mini_benchmark_root() / "JPEGImages").rglob("*.jpg"))
    assert list(mini.images) == on_disk
    assert all(len(p.kps_ids) >= 6 for p in mini.pairs)
    assert "56 test pairs, 57 images" in mini_module.__doc__
    assert "56 pairs, 57 images" in (mini_benchmark_root() / "SOURCES.md").read_text()


def test_small_images_and_small_on_disk(mini: SpairSet) -> None:
    total = sum(p.stat().st_size for p in mini_benchmark_root().rglob("*") if p.is_file())
    assert total < 6_000_000
    for path in mini.images:
        with Image.open(path) as image:
            assert image.format == "JPEG" and max(image.size) <= 640


def test_every_keypoint_and_box_lies_inside_its_image(mini: SpairSet) -> None:
    for pair in mini.pairs:
        for kps, frame_kps, (w, h) in ((pair.src_kps, pair.src_kps_frame, pair.src_size),
                                       (pair.trg_kps, pair.trg_kps_frame, pair.trg_size)):
            assert (kps >= 0).all() and (kps[:, 0] <= w - 1).all() and (kps[:, 1] <= h - 1).all(), pair.id
            assert ((frame_kps >= 0) & (frame_kps < 840)).all(), pair.id
        for box, (w, h) in ((pair.src_box, pair.src_size), (pair.trg_box, pair.trg_size)):
            assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h, pair.id
        assert 0 < pair.threshold <= 840


def test_homography_pairs_map_source_keypoints_through_h(mini: SpairSet) -> None:
    """Independent check: target kps = H(source kps), and every source keypoint H keeps inside is there."""
    checked = 0
    for pair in mini.pairs:
        record = pair_record(pair)
        if "homography" not in record:
            continue
        h = np.array(record["homography"])
        mapped = np.c_[pair.src_kps, np.ones(len(pair.src_kps))] @ h.T
        np.testing.assert_allclose(mapped[:, :2] / mapped[:, 2:], pair.trg_kps, atol=0.02, err_msg=pair.id)
        src_all = image_record(pair.src_path)["kps"]
        expected = []
        for key, xy in src_all.items():
            if xy is None:
                continue
            u, v, s = h @ [xy[0], xy[1], 1.0]
            if 0 <= u / s <= pair.trg_size[0] - 1 and 0 <= v / s <= pair.trg_size[1] - 1:
                expected.append(int(key))
        trg_visible = {int(k) for k, xy in image_record(pair.trg_path)["kps"].items() if xy is not None}
        assert list(pair.kps_ids) == [k for k in expected if k in trg_visible], pair.id
        checked += 1
    assert checked == PAIRS["homography"] + PAIRS["graffiti"]


def warped_correlation(src: np.ndarray, trg: np.ndarray, h: np.ndarray) -> float:
    """Pearson correlation of target pixels (every 4th) with the source sampled at H^-1 of them."""
    ys, xs = np.mgrid[0:trg.shape[0]:4, 0:trg.shape[1]:4]
    back = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)]).T @ np.linalg.inv(h).T
    sx, sy = back[:, 0] / back[:, 2], back[:, 1] / back[:, 2]
    keep = (sx >= 0) & (sx <= src.shape[1] - 1) & (sy >= 0) & (sy <= src.shape[0] - 1)
    sampled = map_coordinates(src, [sy[keep], sx[keep]], order=1)
    return float(np.corrcoef(sampled, trg[ys.ravel()[keep], xs.ravel()[keep]])[0, 1])


def test_targets_show_the_source_through_h(mini: SpairSet) -> None:
    """Pixels agree with the stored H (photometric changes allowed), better than with H moved by 4 px."""
    for pair in mini.pairs:
        record = pair_record(pair)
        if "homography" not in record:
            continue
        h = np.array(record["homography"])
        src, trg = (np.asarray(load_image(p), float).mean(axis=2) for p in (pair.src_path, pair.trg_path))
        corr = warped_correlation(src, trg, h)
        assert corr > 0.8, (pair.id, corr)
        for dx, dy in ((4, 0), (-4, 0), (0, 4), (0, -4)):
            moved = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1.0]]) @ h
            assert warped_correlation(src, trg, moved) < corr, (pair.id, dx, dy)


def test_face_landmarks_keep_their_side_in_every_variant(mini: SpairSet) -> None:
    """iBUG 0/16 (jaw ends), 36/45 (outer eye corners), 48/54 (mouth corners): same image side in every
    variant, mirrored ones included (their landmark ids were permuted left<->right)."""
    faces = [p for p in mini.images if p.parent.name == "face"]
    for path in faces:
        kps = image_record(path)["kps"]
        assert len(kps) == 68
        for left, right in ((0, 16), (36, 45), (48, 54)):
            if kps[str(left)] is not None and kps[str(right)] is not None:
                assert kps[str(left)][0] < kps[str(right)][0], (path.name, left, right)
    for pair in mini.pairs:
        if pair.category == "face":
            assert pair.src.split("_")[0] != pair.trg.split("_")[0], pair.id
            assert set(pair.kps_ids) <= set(range(68))


def test_sources_file_lists_every_image_with_a_licence(mini: SpairSet) -> None:
    text = (mini_benchmark_root() / "SOURCES.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line.split("|") for line in text.splitlines()
            if line.startswith("| `JPEGImages/")}
    names = {p.relative_to(mini_benchmark_root()).as_posix() for p in mini.images}
    assert set(rows) == names
    for name, cells in rows.items():
        origin, package, licence, processing = (c.strip() for c in cells[2:6])
        assert origin and package and processing, name
        assert any(word in licence for word in ("CC0", "public domain", "BSD", "Apache", "no known copyright")), name
    assert "lenna" not in text.lower() and "breakingbad" not in text.lower()


def test_image_list_for_the_a_score(mini: SpairSet) -> None:
    images = mini_images()
    assert (images.requested, images.loaded, images.skipped) == (57, 57, ())
    assert images.ids == tuple(str(p) for p in mini.images)
    assert len(set(images.hashes)) == 57


def test_categories_and_limit(mini: SpairSet) -> None:
    assert len(load_mini(categories=["graffiti"]).pairs) == 4
    limited = load_mini(limit=2)
    assert [p.category for p in limited.pairs] == ["face", "face", "graffiti", "graffiti", "homography", "homography"]
    assert limited.hash != mini.hash
