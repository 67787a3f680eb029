"""The law on the paper's table against an independent least-squares implementation."""

import json

import numpy as np
import pytest

from low_metric import Law, LowMetricError, fit_law, loo_errors, paper_table
from low_metric.sources.tables import PAPER_BENCHMARKS, parse_table

from . import reference


@pytest.mark.parametrize("bench", PAPER_BENCHMARKS)
def test_paper_fit_matches_normal_equations(bench):
    a, c, y = paper_table().benchmark(bench)
    law = fit_law(a, c, y)
    w, r2 = reference.fit_law(a, c, y)
    np.testing.assert_allclose(law.weights, w, atol=1e-6)
    assert law.r2 == pytest.approx(r2, abs=1e-6)


def test_paper_table_is_the_shipped_one():
    t = paper_table()
    assert len(t.names) == 13 and t.benchmarks == list(PAPER_BENCHMARKS)
    assert t.names[0] == "CLIP336" and t.c[3] == pytest.approx(24.51)


def test_prediction_uses_frozen_constants_and_scales_back():
    a, c, y = paper_table().benchmark("mme")
    law = fit_law(a[:10], c[:10], y[:10])
    assert law.y_range == (y[:10].min(), y[:10].max())
    # in-sample prediction on the benchmark's scale equals the fit's residual form
    assert law.predict(a[:10], c[:10]) == pytest.approx(law.ac_score(a[:10], c[:10]) * (y[:10].max() - y[:10].min()) + y[:10].min())
    # a held-out point is normalised with the fit set's constants, not re-normalised with itself
    x = np.array([(a[11] - a[:10].min()) / (a[:10].max() - a[:10].min()), (c[11] - c[:10].min()) / (c[:10].max() - c[:10].min())])
    feats = np.array([1, x[0], x[1], x[0] ** 2, x[0] * x[1], x[1] ** 2])
    assert law.ac_score(a[11], c[11])[0] == pytest.approx(feats @ law.weights)


def test_variants_and_loo():
    a, c, y = paper_table().benchmark("mmbench_en")
    r2 = {k: fit_law(a, c, y, kind=k).r2 for k in ("ac2", "a", "c", "linear")}
    assert r2["ac2"] > max(r2["a"], r2["c"], r2["linear"])  # nested families: the full law fits best
    err = loo_errors(a, c, y)
    manual = []
    for i in range(13):
        keep = np.arange(13) != i
        manual.append(fit_law(a[keep], c[keep], y[keep]).predict(a[i], c[i])[0] - y[i])
    np.testing.assert_allclose(err, manual)
    assert np.sqrt(np.mean(err**2)) > np.sqrt(np.mean((fit_law(a, c, y).predict(a, c) - y) ** 2))  # held-out is harder


def test_save_and_load_round_trip(tmp_path):
    a, c, y = paper_table().benchmark("ok_vqa")
    law = fit_law(a, c, y, benchmark="ok_vqa", protocol_hash="abc")
    law.save(tmp_path / "law.json")
    back = Law.load(tmp_path / "law.json")
    assert back == law
    np.testing.assert_allclose(back.predict(0.5, 15.0), law.predict(0.5, 15.0))
    assert json.loads((tmp_path / "law.json").read_text())["a_range"] == list(law.a_range)


@pytest.mark.parametrize(
    "a, c, y, message",
    [
        ([0.1, 0.2, 0.3, 0.4, 0.5], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5], "needs at least 6 points, got 5"),
        ([0.5] * 6, [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], "A is constant"),
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [3] * 6, [1, 2, 3, 4, 5, 6], "C is constant"),
        ([0.1, 0.2, np.nan, 0.4, 0.5, 0.6], [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], "NaN or Inf"),
        ([0.1, 0.2], [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], "expected 6 values, got 2"),
    ],
)
def test_bad_input(a, c, y, message):
    with pytest.raises(LowMetricError, match=message):
        fit_law(a, c, y)


def test_table_parser_errors():
    with pytest.raises(LowMetricError, match="missing column"):
        parse_table("representation,x\nA,1\n")
    with pytest.raises(LowMetricError, match="non-numeric"):
        parse_table("representation,C,b,A_b\nX,1,oops,0.5\n")
