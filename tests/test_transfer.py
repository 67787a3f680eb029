"""Transfer calibration (SPEC 4b): maps onto the paper's scale, the 13-row law, intervals, extrapolation,
calibration files read back checked, and `low-metric calibrate --anchors` / `predict` / `ac` agreeing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from low_metric import LowMetricError, paper_table
from low_metric.cli import main
from low_metric.core.transfer import fit_affine
from low_metric.metric import metric_file
from low_metric.scoring.calibration import (
    build_calibration,
    check_calibration,
    load_calibration,
    paper_calibration,
    place,
    predict,
)
from low_metric.scoring.results import protocol_hash, write_json_atomic

from . import reference

T = paper_table()
ANCHORS = ("CLIP336", "CLIP224", "OpenCLIP", "DINOv2", "SigLIP", "CLIP224+DINOv2", "CLIP336+DINOv2")
OTHERS = [n for n in T.names if n not in ANCHORS]
PROTOCOL = {"data": "somewhere", "mode": "ridge"}


def own(i: int, a_scale=(0.5, -0.1), c_scale=(2.0, 3.0), noise=None) -> dict:
    """Representation i measured 'elsewhere': an affine image of the paper's A per benchmark and C."""
    na, nc = noise if noise is not None else ({b: 0.0 for b in T.benchmarks}, 0.0)
    return {"A": {b: a_scale[0] * T.a[b][i] + a_scale[1] + na[b] for b in T.benchmarks},
            "C": c_scale[0] * T.c[i] + c_scale[1] + nc}


def anchors(**kw) -> dict:
    return {n: own(T.names.index(n), **kw) for n in ANCHORS}


def single_anchors() -> dict:
    """Anchors with one A each (the mean of their per-benchmark own A)."""
    return {n: {"A": float(np.mean(list(v["A"].values()))), "C": v["C"]} for n, v in anchors().items()}


def placed(cal: dict, values: dict) -> dict:
    return place(cal, values["A"], values["C"])


def released_prediction(bench: str, i: int) -> float:
    """The 13-row law at the paper's own values, by the normal equations (tests/reference.py)."""
    a, c, y = T.benchmark(bench)
    w, _ = reference.fit_law(a, c, y)

    def mm(v, ref):
        return (v - ref.min()) / (ref.max() - ref.min())

    x, z = mm(a[i], a), mm(c[i], c)
    yn = w @ np.array([1, x, z, x * x, x * z, z * z])
    return float(yn * (y.max() - y.min()) + y.min())


def test_exact_affine_measurements_recover_the_released_law():
    cal = build_calibration(anchors(), protocol=PROTOCOL)
    for name, (alpha, beta) in cal["maps"]["A"].items():
        assert alpha == pytest.approx(2.0) and beta == pytest.approx(0.2), name  # the inverse of own = 0.5 A - 0.1
    assert cal["maps"]["C"] == pytest.approx([0.5, -1.5])
    assert max(cal["transfer_rmse"].values()) < 1e-9
    for name in OTHERS:  # the 6 representations that are no anchors
        i = T.names.index(name)
        out = placed(cal, own(i))
        for b in T.benchmarks:
            assert out["predicted"][b] == pytest.approx(released_prediction(b, i), abs=1e-6), (name, b)
            lo, hi = out["interval"][b]
            assert hi - out["predicted"][b] == pytest.approx(cal["law_rmse"][b]) == pytest.approx(out["predicted"][b] - lo)
            assert out["mapped"]["A"][b] == pytest.approx(T.a[b][i])
        assert out["mapped"]["C"] == pytest.approx(T.c[i])
        assert not any(out["extrapolation"].values())  # the released rows themselves are inside their range


def test_identity_calibration_is_the_released_law_and_its_loo_error():
    cal = paper_calibration()
    i = T.names.index("SDXL")
    out = place(cal, {b: T.a[b][i] for b in T.benchmarks}, T.c[i])
    for b in T.benchmarks:
        assert out["predicted"][b] == pytest.approx(released_prediction(b, i), abs=1e-6)
        a, c, y = T.benchmark(b)
        loo = [reference_fit_predict(a, c, y, j) - y[j] for j in range(13)]
        assert cal["law_rmse"][b] == pytest.approx(np.sqrt(np.mean(np.square(loo))), rel=1e-6)


