"""A score against the numpy rendering of SPEC.md section 2, invariants, and bad input."""

import numpy as np
import pytest
import torch

import low_metric
from low_metric import LowMetricError, a_score, alignment_per_image, ridge_a_score
from low_metric.core.alignment import calibration_split, fit_ridge, resample_tokens

from . import reference


def mixed_tokens(rng, counts, d):
    return [rng.normal(size=(n, d)).astype(np.float32) for n in counts]


def test_matches_reference_on_mixed_token_counts():
    rng = np.random.default_rng(0)
    target = mixed_tokens(rng, [196, 256, 49, 196, 576], 32)
    ref = mixed_tokens(rng, [256, 576, 256, 16, 576], 32)
    assert a_score(target, ref) == pytest.approx(reference.a_score(target, ref), abs=1e-5)


def test_chunking_does_not_change_the_result():
    rng = np.random.default_rng(1)
    target = mixed_tokens(rng, [64] * 7 + [100] * 3, 16)
    ref = mixed_tokens(rng, [81] * 10, 16)
    whole = alignment_per_image(target, ref)
    tiny_budget = alignment_per_image(target, ref, budget_bytes=1)
    np.testing.assert_allclose(whole, tiny_budget, atol=1e-6)


def test_self_alignment_is_one_and_reference_order_is_irrelevant():
    rng = np.random.default_rng(2)
    tokens = rng.normal(size=(4, 50, 24))
    assert a_score(tokens, tokens) == pytest.approx(1.0, abs=1e-6)
    ref = rng.normal(size=(4, 60, 24))
    shuffled = np.stack([r[rng.permutation(60)] for r in ref])
    assert a_score(tokens, shuffled) == pytest.approx(a_score(tokens, ref), abs=1e-6)
    assert a_score(tokens, ref) < 0.9  # random tokens are far from aligned


def test_several_references_average_and_inputs_may_be_tensors():
    rng = np.random.default_rng(3)
    t = torch.from_numpy(rng.normal(size=(3, 20, 8)))
    r1, r2 = rng.normal(size=(3, 30, 8)), rng.normal(size=(3, 12, 8))
    both = a_score(t, {"clip224": r1, "clip336": r2})
    assert both == pytest.approx((reference.a_score(list(t.numpy()), list(r1)) + reference.a_score(list(t.numpy()), list(r2))) / 2, abs=1e-5)


@pytest.mark.parametrize(
    "target, ref, message",
    [
        ([], [np.ones((3, 4))], "empty"),
        ([np.ones((3, 4))], [np.ones((3, 5))], "width D=4 differs from reference width D=5"),
        ([np.full((3, 4), np.nan)], [np.ones((3, 4))], "NaN or Inf"),
        ([np.ones((3, 4))], [np.array([[np.inf] * 4])], "NaN or Inf"),
        ([np.ones((3, 4)), np.ones((3, 4))], [np.ones((3, 4))], "2 images but reference has 1"),
        ([np.ones((0, 4))], [np.ones((3, 4))], "no tokens"),
        ([np.ones(4)], [np.ones((3, 4))], "expected 2 dimensions"),
    ],
)
def test_bad_input_is_one_clear_line(target, ref, message):
    with pytest.raises(LowMetricError, match=message) as err:
        a_score(target, ref)
    assert "\n" not in str(err.value)


def test_public_names():
    assert low_metric.a_score is a_score


def test_resample_tokens_is_bilinear_and_identity_on_same_grid():
    x = torch.arange(4.0).reshape(1, 4, 1)  # 2x2 grid [[0, 1], [2, 3]]
    assert torch.equal(resample_tokens(x, (2, 2), (2, 2)), x)
    up = resample_tokens(x, (2, 2), (4, 4)).reshape(4, 4)
    assert up[0, 0] == 0 and up[3, 3] == 3 and up[1, 1] == pytest.approx(0.75)  # half-pixel bilinear
    with pytest.raises(LowMetricError, match="do not form a 3x3 grid"):
        resample_tokens(x, (3, 3), (4, 4))


