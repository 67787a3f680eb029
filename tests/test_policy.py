"""The AC policy: grid sampling invariants, the paper-table simulation, and interactive use."""

import json

import numpy as np
import pytest

from low_metric import LowMetricError, paper_table, recommend, simulate
from low_metric.core.policy import (
    DEFAULT_RULE,
    RULES,
    best_kept_rule,
    cells,
    law_predictions,
    next_candidate,
    paper_rule,
    unit_square,
)


def test_beats_random_at_every_budget_from_2_to_5_on_the_paper_table():
    t = paper_table()
    curves = [simulate(*t.benchmark(b), budget=5, trials=200, seed=0) for b in t.benchmarks]
    ac = np.mean([r.ac for r in curves], axis=0)
    rnd = np.mean([r.random for r in curves], axis=0)
    print("AC    ", np.round(ac, 3), "\nrandom", np.round(rnd, 3))
    assert (ac[1:5] > rnd[1:5]).all()
    # random order: success only when the best itself has been fine-tuned, i.e. about n / 13
    np.testing.assert_allclose(rnd, np.arange(1, 6) / 13, atol=0.04)


def test_first_picks_cover_distinct_level_one_cells():
    rng = np.random.default_rng(0)
    a, c = rng.uniform(size=200), rng.uniform(size=200)
    a_n, c_n = unit_square(a, c)
    observed = np.zeros(200, dtype=bool)
    for _ in range(4):
        observed[next_candidate(a_n, c_n, observed, rng)] = True
    assert len(set(cells(a_n, c_n, 1)[observed])) == 4  # one per quadrant before any level-2 pick
    observed[next_candidate(a_n, c_n, observed, rng)] = True
    level2 = cells(a_n, c_n, 2)[observed]
    assert len(set(level2)) == 5  # the fifth lands in a level-2 cell holding no fine-tuned one


def test_sampling_visits_everyone_once_even_with_duplicates():
    a = np.array([0.1, 0.1, 0.1, 0.9, 0.5])
    c = np.array([1.0, 1.0, 1.0, 2.0, 3.0])
    a_n, c_n = unit_square(a, c)
    observed = np.zeros(5, dtype=bool)
    rng = np.random.default_rng(1)
    order = []
    while (i := next_candidate(a_n, c_n, observed, rng)) is not None:
        assert not observed[i]
        observed[i] = True
        order.append(i)
    assert sorted(order) == list(range(5))


def test_simulation_is_seeded():
    a, c, y = paper_table().benchmark("mme")
    r1, r2 = simulate(a, c, y, budget=4, trials=50, seed=3), simulate(a, c, y, budget=4, trials=50, seed=3)
    np.testing.assert_array_equal(r1.ac, r2.ac)


def test_recommend_interactive():
    t = paper_table()
    a, c, y = t.benchmark("mmbench_en")
    names = t.names
    observed = {n: float(s) for n, s in zip(names, y) if n in ("DINOv2", "SD1.5", "CLIP224")}
    rec = recommend(names, a, c, observed, k=3, seed=0)
    assert rec.next not in observed and rec.next in names
    assert len(rec.top) == 3 and rec.predicted is not None
    for n in observed:  # a min-norm fit through 3 points interpolates them
        assert rec.predicted[n] == pytest.approx(observed[n], abs=1e-6)
    none_yet = recommend(names, a, c, {}, seed=0)
    assert none_yet.predicted is None and none_yet.top == [] and none_yet.next in names
    with pytest.raises(LowMetricError, match="not among the candidates: nope"):
        recommend(names, a, c, {"nope": 1.0})
    with pytest.raises(LowMetricError, match="A is constant"):
        recommend(["x", "y"], np.array([1.0, 1.0]), np.array([1.0, 2.0]), {})


# ------------------------------------------------------------------------------------- the two metrics and the rules
def test_paper_rule_reproduces_the_official_simulation():
    """DESIGN.md: the official AC_sample.py + validate_run.py on the released table, 2000 trials, mean of
    the 8 benchmarks: reached .091 .542 .732 .850 .903, current .091 .533 .582 .667 .629."""
    t = paper_table()
    curves = [simulate(*t.benchmark(b), budget=5, trials=600, seed=1, rule="paper") for b in t.benchmarks]
    reached = np.mean([r.reached for r in curves], axis=0)
    current = np.mean([r.current for r in curves], axis=0)
    print("reached", np.round(reached, 3), "\ncurrent", np.round(current, 3))
    np.testing.assert_allclose(reached, [0.091, 0.542, 0.732, 0.850, 0.903], atol=0.035)
    np.testing.assert_allclose(current, [0.091, 0.533, 0.582, 0.667, 0.629], atol=0.035)
    assert all(r.rule == "paper" for r in curves)


def test_reached_is_the_running_best_of_current():
    a, c, y = paper_table().benchmark("seed_image")
    for rule in RULES:
        r = simulate(a, c, y, budget=6, trials=150, seed=2, rule=rule)
        assert r.reached[0] == r.current[0]
        assert (np.diff(r.reached) >= 0).all() and (r.reached >= r.current - 1e-12).all()
        np.testing.assert_array_equal(r.ac, r.current)


