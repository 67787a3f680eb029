"""Matching and PCK against the numpy rendering of SPEC.md section 3, on features with known matches."""

import numpy as np
import pytest
import torch

from low_metric import LowMetricError, PckTable, descriptor_grid, match_keypoints, pck
from low_metric.core.correspondence import match_image_pairs, pad_keypoints, patch_to_pixel
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


# ------------------------------------------------------------------ batched matching (issue 12)
def _pairs_with_padding(p, n_pairs=4, d=24, seed=0):
    """Grids [B, D, P, P] (target = source shifted plus noise), keypoints [B, K, 2] whose pairs have
    different counts (trailing NaN rows are padding), and the per-pair keypoint lists."""
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(n_pairs, d, p, p)).astype(np.float32)
    trg = np.roll(src, shift=(1, 2), axis=(2, 3)) + 0.3 * rng.normal(size=src.shape).astype(np.float32)
    counts = [5, 2, 4, 1][:n_pairs]
    kps = [rng.uniform(0, 840, (k, 2)) for k in counts]
    padded = np.full((n_pairs, max(counts), 2), np.nan)
    for i, k in enumerate(kps):
        padded[i, : len(k)] = k
    return src, trg, kps, padded


def _pck_of(preds, gts, thresholds):
    table = PckTable()
    for i, (pred, gt) in enumerate(zip(preds, gts)):
        table.add("cat", pred, gt, thresholds[i])
    return table.summary()


@pytest.mark.parametrize("p", [16, 32, 60])
@pytest.mark.parametrize("window", [5, 0])
def test_batched_equals_pair_by_pair_and_reference_with_padding(p, window):
    src, trg, kps, padded = _pairs_with_padding(p, seed=p + window)
    batched = match_keypoints(src, trg, padded, window=window).numpy()
    for i, k in enumerate(kps):
        one = match_keypoints(src[i], trg[i], k, window=window).numpy()
        ref = reference.match_keypoints(src[i], trg[i], k, window)
        np.testing.assert_allclose(batched[i, : len(k)], one, atol=0.05)
        np.testing.assert_allclose(batched[i, : len(k)], ref, atol=0.05)
        assert np.isnan(batched[i, len(k):]).all()  # padding passes through as NaN
    # the same PCK whichever way: PckTable.add_batch on padded rows, add pair by pair, the reference
    gts = [k + np.random.default_rng(1).normal(scale=40, size=k.shape) for k in kps]
    thresholds = [200.0, 300.0, 150.0, 400.0]
    table = PckTable()
    table.add_batch(["cat"] * len(kps), batched, pad_keypoints(gts), thresholds)
    one_by_one = _pck_of([match_keypoints(s, t, k, window=window) for s, t, k in zip(src, trg, kps)], gts, thresholds)
    assert table.summary() == one_by_one
    for alpha in (0.1, 0.05):
        expected = 100 * np.mean([reference.pck(reference.match_keypoints(s, t, k, window), g, thr, alpha)
                                  for s, t, k, g, thr in zip(src, trg, kps, gts, thresholds)])
        assert one_by_one["per_image"][f"pck@{alpha:g}"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("p", [16, 32, 60])
@pytest.mark.parametrize("window", [5, 0])
def test_image_pairs_equal_pair_by_pair_and_reference(p, window):
    """match_image_pairs (tokens of N images, pairs by index) against match_keypoints on each pair's
    descriptor grids and the reference, with padded rows and an image used as source and target."""
    src, trg, kps, padded = _pairs_with_padding(p, seed=2 * p + window)
    tokens = torch.from_numpy(np.concatenate([src, trg])).flatten(2).transpose(1, 2)  # [2B, P*P, D]
    n = len(src)
    src_index, trg_index = [0, 1, 2, n + 3], [n, n + 1, n + 2, 3]  # the last pair goes target -> source
    out = match_image_pairs(tokens, (p, p), src_index, trg_index, padded, size=p, window=window,
                            budget_bytes=1)  # one target image per chunk
    grids = np.concatenate([src, trg])
    for i, k in enumerate(kps):
        s, t = grids[src_index[i]], grids[trg_index[i]]
        np.testing.assert_allclose(out[i, : len(k)].numpy(), reference.match_keypoints(s, t, k, window), atol=0.05)
        np.testing.assert_allclose(out[i, : len(k)].numpy(), match_keypoints(s, t, k, window=window).numpy(), atol=0.05)
        assert torch.isnan(out[i, len(k):]).all()


@pytest.mark.parametrize("grid, p", [((16, 16), 60), ((24, 24), 16), ((7, 9), 16), ((16, 16), 32)])
def test_image_pairs_resample_like_descriptor_grid(grid, p):
    """Tokens on a grid other than P x P: the same predictions as descriptor_grid + match_keypoints
    (window soft-argmax, continuous), and the same PCK, within a memory budget or not."""
    rng = np.random.default_rng(3)
    tokens = torch.from_numpy(rng.normal(size=(10, grid[0] * grid[1], 16)).astype(np.float32))
    src = rng.integers(0, 10, 30)
    trg = (src + rng.integers(1, 10, 30)) % 10
    kps = [rng.uniform(0, 840, (int(k), 2)) for k in rng.integers(1, 9, 30)]
    grids = descriptor_grid(tokens, grid, p)
    loop = [match_keypoints(grids[s], grids[t], k) for s, t, k in zip(src, trg, kps)]
    for budget in (1, 1 << 30):
        out = match_image_pairs(tokens, grid, src, trg, pad_keypoints(kps), size=p, budget_bytes=budget)
        for i, k in enumerate(kps):
            np.testing.assert_allclose(out[i, : len(k)].numpy(), loop[i].numpy(), atol=0.05)


def test_image_pairs_with_huge_or_tiny_tokens_match_as_unscaled():
    tokens = torch.randn(4, 64, 8)
    kps = pad_keypoints([np.array([[100.0, 300.0], [700.0, 20.0]]), np.array([[420.0, 420.0]])])
    plain = match_image_pairs(tokens, (8, 8), [0, 2], [1, 3], kps, size=16)
    for scale in (1e30, 1e-30):
        torch.testing.assert_close(match_image_pairs(tokens * scale, (8, 8), [0, 2], [1, 3], kps, size=16), plain,
                                   equal_nan=True)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: match_image_pairs(torch.randn(2, 16, 4), (4, 4), [0], [1, 0], torch.zeros(1, 1, 2)), "same B pairs"),
        (lambda: match_image_pairs(torch.randn(2, 16, 4), (4, 4), [0], [2], torch.zeros(1, 1, 2)), "index the 2 images"),
        (lambda: match_image_pairs(torch.randn(2, 15, 4), (4, 4), [0], [1], torch.zeros(1, 1, 2)), "4x4 grid"),
        (lambda: match_image_pairs(torch.full((2, 16, 4), float("nan")), (4, 4), [0], [1], torch.zeros(1, 1, 2)),
         "NaN or Inf"),
        (lambda: match_image_pairs(torch.randn(2, 16, 4), (4, 4), [0], [1], torch.tensor([[[1.0, float("nan")]]])),
         "padding rows must be all NaN"),
        (lambda: pad_keypoints([np.zeros((2, 3))]), r"expected \[K, 2\]"),
        (lambda: pad_keypoints([np.array([[np.inf, 0.0]])]), "NaN or Inf"),
    ],
)
def test_image_pairs_bad_input(call, message):
    with pytest.raises(LowMetricError, match=message):
        call()
