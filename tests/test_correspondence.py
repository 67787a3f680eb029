"""Matching and PCK against the numpy rendering of SPEC.md section 3, on features with known matches."""

import numpy as np
import pytest
import torch

from low_metric import LowMetricError, PckTable, descriptor_grid, match_keypoints, pck
from low_metric.core.correspondence import patch_to_pixel
from low_metric.core.frame import Frame, box_threshold

from . import reference

P = 16


def shifted_pair(seed=0, d=32, shift=(3, 2), noise=0.05):
    """Target features = source features moved by (dx, dy) patches, plus noise: true matches known."""
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(d, P, P))
    trg = np.roll(src, shift=(shift[1], shift[0]), axis=(1, 2)) + noise * rng.normal(size=(d, P, P))
    return src, trg


def keypoints(rng, k=25):
    return rng.uniform(0, 840, size=(k, 2))


@pytest.mark.parametrize("window", [0, 5, 2])
def test_match_equals_reference(window):
    src, trg = shifted_pair(seed=window)
    kps = keypoints(np.random.default_rng(7))
    ours = match_keypoints(src, trg, kps, window=window).numpy()
    np.testing.assert_allclose(ours, reference.match_keypoints(src, trg, kps, window), atol=1e-3)


def test_nearest_neighbour_finds_the_known_match():
    src, trg = shifted_pair(noise=0.0)
    rng = np.random.default_rng(1)
    cols, rows = rng.integers(0, P - 3, 20), rng.integers(0, P - 2, 20)
    kps = np.stack([cols * 52.5 + 10, rows * 52.5 + 40], axis=1)  # inside patch (col, row)
    pred = match_keypoints(src, trg, kps, window=None).numpy()
    truth = patch_to_pixel(torch.tensor(np.stack([cols + 3, rows + 2], 1), dtype=torch.float32), P).numpy()
    np.testing.assert_allclose(pred, truth)
    assert pck(pred, truth, threshold=840, alpha=0.01) == 1.0


def test_soft_argmax_stays_near_the_match_and_inside_the_grid():
    src, trg = shifted_pair(noise=0.3)
    kps = keypoints(np.random.default_rng(2), 50)
    pred = match_keypoints(src, trg, kps, window=5).numpy()
    assert pred.min() >= 26 and pred.max() <= 15 * 52.5 + 26
    nn = match_keypoints(src, trg, kps, window=0).numpy()
    assert np.median(np.linalg.norm(pred - nn, axis=1)) < 52.5  # within a patch of the hard match


def test_pck_equals_reference_with_scalar_and_per_keypoint_thresholds():
    rng = np.random.default_rng(3)
    gt = rng.uniform(0, 840, (40, 2))
    pred = gt + rng.normal(scale=40, size=gt.shape)
    thr = rng.uniform(100, 800, 40)
    for alpha in (0.1, 0.05, 0.01):
        assert pck(pred, gt, 500.0, alpha) == pytest.approx(reference.pck(pred, gt, 500.0, alpha))
        assert pck(pred, gt, thr, alpha) == pytest.approx(reference.pck(pred, gt, thr, alpha))


def test_pck_table_aggregates_per_image_per_keypoint_and_per_category():
    table = PckTable()
    gt = np.zeros((4, 2))
    table.add("cat", gt + [[1, 0], [1, 0], [50, 0], [50, 0]], gt, 100.0)  # 2 of 4 within 10 px
    table.add("dog", gt[:1] + [[1, 0]], gt[:1], 100.0)  # 1 of 1
    s = table.summary()
    assert s["C"] == pytest.approx(100 * (0.5 + 1.0) / 2)  # per image: mean of per-pair PCK
    assert s["per_keypoint"]["pck@0.1"] == pytest.approx(100 * 3 / 5)
    assert s["per_image"]["pck@0.01"] == pytest.approx(0.0)
    assert s["per_category"]["cat"]["pck@0.1"] == pytest.approx(50.0) and s["per_category"]["dog"]["pairs"] == 1
    assert (s["pairs"], s["keypoints"]) == (2, 5)
    with pytest.raises(LowMetricError, match="C is undefined"):
        PckTable().summary()


def test_descriptor_grid_is_normalised_and_resampled():
    tokens = torch.randn(2, 24 * 24, 8)
    grid = descriptor_grid(tokens, (24, 24), 16)
    assert grid.shape == (2, 8, 16, 16)
    torch.testing.assert_close(grid.norm(dim=1), torch.ones(2, 16, 16))
    same = descriptor_grid(tokens[:, : 16 * 16], (16, 16), 16)
    torch.testing.assert_close(same[0, :, 3, 5], torch.nn.functional.normalize(tokens[0, 3 * 16 + 5], dim=0))


def test_frame_maps_points_and_boxes():
    f = Frame(width=420, height=210)  # scale 2, resized 840x420, padded 210 rows above
    assert f.resized == (840, 420) and f.offset == (0, 210)
    np.testing.assert_allclose(f.points([[0, 0], [420, 210]]), [[0, 210], [840, 630]])
    np.testing.assert_allclose(f.box([10, 10, 110, 60]), [20, 230, 220, 330])
    assert box_threshold(f.box([10, 10, 110, 60])) == 200


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: match_keypoints(np.ones((4, 16, 16)), np.ones((4, 8, 8)), np.ones((1, 2))), "differ in shape"),
        (lambda: match_keypoints(np.ones((4, 16, 16)), np.ones((4, 16, 16)), np.ones((1, 3))), r"\[K, 2\]"),
        (lambda: match_keypoints(np.full((4, 16, 16), np.nan), np.ones((4, 16, 16)), np.ones((1, 2))), "NaN or Inf"),
        (lambda: pck(np.ones((3, 2)), np.ones((2, 2)), 1.0), "must both be"),
        (lambda: pck(np.ones((3, 2)), np.ones((3, 2)), [1.0, 2.0]), "one per keypoint"),
        (lambda: pck(np.ones((3, 2)), np.ones((3, 2)), 0.0), "> 0"),
        (lambda: pck(np.zeros((0, 2)), np.zeros((0, 2)), 1.0), "no keypoints"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(LowMetricError, match=message):
        call()


def test_c_is_always_pck_at_alpha_0_10():
    gt = np.zeros((4, 2))
    pred = gt + [[3, 0], [3, 0], [8, 0], [50, 0]]  # threshold 100: 2 within 0.05, 3 within 0.10
    only_strict = PckTable(alphas=(0.05, 0.01))
    only_strict.add("cat", pred, gt, 100.0)
    s = only_strict.summary()
    assert s["C"] == pytest.approx(75.0) and s["per_image"]["pck@0.1"] == pytest.approx(75.0)
    assert list(s["per_image"]) == ["pck@0.1", "pck@0.05", "pck@0.01"] and s["per_image"]["pck@0.05"] == pytest.approx(50.0)