def test_ridge_recovers_a_linear_map_and_self_alignment_is_one():
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.normal(size=(2000, 16)))
    rotation = torch.linalg.qr(torch.from_numpy(rng.normal(size=(16, 16))))[0]
    y = torch.nn.functional.normalize(x, dim=-1) @ rotation  # unit norm: the fitted map is exactly linear
    ridge = fit_ridge(x, y, strength=1e-6)
    cos = torch.nn.functional.cosine_similarity(ridge(x), y.float(), dim=-1)
    assert cos.min() > 0.999

    tokens = torch.from_numpy(rng.normal(size=(12, 36, 32)).astype(np.float32))
    own = ridge_a_score(tokens, (6, 6), {"self": (tokens, (6, 6))}, strength=1e-3)
    assert own.a == pytest.approx(1.0, abs=1e-3)
    assert sorted(own.calibration + own.held_out) == list(range(12))
    other = ridge_a_score(tokens, (6, 6), {"noise": (torch.randn(12, 16, 32), (4, 4))})
    assert other.a < own.a - 0.1


def test_calibration_split_is_seeded_and_rejects_too_few_images():
    a = calibration_split(10, 0.5, seed=3)
    assert [x.tolist() for x in a] == [x.tolist() for x in calibration_split(10, 0.5, seed=3)]
    assert len(a[0]) == 5 and not set(a[0]) & set(a[1])
    with pytest.raises(LowMetricError, match="at least 2 images"):
        calibration_split(1, 0.5, 0)


def feature_like_tokens(rng, n, t, d, rank=8):
    """Tokens shaped like a real encoder's: a strong shared direction, a few dominant components
    (a decaying spectrum) and noise, so the ridge system is ill-conditioned as on real features."""
    mean = rng.normal(size=d) * 3
    basis = rng.normal(size=(rank, d)) * (2.0 ** -np.arange(rank))[:, None] * 4
    return (mean + rng.normal(size=(n, t, rank)) @ basis + 0.3 * rng.normal(size=(n, t, d))).astype(np.float32)


@pytest.mark.parametrize("strength", [1e-3, 1e-6])
@pytest.mark.parametrize("d", [64, 256])
def test_float32_ridge_equals_the_float64_reference(d, strength):
    """The ridge's products run in float32 (its solve in float64). On feature-like tokens, A stays
    within 1e-4 of a float64 numpy rendering of SPEC 2: ten times below the 1e-3 resolution of the
    paper's A values (e.g. 0.788125 = 807/1024), so no ranking can change."""
    rng = np.random.default_rng(d)
    target = feature_like_tokens(rng, 12, 49, d)
    ref = np.tanh(target @ rng.normal(size=(d, 48)).astype(np.float32) / np.sqrt(d)) + 0.1 * rng.normal(
        size=(12, 49, 48)).astype(np.float32)  # a non-linear function of the target: not exactly linear
    ours = ridge_a_score(torch.from_numpy(target), (7, 7), {"r": (torch.from_numpy(ref), (7, 7))}, strength=strength)
    expected = reference.ridge_a_score(target, ref, ours.calibration, ours.held_out, strength)
    assert ours.a == pytest.approx(expected, abs=1e-4)
    assert 0.2 < expected < 0.999  # a meaningful, not saturated, alignment


def test_a_score_keeps_inputs_untouched_and_takes_float64_and_bfloat16():
    rng = np.random.default_rng(5)
    t = torch.from_numpy(rng.normal(size=(3, 40, 16)))
    r = torch.from_numpy(rng.normal(size=(3, 30, 16)))
    t_copy, r_copy = t.clone(), r.clone()
    expected = reference.a_score(list(t.numpy()), list(r.numpy()))
    assert a_score(t, r) == pytest.approx(expected, abs=1e-5)
    assert torch.equal(t, t_copy) and torch.equal(r, r_copy)  # nothing normalised in place
    assert a_score(t.bfloat16(), r.bfloat16()) == pytest.approx(
        reference.a_score(list(t.bfloat16().double().numpy()), list(r.bfloat16().double().numpy())), abs=1e-5)


def test_ridge_refuses_a_nan_naming_the_image():
    tokens = torch.randn(6, 16, 8)
    tokens[4, 3, 2] = float("nan")
    with pytest.raises(LowMetricError, match=r"target\[4\]: contains NaN or Inf"):
        ridge_a_score(tokens, (4, 4), {"r": (torch.randn(6, 16, 8), (4, 4))})
    with pytest.raises(LowMetricError, match=r"reference r\[4\]: contains NaN or Inf"):
        ridge_a_score(torch.randn(6, 16, 8), (4, 4), {"r": (tokens, (4, 4))})