def reference_fit_predict(a, c, y, j):
    keep = np.arange(len(y)) != j
    w, _ = reference.fit_law(a[keep], c[keep], y[keep])

    def mm(v, ref):
        return (v - ref.min()) / (ref.max() - ref.min())

    x, z = mm(a[j], a[keep]), mm(c[j], c[keep])
    return float((w @ np.array([1, x, z, x * x, x * z, z * z])) * (y[keep].max() - y[keep].min()) + y[keep].min())


def test_a_map_that_reverses_the_order_is_refused():
    with pytest.raises(LowMetricError, match="reverse the paper's order"):
        fit_affine([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], "C map")
    reversed_c = {n: {**a, "C": -a["C"]} for n, a in anchors().items()}
    with pytest.raises(LowMetricError, match=r"C map: the anchors' own values reverse the paper's order \(alpha = -"):
        build_calibration(reversed_c, protocol=PROTOCOL)


def test_interval_widens_with_anchor_noise():
    rng = np.random.default_rng(0)
    draws = {n: ({b: rng.standard_normal() for b in T.benchmarks}, rng.standard_normal()) for n in ANCHORS}
    widths = []
    for level in (0.0, 0.005, 0.02):
        noisy = {n: own(T.names.index(n), noise=({b: level * v for b, v in na.items()}, 20 * level * nc))
                 for n, (na, nc) in draws.items()}
        cal = build_calibration(noisy, protocol=PROTOCOL)
        out = placed(cal, own(T.names.index("SD1.5")))
        widths.append({b: out["interval"][b][1] - out["interval"][b][0] for b in T.benchmarks})
    for b in T.benchmarks:
        assert widths[0][b] < widths[1][b] < widths[2][b], b
        assert widths[0][b] == pytest.approx(2 * paper_calibration()["law_rmse"][b])  # no noise: the law's error alone


def test_extrapolation_is_flagged():
    cal = build_calibration(anchors(), protocol=PROTOCOL)
    inside = placed(cal, own(T.names.index("DiT")))
    assert not any(inside["extrapolation"].values())
    beyond_c = place(cal, own(0)["A"], 2.0 * (T.c.max() + 5) + 3.0)  # C past the best released C
    assert all(beyond_c["extrapolation"].values())
    a = own(0)["A"]
    one_a = {**a, "mme": 0.5 * (T.a["mme"].max() + 0.1) - 0.1}
    flags = place(cal, one_a, own(0)["C"])["extrapolation"]
    assert flags["mme"] and not any(v for b, v in flags.items() if b != "mme")


def test_one_a_for_all_benchmarks():
    cal = build_calibration(single_anchors(), protocol=PROTOCOL)
    assert cal["a_per_benchmark"] is False and set(cal["maps"]["A"]) == set(T.benchmarks)
    out = place(cal, 0.2, 30.0)
    assert set(out["predicted"]) == set(T.benchmarks)
    with pytest.raises(LowMetricError, match="maps one A for all benchmarks"):
        place(cal, {b: 0.2 for b in T.benchmarks}, 30.0)
    per = build_calibration(anchors(), protocol=PROTOCOL)
    with pytest.raises(LowMetricError, match="maps one A per benchmark"):
        place(per, 0.2, 30.0)


def test_refit_needs_seven_anchors_and_extrapolates_beyond_them():
    cal = build_calibration(anchors(), method="refit", protocol=PROTOCOL)
    assert cal["method"] == "refit" and cal["laws"]["mme"]["n"] == 7
    out = placed(cal, own(T.names.index("SD3")))  # low C and A: outside the 7 transformer anchors
    assert any(out["extrapolation"].values())
    few = {n: a for n, a in anchors().items() if n != "SigLIP"}
    with pytest.raises(LowMetricError, match="needs at least 7 anchors"):
        build_calibration(few, method="refit", protocol=PROTOCOL)
    with pytest.raises(LowMetricError, match="at least 3 anchors"):
        build_calibration({n: anchors()[n] for n in ANCHORS[:2]}, protocol=PROTOCOL)


def rehash(cal: dict) -> dict:
    """The file with its calibration hash recomputed (a forged but self-consistent file)."""
    out = {k: v for k, v in cal.items() if k != "calibration_hash"}
    out["calibration_hash"] = protocol_hash(out)
    return out


