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