def reference_law(a_n, c_n, observed, y_obs):
    """scikit-learn's LinearRegression on PolynomialFeatures(2), as validate_run.py: centred, pseudo-inverse."""
    x = np.column_stack([a_n, c_n, a_n**2, a_n * c_n, c_n**2])
    xo = x[observed]
    w = np.linalg.pinv(xo - xo.mean(0)) @ (y_obs - y_obs.mean())
    return (x - xo.mean(0)) @ w + y_obs.mean()


@pytest.mark.parametrize("n", [2, 4, 6, 9])
def test_the_laws_of_the_rules_against_a_reference(n):
    t = paper_table()
    a_n, c_n = unit_square(*t.benchmark("mme")[:2])
    y = t.scores["mme"]
    observed = np.zeros(13, dtype=bool)
    observed[np.random.default_rng(n).choice(13, size=n, replace=False)] = True
    plain = law_predictions(a_n, c_n, observed, y[observed])
    np.testing.assert_allclose(plain, reference_law(a_n, c_n, observed, y[observed]), rtol=1e-7, atol=1e-7)
    if n <= 6:  # under-determined or exact: the minimum-norm law goes through the observed scores
        np.testing.assert_allclose(plain[observed], y[observed], atol=1e-6)
    ridged = law_predictions(a_n, c_n, observed, y[observed], ridge=0.01)
    x = np.column_stack([a_n, c_n, a_n**2, a_n * c_n, c_n**2])
    z = x[observed] - x[observed].mean(0)
    w = np.linalg.solve(z.T @ z + 0.01 * n * np.eye(5), z.T @ (y[observed] - y[observed].mean()))
    np.testing.assert_allclose(ridged, (x - x[observed].mean(0)) @ w + y[observed].mean(), rtol=1e-9)
    top, _ = paper_rule(a_n, c_n, observed, y[observed], 3)
    assert list(top) == list(np.argsort(-plain, kind="stable")[:3])


def test_best_kept_keeps_the_best_and_alternates_the_laws():
    t = paper_table()
    a_n, c_n = unit_square(*t.benchmark("ok_vqa")[:2])
    y = t.scores["ok_vqa"]
    observed = np.zeros(13, dtype=bool)
    observed[[0, 3, 7, 9]] = True
    top, estimate = best_kept_rule(a_n, c_n, observed, y[observed], 3)
    assert top[0] == [0, 3, 7, 9][int(np.argmax(y[[0, 3, 7, 9]]))]
    ridged = law_predictions(a_n, c_n, observed, y[observed], ridge=0.01)
    plain = law_predictions(a_n, c_n, observed, y[observed])
    untried = ~observed
    assert top[1] == np.flatnonzero(untried)[np.argmax(ridged[untried])]
    assert top[2] == [i for i in np.argsort(-plain) if untried[i] and i != top[1]][0]
    np.testing.assert_allclose(estimate[observed], y[observed])
    two = np.zeros(13, dtype=bool)
    two[[3, 7]] = True  # with 2: the best observed competes on the plain law's scale, the other is left out
    top2, _ = best_kept_rule(a_n, c_n, two, y[two], 3)
    worst = [3, 7][int(np.argmin(y[[3, 7]]))]
    assert worst not in top2 and len(set(top2)) == 3


def test_best_kept_improves_current_without_losing_reached_on_the_paper_table():
    t = paper_table()
    paper = [simulate(*t.benchmark(b), budget=5, trials=200, seed=4, rule="paper") for b in t.benchmarks]
    kept = [simulate(*t.benchmark(b), budget=5, trials=200, seed=4, rule="best-kept") for b in t.benchmarks]
    mean = {name: {k: np.mean([getattr(r, k) for r in runs], axis=0) for k in ("reached", "current")}
            for name, runs in (("paper", paper), ("best-kept", kept))}
    print({n: {k: np.round(v, 3) for k, v in m.items()} for n, m in mean.items()})
    assert (mean["best-kept"]["reached"][1:] >= mean["paper"]["reached"][1:] - 0.01).all()
    assert mean["best-kept"]["current"][4] > mean["paper"]["current"][4] + 0.05


def test_policy_cli_json_has_the_spec_keys(capsys):
    from low_metric.cli import main

    assert main(["policy", "--table", "paper", "--benchmark", "all", "--budget", "4", "--trials", "30", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rule"] == "best-kept"
    for curves in [out["mean"], *out["benchmarks"].values()]:
        assert {"reached", "current", "random"} <= set(curves) and all(len(curves[k]) == 4 for k in curves)
    assert set(out["benchmarks"]) == set(paper_table().benchmarks)
    assert main(["policy", "--benchmark", "mme", "--budget", "3", "--trials", "20", "--rule", "paper"]) == 0
    text = capsys.readouterr().out
    assert "rule paper" in text and "reached" in text and "current" in text


def test_recommend_says_which_rule():
    t = paper_table()
    a, c, y = t.benchmark("mme")
    observed = {n: float(s) for n, s in zip(t.names, y) if n in ("DINOv2", "SD1.5", "CLIP224", "SigLIP")}
    for rule in RULES:
        rec = recommend(t.names, a, c, observed, rule=rule)
        assert rec.rule == rule and len(rec.top) == 3
    assert recommend(t.names, a, c, observed).rule == DEFAULT_RULE == "best-kept"
    assert recommend(t.names, a, c, observed).top[0] == "CLIP224"  # the best fine-tuned keeps its place
    with pytest.raises(LowMetricError, match="unknown recommendation rule"):
        recommend(t.names, a, c, observed, rule="magic")
