"""The evaluate module ``ac_score``: same numbers as low_metric, installed offline, documented examples run.

Loading by name (``evaluate.load("ac_score")``) runs in a subprocess: evaluate freezes
HF_MODULES_CACHE and HF_EVALUATE_OFFLINE when it is imported, and that subprocess also runs the
module's doctests and the metric card's examples. The rest loads the module by file path here.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

import low_metric
from low_metric.metric import metric_file
from low_metric.metric.install import default_modules_cache, install_metric, metric_dir

METRIC_FILE = metric_file()
CARD = METRIC_FILE.with_name("README.md")


# ----------------------------------------------------------------------------------------------
# Inputs shared by the subprocess and the direct low_metric calls
# ----------------------------------------------------------------------------------------------


def _inputs() -> dict:
    rng = np.random.default_rng(7)
    counts = [196, 256, 256, 144]
    target = [rng.standard_normal((t, 32)).astype(np.float32) for t in counts]
    clip224 = [rng.standard_normal((256, 32)).astype(np.float32) for _ in counts]
    clip336 = [rng.standard_normal((576, 32)).astype(np.float32) for _ in counts]
    gt = [rng.uniform(0, 840, size=(k, 2)) for k in (5, 1, 0, 8, 3)]
    pred = [g + rng.normal(0, 40, size=g.shape) for g in gt]
    thresholds = rng.uniform(100, 800, size=len(gt))
    categories = ["cat", "dog", "cat", "bus", "dog"]
    ac = rng.uniform([0.3, 2.0], [0.85, 27.0], size=(3, 2))
    return dict(target=target, clip224=clip224, clip336=clip336, gt=gt, pred=pred, thresholds=thresholds,
                categories=categories, ac=ac)


DRIVER = r'''
import contextlib, doctest, io, json, re, sys, traceback
import numpy as np
import evaluate

inp = np.load(sys.argv[1])
out_path, card_path = sys.argv[2], sys.argv[3]
n = lambda p: sorted((k for k in inp.files if k.startswith(p + "_")), key=lambda k: int(k.rsplit("_", 1)[1]))
target, c224, c336 = [inp[k] for k in n("target")], [inp[k] for k in n("clip224")], [inp[k] for k in n("clip336")]
gt, pred = [inp[k] for k in n("gt")], [inp[k] for k in n("pred")]
out = {"HF_MODULES_CACHE": str(evaluate.config.HF_MODULES_CACHE), "HF_EVALUATE_OFFLINE": evaluate.config.HF_EVALUATE_OFFLINE}

alignment = evaluate.load("ac_score", "alignment")
out["module_file"] = sys.modules[type(alignment).__module__].__file__
out["alignment"] = alignment.compute(predictions=target, references=[[a, b] for a, b in zip(c224, c336)],
                                     reference_names=["clip224", "clip336"])
out["alignment_single"] = alignment.compute(predictions=target, references=c224)
corr = evaluate.load("ac_score", "correspondence")
out["correspondence"] = corr.compute(predictions=pred, references=gt, thresholds=inp["thresholds"].tolist(),
                                     categories=[str(c) for c in inp["categories"]])
ac = evaluate.load("ac_score")
out["ac_config"] = ac.config_name
out["ac"] = ac.compute(predictions=inp["ac"].tolist(), law="paper")

# The module's >>> examples, against the module evaluate imported.
report = io.StringIO()
with contextlib.redirect_stdout(report):
    res = doctest.testmod(sys.modules[type(alignment).__module__], optionflags=doctest.NORMALIZE_WHITESPACE)
out["doctest"] = {"failed": res.failed, "attempted": res.attempted, "report": report.getvalue()}

# The metric card's ```python blocks, in order, in one namespace; a ```text block right after one
# is its expected output.
card = open(card_path, encoding="utf-8").read()
blocks = re.findall(r"```python\n(.*?)```\s*(?:```text\n(.*?)```)?", card, flags=re.S)
ns, card_out = {"__name__": "__card__"}, []
for code, expected in blocks:
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            exec(compile(code, "<card>", "exec"), ns)
        error = None
    except Exception:
        error = traceback.format_exc()
    card_out.append({"code": code, "expected": expected or None, "stdout": buf.getvalue(), "error": error})
out["card"] = card_out
json.dump(out, open(out_path, "w"))
'''


@pytest.fixture(scope="module")
def loaded_by_name(tmp_path_factory):
    """Install into a fresh modules cache, then load by name from an unrelated folder, offline."""
    root = tmp_path_factory.mktemp("by_name")
    modules, work = root / "modules", root / "work"
    work.mkdir()
    installed = install_metric(modules)
    inp = _inputs()
    arrays = {f"{k}_{i}": v for k in ("target", "clip224", "clip336", "gt", "pred") for i, v in enumerate(inp[k])}
    np.savez(root / "inputs.npz", thresholds=inp["thresholds"], categories=np.array(inp["categories"]), ac=inp["ac"], **arrays)
    (root / "driver.py").write_text(DRIVER)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("HF_EVALUATE_OFFLINE", "1")
        mp.setenv("HF_MODULES_CACHE", str(modules))
        mp.setenv("HF_HOME", str(root / "hf_home"))
        mp.delenv("PYTHONPATH", raising=False)
        proc = subprocess.run(
            [sys.executable, str(root / "driver.py"), str(root / "inputs.npz"), str(root / "out.json"), str(CARD)],
            capture_output=True, text=True, timeout=600,
        )
        expected_cache = default_modules_cache()
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"out": json.loads((root / "out.json").read_text()), "installed": installed, "modules": modules,
            "expected_cache": expected_cache, "inputs": inp, "work": work}


def test_load_by_name_uses_the_installed_module(loaded_by_name):
    out = loaded_by_name["out"]
    assert out["HF_EVALUATE_OFFLINE"] is True
    assert Path(out["HF_MODULES_CACHE"]) == loaded_by_name["expected_cache"] == loaded_by_name["modules"]
    assert Path(out["module_file"]).resolve() == loaded_by_name["installed"].resolve()
    assert out["ac_config"] == "default"


def test_load_by_name_matches_low_metric(loaded_by_name):
    out, inp = loaded_by_name["out"], loaded_by_name["inputs"]
    refs = {"clip224": inp["clip224"], "clip336": inp["clip336"]}
    a = out["alignment"]
    assert a["A"] == low_metric.a_score(inp["target"], refs)
    assert a["per_reference"]["clip224"] == pytest.approx(low_metric.a_score(inp["target"], inp["clip224"]), abs=1e-12)
    assert a["per_reference"]["clip336"] == pytest.approx(low_metric.a_score(inp["target"], inp["clip336"]), abs=1e-12)
    per_image = (low_metric.alignment_per_image(inp["target"], inp["clip224"])
                 + low_metric.alignment_per_image(inp["target"], inp["clip336"])) / 2
    np.testing.assert_allclose(a["per_image"], per_image, rtol=0, atol=1e-12)
    assert out["alignment_single"]["A"] == low_metric.a_score(inp["target"], inp["clip224"])

    table = low_metric.PckTable()
    for cat, p, g, t in zip(inp["categories"], inp["pred"], inp["gt"], inp["thresholds"]):
        table.add(cat, p, g, t)
    c = out["correspondence"]
    expected = table.summary()
    assert {k: c[k] for k in expected} == json.loads(json.dumps(expected))
    per_pair = [100 * low_metric.pck(p, g, t) for p, g, t in zip(inp["pred"], inp["gt"], inp["thresholds"]) if len(g)]
    assert c["C"] == pytest.approx(np.mean(per_pair), abs=1e-9)

    paper = low_metric.paper_table()
    for bench in paper.benchmarks:
        law = low_metric.fit_law(*paper.benchmark(bench))
        np.testing.assert_allclose(out["ac"]["predicted"][bench], law.predict(inp["ac"][:, 0], inp["ac"][:, 1]), rtol=1e-12)
        np.testing.assert_allclose(out["ac"]["ac_score"][bench], law.ac_score(inp["ac"][:, 0], inp["ac"][:, 1]), rtol=1e-12)


def test_module_doctests_pass(loaded_by_name):
    doc = loaded_by_name["out"]["doctest"]
    assert doc["attempted"] >= 10
    assert doc["failed"] == 0, doc["report"]


def test_card_examples_run_and_print_what_the_card_shows(loaded_by_name):
    blocks = loaded_by_name["out"]["card"]
    assert len(blocks) >= 5
    assert sum(b["expected"] is not None for b in blocks) >= 4
    for b in blocks:
        assert b["error"] is None, f"card example failed:\n{b['code']}\n{b['error']}"
        if b["expected"] is not None:
            assert b["stdout"].strip() == b["expected"].strip(), b["code"]


# ----------------------------------------------------------------------------------------------
# Loaded by path, in this process
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluate_mod():
    import evaluate

    return evaluate


@pytest.fixture
def load(evaluate_mod, tmp_path):
    def _load(config=None, **kwargs):
        kwargs.setdefault("cache_dir", str(tmp_path / "metric_cache"))
        return evaluate_mod.load(str(METRIC_FILE), config, **kwargs)

    return _load


def _tokens(rng, counts, width=16):
    return [rng.standard_normal((t, width)).astype(np.float32) for t in counts]


def test_load_by_path_alignment(load):
    rng = np.random.default_rng(0)
    target, ref = _tokens(rng, [9, 16, 16, 25]), _tokens(rng, [16, 16, 36, 16])
    res = load("alignment").compute(predictions=target, references=ref, mode="raw")
    assert res["A"] == low_metric.a_score(target, ref)
    np.testing.assert_array_equal(res["per_image"], low_metric.alignment_per_image(target, ref))
    assert res["images"] == 4
    # float64 inputs are stored as float32, which is what low_metric computes in anyway
    res64 = load("alignment").compute(predictions=[t.astype(np.float64) for t in target], references=ref, mode="raw")
    assert res64["A"] == res["A"]
    # an encoder against itself
    assert load("alignment").compute(predictions=ref, references=ref)["A"] == pytest.approx(1.0, abs=1e-6)


def test_add_batch_equals_one_compute(load):
    rng = np.random.default_rng(1)
    target, r1, r2 = _tokens(rng, [9, 16, 4, 25, 16]), _tokens(rng, [16, 9, 16, 16, 4]), _tokens(rng, [36, 36, 16, 9, 9])
    refs = [[a, b] for a, b in zip(r1, r2)]
    whole = load("alignment").compute(predictions=target, references=refs)
    m = load("alignment")
    for lo, hi in ((0, 2), (2, 3), (3, 5)):
        m.add_batch(predictions=target[lo:hi], references=refs[lo:hi])
    assert m.compute() == whole
    m = load("alignment", keep_in_memory=True)
    for t, r in zip(target, refs):
        m.add(prediction=t, reference=r)
    assert m.compute() == whole

    inp = _inputs()
    whole = load("correspondence").compute(predictions=inp["pred"], references=inp["gt"], thresholds=inp["thresholds"],
                                          categories=inp["categories"], alphas=[0.2, 0.05])
    m = load("correspondence")
    m.add_batch(predictions=inp["pred"][:2], references=inp["gt"][:2])
    m.add_batch(predictions=inp["pred"][2:], references=inp["gt"][2:])
    assert m.compute(thresholds=inp["thresholds"], categories=inp["categories"], alphas=[0.2, 0.05]) == whole
    assert list(whole["per_image"]) == ["pck@0.1", "pck@0.2", "pck@0.05"]  # C stays PCK@0.10

    preds = [{"A": 0.5, "C": 20.0}, {"A": 0.7, "C": 10.0}, {"A": 0.4, "C": 25.0}]
    whole = load().compute(predictions=preds, law="paper")
    m = load()
    m.add_batch(predictions=preds[:1])
    m.add_batch(predictions=preds[1:])
    assert m.compute(law="paper") == whole
    assert load().compute(predictions=[[p["A"], p["C"]] for p in preds], law="paper")["AC"] == whole["AC"]


def test_correspondence_with_boxes_and_nearest_neighbour_protocol(load):
    inp = _inputs()
    boxes = [[10.0, 20.0, 10.0 + t, 20.0 + 0.5 * t] for t in inp["thresholds"]]
    by_box = load("correspondence").compute(predictions=inp["pred"], references=inp["gt"], target_bboxes=boxes)
    by_thr = load("correspondence").compute(predictions=inp["pred"], references=inp["gt"], thresholds=inp["thresholds"])
    assert by_box == by_thr
    nn = load("correspondence").compute(predictions=inp["pred"], references=inp["gt"], thresholds=inp["thresholds"], window=0)
    assert nn["C"] == by_thr["C"] and nn["protocol"]["matching"]["window"] == 0
    assert nn["protocol_hash"] != by_thr["protocol_hash"]


def test_ac_law_sources_agree(load, tmp_path):
    paper = low_metric.paper_table()
    laws = {b: low_metric.fit_law(*paper.benchmark(b), benchmark=b) for b in ("mme", "ok_vqa")}
    folder = tmp_path / "laws"
    folder.mkdir()
    for b, law in laws.items():
        law.save(folder / f"law_{b}.json")
    preds = [[0.5, 20.0], [0.8, 14.0]]
    ref = load().compute(predictions=preds, law="paper", benchmarks=["mme", "ok_vqa"])
    for source in (laws, {b: L.to_json() for b, L in laws.items()}, {b: str(folder / f"law_{b}.json") for b in laws},
                   str(folder), {b: json.loads(L.to_json()) for b, L in laws.items()}):
        got = load().compute(predictions=preds, law=source)
        assert got["predicted"] == ref["predicted"] and got["AC"] == ref["AC"]
    one = load().compute(predictions=preds, law=laws["mme"])
    assert one["predicted"] == {"mme": ref["predicted"]["mme"]}
    assert load().compute(predictions=preds, law=str(folder / "law_mme.json"))["predicted"] == one["predicted"]
    # AC is the mean over benchmarks of the law's normalised prediction
    np.testing.assert_allclose(ref["AC"], np.mean([laws[b].ac_score(*np.array(preds).T) for b in laws], axis=0))


def test_ac_without_a_law_reports_a_and_c_only(load):
    res = load().compute(predictions=[[0.5, 20.0]])
    assert res["AC"] is None and res["A"] == [0.5] and res["C"] == [20.0]
    assert "needs a fitted law" in res["note"]


def test_protocol_hash_is_the_hash_of_the_protocol(load):
    rng = np.random.default_rng(2)
    t = _tokens(rng, [4, 4])
    a = load("alignment").compute(predictions=t, references=t)
    b = load("alignment").compute(predictions=_tokens(rng, [9, 9]), references=_tokens(rng, [4, 4]))
    assert a["protocol_hash"] == b["protocol_hash"]  # settings, not data
    canonical = json.dumps(a["protocol"], sort_keys=True, separators=(",", ":")).encode()
    assert a["protocol_hash"] == hashlib.sha256(canonical).hexdigest()
    assert a["protocol"] == {"metric": "ac_score", "config": "alignment", "low_metric": low_metric.__version__,
                             "mode": "projector", "references": ["reference_0"]}
    ridge = load("alignment").compute(predictions=t, references=t, mode="ridge")
    assert ridge["protocol_hash"] != a["protocol_hash"]
    inp = _inputs()
    c1 = load("correspondence").compute(predictions=inp["pred"], references=inp["gt"], thresholds=300.0)
    c2 = load("correspondence").compute(predictions=inp["pred"], references=inp["gt"], thresholds=300.0, alphas=[0.1, 0.05])
    assert c1["protocol"]["alphas"] == [0.1, 0.05, 0.01] and c1["protocol_hash"] != c2["protocol_hash"]
    paper = load().compute(predictions=[[0.5, 20.0]], law="paper")
    assert paper["protocol"]["law"]["source"] == "paper" and len(paper["protocol_hash"]) == 64


@pytest.mark.parametrize(
    ("config", "kwargs", "message"),
    [
        ("alignment", dict(predictions=[np.zeros(4)], references=[np.zeros((3, 4))]), r"predictions\[0\]: expected \[tokens, D\]"),
        ("alignment", dict(predictions=[np.ones((3, 4))], references=[np.ones(4)]), r"references\[0\]: expected \[tokens, D\]"),
        ("alignment", dict(predictions=[np.ones((3, 4))], references=[np.ones((3, 5))]), r"image 0: target width D=4 differs"),
        ("alignment", dict(predictions=[np.ones((3, 4))], references=[np.ones((3, 4))], mode="clip"), r"mode must be one of"),
        ("alignment", dict(predictions=[np.ones((3, 4))], references=[np.ones((3, 4))], reference_names=["a", "b"]),
         r"reference_names: expected 1 distinct"),
        ("alignment", dict(predictions=[np.ones((3, 4))], references=[np.ones((3, 4))], budget=3), r"unknown argument\(s\) budget"),
        ("correspondence", dict(predictions=[[[1.0, 2.0]]], references=[[[1.0, 2.0]]]), r"needs thresholds="),
        ("correspondence", dict(predictions=[[[1.0, 2.0]]], references=[[[1.0, 2.0]]], thresholds=[1.0, 2.0]),
         r"thresholds: expected one per pair \(1 pairs\), got 2"),
        ("correspondence", dict(predictions=[[[1.0, 2.0, 3.0]]], references=[[[1.0, 2.0, 3.0]]], thresholds=9.0),
         r"predictions\[0\]: expected \[K, 2\]"),
        ("correspondence", dict(predictions=[[[1.0, 2.0]]], references=[[[1.0, 2.0], [3.0, 4.0]]], thresholds=9.0),
         r"pair 0: pred_kps \(1, 2\) and gt_kps \(2, 2\)"),
        ("correspondence", dict(predictions=[[[1.0, 2.0]]], references=[[[1.0, 2.0]]], thresholds=-1.0), r"pair 0: threshold must be"),
        ("correspondence", dict(predictions=[[[1.0, 2.0]]], references=[[[1.0, 2.0]]], thresholds=9.0, categories=["a", "b"]),
         r"categories: expected one string per pair"),
        ("correspondence", dict(predictions=[[]], references=[[]], thresholds=9.0), r"C is undefined"),
        ("default", dict(predictions=[{"A": 0.5}]), r"predictions\[0\]: expected \{'A'"),
        ("default", dict(predictions=[[0.5, 20.0], [float("nan"), 30.0]], law="paper"), r"^predictions\[1\]: A is not finite \(nan\)$"),
        ("default", dict(predictions=[[0.5, 20.0], [0.6, float("inf")]], law="paper"), r"^predictions\[1\]: C is not finite \(inf\)$"),
        ("default", dict(predictions=[[0.5, 20.0]], law="nonsense"), r"law: expected 'paper'"),
        ("default", dict(predictions=[[0.5, 20.0]], law="paper", benchmarks=["gqa"]), r"benchmarks: no law for gqa"),
        ("default", dict(predictions=[[0.5, 20.0]], law="paper", mode="ridge"), r"never applied across modes"),
        ("default", dict(predictions=[[0.5, 20.0]], law={"kind": "ac2", "weights": [1.0]}), r"law: not a saved law"),
    ],
)
def test_bad_input_raises_a_clear_error(load, config, kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        load(config, keep_in_memory=True).compute(**kwargs)
    assert isinstance(info.value, low_metric.LowMetricError)


def test_thresholds_belong_to_compute_not_add_batch(load):
    m = load("correspondence", keep_in_memory=True)
    with pytest.raises(low_metric.LowMetricError, match=r"give thresholds to compute\(\)"):
        m.add_batch(predictions=[[[1.0, 2.0]]], references=[[[1.0, 2.0]]], thresholds=[9.0])


def test_unknown_configuration(load):
    with pytest.raises(low_metric.LowMetricError, match=r"no configuration 'encoders'; choose from: alignment, correspondence, ac"):
        load("encoders")


# ----------------------------------------------------------------------------------------------
# Install, resources, card
# ----------------------------------------------------------------------------------------------


def test_install_is_idempotent_and_replaces_old_versions(tmp_path):
    first = install_metric(tmp_path)
    digest = hashlib.sha256(METRIC_FILE.read_bytes()).hexdigest()
    assert first == metric_dir(tmp_path) / digest / "ac_score.py"
    assert first.read_bytes() == METRIC_FILE.read_bytes()
    for level in (tmp_path, tmp_path / "evaluate_modules", tmp_path / "evaluate_modules" / "metrics", metric_dir(tmp_path), first.parent):
        assert (level / "__init__.py").is_file()
    mtime = first.stat().st_mtime_ns
    assert install_metric(tmp_path) == first and first.stat().st_mtime_ns == mtime
    old = metric_dir(tmp_path) / ("0" * 64)
    old.mkdir()
    (old / "ac_score.py").write_text("# an older version\n")
    (metric_dir(tmp_path) / "notes").mkdir()  # not a version folder: left alone
    install_metric(tmp_path)
    assert sorted(p.name for p in metric_dir(tmp_path).iterdir()) == sorted([digest, "__init__.py", "notes"])


def test_default_modules_cache_follows_evaluate_rules(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "m"))
    assert default_modules_cache() == tmp_path / "m"
    monkeypatch.delenv("HF_MODULES_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert default_modules_cache() == tmp_path / "home" / "modules"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_modules_cache() == tmp_path / "xdg" / "huggingface" / "modules"


def test_metric_files_are_package_resources():
    files = resources.files("low_metric.metric")
    for name in ("ac_score.py", "app.py", "README.md"):
        assert files.joinpath(name).is_file(), name
    # the Space's requirements.txt is written by its build, from the library's own dependencies
    # (low_metric itself is on no index: it travels as source, see tests/test_space_builds.py)
    assert not files.joinpath("requirements.txt").is_file()


def test_card_front_matter_and_sections():
    text = CARD.read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    for key in ("title", "emoji", "colorFrom", "colorTo", "description"):
        assert front[key]
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and front["pinned"] is False
    assert front["tags"] == ["evaluate", "metric"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(front["sdk_version"]))
    for section in ("Metric Description", "How to Use", "Inputs", "Output Values", "Values from Popular Papers",
                    "Examples", "Limitations and Bias", "Citation"):
        assert re.search(rf"^## {section}$", text, flags=re.M), section


def test_card_table_matches_the_paper_table():
    text = CARD.read_text(encoding="utf-8")
    paper = low_metric.paper_table()
    laws = {b: low_metric.fit_law(*paper.benchmark(b)) for b in paper.benchmarks}
    header = next(line for line in text.splitlines() if line.startswith("| representation |"))
    assert [h.strip() for h in header.strip("|").split("|")] == ["representation", "C", *(f"A {b}" for b in paper.benchmarks), "AC"]
    rows = {line.split("|")[1].strip(): [float(x) for x in line.strip().strip("|").split("|")[1:]]
            for line in text.splitlines() if line.startswith("| ") and line.split("|")[1].strip() in paper.names}
    assert list(rows) == paper.names
    for i, name in enumerate(paper.names):
        c, *a, ac = rows[name]
        assert c == round(paper.c[i], 2)
        assert a == [round(paper.a[b][i], 3) for b in paper.benchmarks]
        assert ac == round(float(np.mean([laws[b].ac_score(paper.a[b][i], paper.c[i])[0] for b in paper.benchmarks])), 3)
    r2 = next(line for line in text.splitlines() if line.startswith("| R² |"))
    assert [float(x) for x in r2.strip().strip("|").split("|")[1:]] == [round(laws[b].r2, 3) for b in paper.benchmarks]