def test_files_read_back_are_checked_and_hashes_recomputed(tmp_path):
    cal = build_calibration(anchors(), protocol=PROTOCOL)
    path = tmp_path / "cal.json"
    write_json_atomic(path, cal)
    assert load_calibration(path) == cal
    edited = copy.deepcopy(cal)
    edited["laws"]["mme"]["weights"][0] += 0.1
    write_json_atomic(path, edited)
    with pytest.raises(LowMetricError, match="calibration_hash does not match"):
        load_calibration(path)
    moved = copy.deepcopy(cal)
    moved["protocol"]["mode"] = "projector"
    with pytest.raises(LowMetricError, match="protocol_hash does not match its protocol"):
        check_calibration(rehash(moved))
    cases = [
        (lambda d: d["maps"]["C"].__setitem__(0, -0.5), "alpha must be > 0"),
        (lambda d: d["laws"]["mme"]["weights"].pop(), "has 6 weights, got 5"),
        (lambda d: d["laws"]["ok_vqa"].__setitem__("weights", ["1", 0, 0, 0, 0, 0]), "expected a finite number"),
        (lambda d: d["transfer_rmse"].__setitem__("mme", -1.0), "must be >= 0"),
        (lambda d: d["ranges"]["C"].reverse(), "expected \\[low, high\\]"),
        (lambda d: d.__setitem__("method", "magic"), "is not one of"),
        (lambda d: d["representations"].pop("SigLIP"), "6 anchors listed, but its fit used 7"),
        (lambda d: d["representations"]["DINOv2"].__setitem__("C", float("inf")), "not finite|NaN or Inf"),  # refused when hashed, or when checked
    ]
    for edit, message in cases:
        bad = copy.deepcopy(cal)
        edit(bad)
        with pytest.raises(LowMetricError, match=message):
            check_calibration(rehash(bad))


def test_nan_anywhere_is_refused(tmp_path):
    cal = build_calibration(anchors(), protocol=PROTOCOL)
    text = json.dumps(cal).replace(str(cal["law_rmse"]["mme"]), "NaN", 1)
    (tmp_path / "nan.json").write_text(text)
    with pytest.raises(LowMetricError, match="holds NaN, which is not a finite number"):
        load_calibration(tmp_path / "nan.json")
    with pytest.raises(LowMetricError, match="not finite"):
        build_calibration({**anchors(), "DINOv2": {"A": own(3)["A"], "C": float("nan")}}, protocol=PROTOCOL)
    with pytest.raises(LowMetricError, match="not finite"):
        place(cal, {**own(3)["A"], "mme": float("nan")}, 20.0)
    with pytest.raises(LowMetricError, match="NaN or Inf"):
        place(cal, own(3)["A"], float("inf"))
    record = {"encoder": "x", "A": {"A": float("nan")}, "C": {"C": 20.0}, "protocol": PROTOCOL,
              "protocol_hash": protocol_hash(PROTOCOL)}
    one_a = build_calibration(single_anchors(), protocol=PROTOCOL)
    with pytest.raises(LowMetricError, match="x: A is not finite"):
        predict(record, one_a)


def test_results_of_another_protocol_are_refused():
    cal = build_calibration(anchors(), protocol=PROTOCOL)
    record = {"encoder": "org/enc", "A": {"A": 0.4, "per_benchmark": {b: {"A": v} for b, v in own(5)["A"].items()}},
              "C": {"C": own(5)["C"]}, "protocol": PROTOCOL, "protocol_hash": protocol_hash(PROTOCOL)}
    assert predict(record, cal)["predicted"] == placed(cal, own(5))["predicted"]
    other = {**record, "protocol": {**PROTOCOL, "mode": "projector"}}
    other["protocol_hash"] = protocol_hash(other["protocol"])
    with pytest.raises(LowMetricError, match="differs from the calibration's"):
        predict(other, cal)
    tampered = {**record, "protocol": {**PROTOCOL, "data": "elsewhere"}}
    with pytest.raises(LowMetricError, match="does not match its protocol"):
        predict(tampered, cal)
    with pytest.raises(LowMetricError, match="only to results scored with --protocol paper"):
        predict(record, paper_calibration())


# ------------------------------------------------------------------------------------- the CLI and evaluate
def write_anchor_csv(path: Path, rows: dict, per_benchmark: bool = True) -> Path:
    cols = [f"A_{b}" for b in T.benchmarks] if per_benchmark else ["A"]
    lines = [",".join(["representation", "C", *cols])]
    for name, v in rows.items():
        a = [v["A"][b] for b in T.benchmarks] if per_benchmark else [v["A"]]
        lines.append(",".join([name, repr(float(v["C"])), *(repr(float(x)) for x in a)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def cli_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_calibrate_anchors_then_predict_values(tmp_path, capsys):
    csv_path = write_anchor_csv(tmp_path / "anchors.csv", anchors())
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--anchors", str(csv_path), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "transfer calibration over 7 anchors" in text and "C map: paper = 0.5 * own" in text
    i = T.names.index("SDim")
    values = own(i)
    args = ["predict", "--calibration", str(out), "--c", repr(float(values["C"])), "--json"]
    got = cli_json(capsys, *args, *[x for b, v in values["A"].items() for x in ("--a", f"{b}={float(v)!r}")])
    assert set(got) >= {"predicted", "interval", "extrapolation", "AC", "AC_mean", "mapped", "method"}
    for b in T.benchmarks:
        assert got["predicted"][b] == pytest.approx(released_prediction(b, i), abs=1e-6)
        assert got["interval"][b][0] < got["predicted"][b] < got["interval"][b][1]
        assert got["extrapolation"][b] is False
    refit = tmp_path / "refit.json"
    assert main(["calibrate", "--anchors", str(csv_path), "--method", "refit", "--output", str(refit)]) == 0
    other = cli_json(capsys, *["predict", "--calibration", str(refit), "--c", repr(float(values["C"])), "--json"],
                     *[x for b, v in values["A"].items() for x in ("--a", f"{b}={float(v)!r}")])
    assert other["method"] == "refit" and other["predicted"] != got["predicted"]
    # the evaluate module's `ac` configuration gives the CLI's numbers
    import evaluate

    ac = evaluate.load(str(metric_file()), cache_dir=str(tmp_path / "metric_cache"))
    res = ac.compute(predictions=[values], calibration=str(out))
    assert {b: v[0] for b, v in res["predicted"].items()} == got["predicted"]
    assert {b: v[0] for b, v in res["interval"].items()} == got["interval"]
    assert res["protocol"]["law"]["calibration_hash"] == load_calibration(out)["calibration_hash"]


def test_predict_one_a_and_the_paper_calibration(tmp_path, capsys):
    got = cli_json(capsys, "predict", "--calibration", "paper", "--a", "0.47", "--c", "24.51", "--json")
    import evaluate

    ac = evaluate.load(str(metric_file()), cache_dir=str(tmp_path / "metric_cache"))
    res = ac.compute(predictions=[{"A": 0.47, "C": 24.51}], law="paper")
    assert got["predicted"] == pytest.approx({b: v[0] for b, v in res["predicted"].items()}, rel=1e-12)
    for b, v in res["interval"].items():
        assert got["interval"][b] == pytest.approx(v[0], rel=1e-12)
    assert got["extrapolation"] == {b: v[0] for b, v in res["extrapolation"].items()}


@pytest.mark.parametrize(("args", "message"), [
    (["--a", "0.5"], "give a results file, or the values"),
    (["--a", "0.5", "--a", "mme=0.4", "--c", "3"], "give one A, or BENCHMARK=A"),
    (["--a", "gqa=0.5", "--c", "3"], "unknown benchmark(s) gqa"),
    (["--a", "nan", "--c", "3"], "is not finite"),
    (["--a", "0.5", "--c", "x"], "is not a number"),
])
def test_predict_usage_errors_are_one_line(args, message, capsys):
    assert main(["predict", "--calibration", "paper", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_anchor_csv_errors(tmp_path, capsys):
    rows = anchors()
    cases = {
        "unknown.csv": (lambda p: write_anchor_csv(p, {**rows, "NotAModel": rows["SigLIP"]}), "not in the paper's table: NotAModel"),
        "nan.csv": (lambda p: write_anchor_csv(p, {**rows, "SigLIP": {**rows["SigLIP"], "C": float("nan")}}), "C is not finite"),
        "cols.csv": (lambda p: p.write_text("representation,C\nCLIP336,3\n"), "no A column"),
    }
    for name, (make, message) in cases.items():
        make(tmp_path / name)
        assert main(["calibrate", "--anchors", str(tmp_path / name), "--output", str(tmp_path / "o.json")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.json").exists()
