"""Bad input and faults, as a new user meets them: one test per bug the campaign found, and a
parametrised test per class of poor answer, each asserting the exact kind of outcome (a one-line
LowMetricError or exit status, a finite value, a file left untouched)."""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from low_metric import (
    Law,
    LowMetricError,
    PckTable,
    a_score,
    alignment_per_image,
    fit_law,
    match_keypoints,
    paper_table,
    pck,
)
from low_metric.cli import main
from low_metric.scoring.cache import FeatureCache
from low_metric.scoring.results import RESULTS_FORMAT, check_record, read_results, write_json_atomic
from low_metric.sources.encoders import load_encoder
from low_metric.sources.projector import load_projector
from low_metric.sources.spair import load_spair
from tests import reference
from tests.scored import score

RNG = np.random.default_rng(0)
NEVER = "nobody/never-loaded"  # no such repo: a setting refused first never gets to ask for it


def one_line(call) -> str:
    """The message of the LowMetricError ``call`` raises; asserts it is one line."""
    with pytest.raises(LowMetricError) as info:
        call()
    message = str(info.value)
    assert message and "\n" not in message, message
    return message


def cli(args: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    return code, err


# ------------------------------------------------------------------------------------- bugs
@pytest.mark.parametrize("scale", [1e20, 1e-30])
def test_bug3_huge_or_tiny_tokens_keep_self_alignment_one(scale):
    x = RNG.standard_normal((2, 50, 16)).astype(np.float32)
    assert a_score(x * np.float32(scale), x * np.float32(scale)) == pytest.approx(1.0, abs=1e-6)


def test_bug3_float64_near_its_limit_keeps_self_alignment_one():
    x = RNG.standard_normal((1, 40, 8)) * 1e300
    assert a_score(x, x) == pytest.approx(1.0, abs=1e-6)
    assert a_score(x, x * 1e-300) == pytest.approx(1.0, abs=1e-6)  # cosine is scale-free


def test_bug3_values_equal_the_reference_implementation_whatever_the_scale():
    t = [RNG.standard_normal((30, 8)) for _ in range(3)]
    r = [RNG.standard_normal((20, 8)) for _ in range(3)]
    expected = reference.a_score(t, r)
    assert a_score([x * 1e150 for x in t], [x * 1e-150 for x in r]) == pytest.approx(expected, abs=1e-6)


def _peak_growth_mb(tokens: int, budget_mb: int) -> float:
    code = f"""
import resource, torch
from low_metric import a_score
t = torch.randn(1, {tokens}, 8); r = torch.randn(1, {tokens}, 8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
value = a_score(t, r, budget_bytes={budget_mb} * 2**20)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert 0 < value <= 1
print((after - before) / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def test_bug4_memory_is_bounded_within_one_image():
    # one image of 20,000 x 20,000 tokens: the [T, R] similarity alone is 1.6 GB in float32
    assert _peak_growth_mb(20_000, 64) < 400


def test_bug4_chunking_within_an_image_gives_the_same_value():
    t = [RNG.standard_normal((333, 12)).astype(np.float32)]
    r = [RNG.standard_normal((77, 12)).astype(np.float32)]
    whole = alignment_per_image(t, r)
    for budget in (4 * 77, 4 * 77 * 10, 1 << 30):  # one target row at a time, ten rows, all at once
        assert alignment_per_image(t, r, budget_bytes=budget) == pytest.approx(whole, abs=1e-6)
    assert whole[0] == pytest.approx(reference.a_score(t, r), abs=1e-6)


def _open_cache(root: str, queue) -> None:
    try:
        FeatureCache(root)
        queue.put("ok")
    except LowMetricError as exc:
        queue.put(str(exc))


def test_bug2_many_processes_create_one_fresh_cache(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for attempt in range(10):
        root = str(tmp_path / f"cache{attempt}")
        queue = ctx.Queue()
        procs = [ctx.Process(target=_open_cache, args=(root, queue)) for _ in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert [queue.get() for _ in procs] == ["ok"] * 8
        assert json.loads((Path(root) / "cache.json").read_text())["format"] == "low_metric.feature_cache/1"
        assert sorted(p.name for p in Path(root).iterdir()) == ["cache.json"]  # no temporary left behind


@pytest.fixture(scope="module")
def record(model_repos, tmp_path_factory) -> dict:
    return score([model_repos.dinov2], model_repos.clip224, tmp_path_factory.mktemp("hardening_cache"), limit=1)[0]


def test_bug5_alpha_nan_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "out.json"
    code, err = cli(["score", NEVER, "--alpha", "nan", "--output", str(out), "--cache-dir", str(tmp_path / "c")], capsys)
    assert code == 2 and err == "low-metric: error: alpha (--alpha) must be a finite number > 0, got nan"
    assert not out.exists()


def test_bug5_nan_never_reaches_a_results_file_or_a_hash(tmp_path, record):
    bad = copy.deepcopy(record)
    bad["C"]["C"] = float("nan")
    with pytest.raises(LowMetricError, match="refusing to write NaN or Inf"):
        write_json_atomic(tmp_path / "r.json", {"format": RESULTS_FORMAT, "results": [bad]})
    assert not (tmp_path / "r.json").exists()
    bad["protocol"]["correspondence"]["temperature"] = float("nan")
    with pytest.raises(LowMetricError, match="holds a NaN or Inf"):
        check_record(bad)


def test_bug6_a_nan_record_is_not_published(hub, record, tmp_path):
    from low_metric.hub.publish import publish_records

    bad = copy.deepcopy(record)
    bad["A"]["A"] = float("nan")
    before = len(hub.request_log)
    message = one_line(lambda: publish_records([bad], dataset="hardening/results", dry_run=True))
    assert "holds a NaN or Inf" in message
    assert len(hub.request_log) == before  # refused before asking the Hub anything


def _results_file(tmp_path: Path, record: dict, name: str = "r.json") -> Path:
    path = tmp_path / name
    write_json_atomic(path, {"format": RESULTS_FORMAT, "results": [record]})
    return path


def test_bug7_an_edited_protocol_under_a_kept_hash_is_refused(tmp_path, record, capsys):
    edited = copy.deepcopy(record)
    edited["protocol"]["correspondence"]["window"] = 3  # the hash still says 5
    path = _results_file(tmp_path, edited)
    message = one_line(lambda: read_results(path))
    assert "protocol_hash does not match its protocol" in message
    assert read_results(_results_file(tmp_path, record, "genuine.json"))[0] == record
    code, err = cli(["publish", str(path), "--dataset", "hardening/results", "--dry-run"], capsys)
    assert code == 2 and "protocol_hash does not match" in err


def test_bug7_an_edited_result_hash_is_refused(tmp_path, record):
    edited = copy.deepcopy(record)
    edited["encoder_protocol"]["layer"] = -3
    assert "result_hash does not match" in one_line(lambda: check_record(edited))


def _law(**changes) -> dict:
    table = paper_table()
    return {**asdict(fit_law(*table.benchmark("mme"), benchmark="mme")), **changes}


@pytest.mark.parametrize(("changes", "message"), [
    ({"weights": [float("nan")] * 6}, "contains NaN or Inf"),
    ({"weights": [0.1] * 5}, "expected 6 values, got 5"),
    ({"a_range": [1.0, 1.0]}, "a_range [1, 1] is empty"),
    ({"y_range": [2.0, 1.0]}, "y_range [2, 1] is empty"),
    ({"c_range": ["x", 1.0]}, "c_range: expected a list of numbers"),
    ({"r2": float("inf")}, "r2 must be a finite number"),
    ({"kind": "cubic"}, "kind 'cubic'"),
    ({"extra": 1}, "unknown key(s) extra"),
])
def test_bug8_a_law_that_would_predict_nan_is_refused(changes, message):
    assert message in one_line(lambda: Law.from_dict(_law(**changes)))


def test_bug8_a_law_missing_a_key_or_not_json_is_refused(tmp_path):
    data = _law()
    del data["weights"]
    assert "missing weights" in one_line(lambda: Law.from_dict(data))
    (tmp_path / "law.json").write_bytes(b"\xff\xfe not utf-8")
    assert "not a readable law file" in one_line(lambda: Law.load(tmp_path / "law.json"))
    (tmp_path / "law.json").write_text("{")
    assert "invalid JSON" in one_line(lambda: Law.load(tmp_path / "law.json"))


def test_bug8_extrapolation_is_flagged():
    law = Law.from_dict(_law())
    assert list(law.outside([0.5, 1e6], [15.0, 15.0])) == [False, True]
    assert np.isfinite(law.predict(1e6, 15.0)).all()


# ------------------------------------------------------------------------------------- classes
def _tokens(n=2, t=5, d=4):
    return [RNG.standard_normal((t, d)) for _ in range(n)]


def _grids(d=4, p=4, b=None):
    shape = (d, p, p) if b is None else (b, d, p, p)
    return torch.randn(shape), torch.randn(shape)


KPS = torch.tensor([[100.0, 200.0], [300.0, 400.0]])

CORE_CASES = {
    "a_score width 0": (lambda: a_score([np.zeros((3, 0))], [np.zeros((3, 0))]), "zero width"),
    "a_score no tokens": (lambda: a_score([np.zeros((0, 4))], [np.ones((3, 4))]), "no tokens"),
    "a_score device banana": (lambda: a_score(_tokens(), _tokens(), device="banana"), "not a torch device"),
    "a_score NaN target": (lambda: a_score([np.full((3, 4), np.nan)], _tokens(1)), "target[0]: contains NaN or Inf"),
    "a_score Inf reference": (lambda: a_score(_tokens(1), [np.full((3, 4), np.inf)]), "reference[0]: contains NaN"),
    "a_score widths differ": (lambda: a_score(_tokens(1, d=4), _tokens(1, d=5)), "width D=4 differs"),
    "a_score image counts differ": (lambda: a_score(_tokens(2), _tokens(3)), "target has 2 images but reference has 3"),
    "a_score empty": (lambda: a_score([], _tokens(1)), "no images"),
    "a_score strings": (lambda: a_score([["a", "b"]], _tokens(1)), "not a numeric array"),
    "a_score budget 0": (lambda: a_score(_tokens(), _tokens(), budget_bytes=0), "budget_bytes must be a finite"),
    "a_score empty references": (lambda: a_score(_tokens(), {}), "empty dict of references"),
    "match window -3": (lambda: match_keypoints(*_grids(), KPS, window=-3), "window must be a whole number >= 0"),
    "match window 2.5": (lambda: match_keypoints(*_grids(), KPS, window=2.5), "window must be a whole number"),
    "match temperature nan": (lambda: match_keypoints(*_grids(), KPS, temperature=float("nan")), "temperature must be a finite"),
    "match temperature 0": (lambda: match_keypoints(*_grids(), KPS, temperature=0), "temperature must be a finite number > 0"),
    "match image_size 0": (lambda: match_keypoints(*_grids(), KPS, image_size=0), "image_size must be a finite number > 0"),
    "match D 0": (lambda: match_keypoints(*_grids(d=0), KPS), "D, P > 0"),
    "match P 0": (lambda: match_keypoints(*_grids(p=0), KPS), "D, P > 0"),
    "match non-square": (lambda: match_keypoints(torch.randn(4, 3, 5), torch.randn(4, 3, 5), KPS), "must be [D, P, P]"),
    "match grids differ": (lambda: match_keypoints(torch.randn(4, 3, 3), torch.randn(4, 4, 4), KPS), "differ in shape"),
    "match kps [K, 3]": (lambda: match_keypoints(*_grids(), torch.zeros(2, 3)), "must be [K, 2]"),
    "match kps half NaN": (lambda: match_keypoints(*_grids(), torch.tensor([[1.0, float("nan")]])), "padding rows must be all NaN"),
    "match kps Inf": (lambda: match_keypoints(*_grids(), torch.tensor([[1.0, float("inf")]])), "NaN or Inf coordinate"),
    "match batch kps count": (lambda: match_keypoints(*_grids(b=2), torch.zeros(3, 2, 2)), "for 2 pair(s)"),
    "match 5-D grids": (lambda: match_keypoints(torch.randn(1, 1, 4, 3, 3), torch.randn(1, 1, 4, 3, 3), KPS), "[B, D, P, P]"),
    "pck threshold abc": (lambda: pck(KPS, KPS, "abc"), "threshold must be a number"),
    "pck threshold negative": (lambda: pck(KPS, KPS, -1.0), "threshold must be finite and > 0"),
    "pck threshold count": (lambda: pck(KPS, KPS, [1.0, 2.0, 3.0]), "one per keypoint (2)"),
    "pck alpha nan": (lambda: pck(KPS, KPS, 10.0, alpha=float("nan")), "alpha must be a finite number > 0"),
    "pck alpha 0": (lambda: pck(KPS, KPS, 10.0, alpha=0), "alpha must be a finite number > 0"),
    "pck alpha string": (lambda: pck(KPS, KPS, 10.0, alpha="0.1"), "alpha must be a number"),
    "pck no keypoints": (lambda: pck(torch.zeros(0, 2), torch.zeros(0, 2), 10.0), "no keypoints"),
    "PckTable alpha 1.5": (lambda: PckTable(alphas=[1.5]), "below 1"),
    "PckTable alphas string": (lambda: PckTable(alphas="0.1"), "alphas must be a list"),
    "PckTable empty": (lambda: PckTable().summary(), "C is undefined"),
    "fit_law NaN y": (lambda: fit_law([0.1, 0.2] * 4, [1.0, 2.0] * 4, [1.0] * 7 + [float("nan")]), "contains NaN"),
    "fit_law constant A": (lambda: fit_law([0.5] * 8, list(range(8)), list(range(8))), "A is constant"),
    "fit_law too few": (lambda: fit_law([0.1, 0.2], [1.0, 2.0], [1.0, 2.0]), "needs at least 6 points"),
    "fit_law lengths": (lambda: fit_law([0.1] * 7, [1.0] * 8, [1.0] * 8), "expected 8 values, got 7"),
}


@pytest.mark.parametrize("case", list(CORE_CASES))
def test_core_bad_input_is_one_named_line(case):
    call, message = CORE_CASES[case]
    assert message in one_line(call)


def test_padded_rows_and_batches_give_finite_predictions_elsewhere():
    src, trg = _grids(b=2)
    kps = torch.tensor([[[100.0, 200.0], [float("nan")] * 2], [[10.0, 20.0], [30.0, 40.0]]])
    out = match_keypoints(src, trg, kps)
    assert torch.isnan(out[0, 1]).all() and torch.isfinite(out[0, 0]).all() and torch.isfinite(out[1]).all()


SETTINGS = [
    (["--alpha", "0"], "alpha (--alpha) must be a finite number > 0, got 0.0"),
    (["--alpha", "-0.1"], "alpha (--alpha) must be a finite number > 0, got -0.1"),
    (["--alpha", "1.5"], "alpha (--alpha) is a fraction of the box size in (0, 1), got 1.5"),
    (["--temperature", "0"], "temperature (--temperature) must be a finite number > 0, got 0.0"),
    (["--temperature", "nan"], "temperature (--temperature) must be a finite number > 0, got nan"),
    (["--ridge", "-1"], "ridge strength (--ridge) must be a finite number >= 0, got -1.0"),
    (["--ridge", "inf"], "ridge strength (--ridge) must be a finite number >= 0, got inf"),
    (["--window", "-1"], "window (--window) must be between 0 and 1024, got -1"),
    (["--patch", "0"], "P (--patch) must be between 1 and 1024, got 0"),
    (["--batch-size", "0"], "batch size (--batch-size) must be between 1 and 65536, got 0"),
    (["--calibration-fraction", "0"], "calibration fraction (--calibration-fraction) must be in (0, 1), got 0.0"),
    (["--calibration-fraction", "1.5"], "calibration fraction (--calibration-fraction) must be in (0, 1), got 1.5"),
    (["--limit", "0"], "limit (--limit) must be between 1 and 1073741824, got 0"),
    (["--count", "0"], "count (--count) must be between 1 and 1073741824, got 0"),
    (["--resolution", "-5"], "resolution (--resolution) must be between 1 and 1073741824, got -5"),
    (["--image-seed", "-1"], "image seed (--image-seed) must be between 0"),
]


@pytest.mark.parametrize(("args", "message"), SETTINGS, ids=[" ".join(a) for a, _ in SETTINGS])
def test_every_setting_is_refused_before_any_model_is_asked_for(args, message, tmp_path, hub, capsys):
    out = tmp_path / "out.json"
    before = len(hub.request_log)
    code, err = cli(["score", NEVER, *args, "--output", str(out), "--cache-dir", str(tmp_path / "c")], capsys)
    assert code == 2 and err.startswith(f"low-metric: error: {message}") and "\n" not in err
    assert not out.exists() and not any(NEVER in r.path for r in hub.request_log[before:])


def _mutations(record: dict) -> dict:
    def edit(fn):
        r = copy.deepcopy(record)
        fn(r)
        return r

    return {
        "A a string": (edit(lambda r: r["A"].update(A="high")), "A.A must be a number"),
        "C a string": (edit(lambda r: r["C"].update(C="20")), "C.C must be a number"),
        "protocol_hash an int": (edit(lambda r: r.update(protocol_hash=7)), "'protocol_hash' must be a str"),
        "no encoder": (edit(lambda r: r.pop("encoder")), "'encoder' must be a str"),
        "no A nor C": (edit(lambda r: (r.pop("A"), r.pop("C"))), "holds neither A nor C"),
        "a nested Inf": (edit(lambda r: r["C"]["per_category"]["face"].update({"pck@0.1": math.inf})), "NaN or Inf"),
    }


def test_hand_edited_records_are_one_named_line(record):
    for name, (bad, message) in _mutations(record).items():
        assert message in one_line(lambda bad=bad: check_record(bad)), name


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe\x00", "not UTF-8 text"),
    (b'{"format": "low_metric.results/1", "results": [{"A": NaN}]}', "holds NaN, which is not a finite number"),
    (b'{"format": "low_metric.results/1", "results": []}', "'results' must be a non-empty list"),
    (b'{"format": "low_metric.results/1", "results": {"a": 1}}', "'results' must be a non-empty list"),
    (b'{"format": "other/1", "results": []}', "not a low_metric.results/1 file"),
    (b"[1, 2]", "not a low_metric.results/1 file"),
    (b"{", "not readable JSON"),
])
def test_damaged_results_files_are_one_named_line(tmp_path, content, message, capsys):
    path = tmp_path / "results.json"
    path.write_bytes(content)
    assert message in one_line(lambda: read_results(path))
    code, err = cli(["publish", str(path), "--dataset", "hardening/results", "--dry-run"], capsys)
    assert code == 2 and message in err and str(path) in err and "\n" not in err
    assert path.read_bytes() == content  # untouched


def test_a_directory_given_as_results_is_one_line(tmp_path):
    assert "is a directory" in one_line(lambda: read_results(tmp_path))


@pytest.mark.parametrize(("args", "make", "message"), [
    (["policy", "--candidates", "{p}"], lambda p: p.write_text(""), "no candidates"),
    (["policy", "--candidates", "{p}"], lambda p: p.write_text("name,A,C\n"), "no candidates"),
    (["policy", "--candidates", "{p}"], lambda p: p.write_text("name,A,C\nx,nan,3\ny,0.5,4\n"), "A of x is not finite ('nan')"),
    (["policy", "--candidates", "{p}"], lambda p: p.write_text("name,A,C\nx,0.5,three\ny,0.5,4\n"), "C of x: 'three' is not a number"),
    (["policy", "--k", "0"], None, "argument --k: must be a whole number >= 1, got 0"),
    (["policy", "--k", "-2"], None, "argument --k: must be a whole number >= 1, got -2"),
    (["policy", "--budget", "0"], None, "budget must be between 1 and the number of candidates"),
    (["policy", "--trials", "zero"], None, "argument --trials: invalid int value: 'zero'"),
    (["policy", "--trials", "0"], None, "trials and k must be >= 1"),
    (["law", "--save-dir", "{p}"], lambda p: p.write_text("a file"), "is a file, not a folder"),
    (["offline-encoders", "{p}"], lambda p: p.write_text("a file"), "is a file, not a folder"),
    (["law", "--table", "{p}"], lambda p: p.write_bytes(b"\xff\xfe"), "not UTF-8"),
])
def test_cli_bad_input_is_exit_2_and_one_line(tmp_path, capsys, args, make, message):
    path = tmp_path / "input.csv"
    if make:
        make(path)
    code, err = cli([a.format(p=path) for a in args], capsys)
    assert code == 2 and message in err and "\n" not in err


def test_cli_version_and_python_m(capsys):
    proc = subprocess.run([sys.executable, "-m", "low_metric", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip().startswith("low-metric ")
    proc = subprocess.run([sys.executable, "-m", "low_metric", "law", "--table", "nowhere.csv"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_cli_help_and_light_commands_do_not_import_torch():
    code = "import sys; from low_metric.cli import main; main(['law', '--json']); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_ctrl_c_is_one_line_exit_130_and_leaves_no_results(tmp_path, model_repos):
    """SIGINT while the encoder is encoding (sent when its progress bar first shows, not after a
    fixed delay, which a fast machine outruns)."""
    import signal

    out = tmp_path / "out.json"
    script = f"""
import sys
from low_metric.cli import main
sys.exit(main(["score", {model_repos.dinov2!r}, "--reference", {model_repos.clip224!r}, "--output", {str(out)!r},
               "--cache-dir", {str(tmp_path / "c")!r}, "--batch-size", "1"]))
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    seen = ""
    while f"encode {model_repos.dinov2}" not in seen:
        char = proc.stderr.read(1)
        assert char, f"the run ended before encoding: {seen[-2000:]}"
        seen += char
    proc.send_signal(signal.SIGINT)
    seen += proc.stderr.read()
    assert proc.wait(timeout=300) == 130, seen[-2000:]
    assert seen.strip().splitlines()[-1] == "low-metric: interrupted" and "Traceback" not in seen
    assert not out.exists() and not list(tmp_path.glob(".out.json.*"))


# ------------------------------------------------------------------------------------- cache
def test_cache_refuses_a_foreign_folder_and_ignores_a_folder_named_like_a_shard(tmp_path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    assert "not empty and not a low_metric feature cache" in one_line(lambda: FeatureCache(tmp_path / "foreign"))
    cache = FeatureCache(tmp_path / "c")
    cache.put([("k", torch.ones(3))])
    (tmp_path / "c" / "shard-0-deadbeef.bin").mkdir()
    with pytest.warns(UserWarning, match="is not a file: ignored"):
        again = FeatureCache(tmp_path / "c")
    assert torch.equal(again.get("k"), torch.ones(3))


def test_a_damaged_manifest_is_rebuilt_from_intact_shards(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put([("k", torch.arange(4.0))])
    (tmp_path / "cache.json").write_text("{ damaged")
    with pytest.warns(UserWarning, match="rebuilt from the shards"):
        again = FeatureCache(tmp_path)
    assert torch.equal(again.get("k"), torch.arange(4.0))
    assert json.loads((tmp_path / "cache.json").read_text())["format"] == "low_metric.feature_cache/1"
    (tmp_path / "cache.json").write_text(json.dumps({"format": "someone.else/2"}))
    assert "not a low_metric feature cache" in one_line(lambda: FeatureCache(tmp_path))


def test_one_flipped_header_byte_costs_one_record_not_the_shard(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put([(f"k{i}", torch.full((8,), float(i))) for i in range(5)])
    shard = next(tmp_path.glob("shard-*.bin"))
    data = bytearray(shard.read_bytes())
    data[data.index(b'"key"', 0) + 1] ^= 0xFF  # the first record's header is no longer JSON
    shard.write_bytes(bytes(data))
    again = FeatureCache(tmp_path)
    assert "k0" not in again and all(torch.equal(again.get(f"k{i}"), torch.full((8,), float(i))) for i in range(1, 5))


# ------------------------------------------------------------------------------------- sources
def test_a_missing_local_path_or_invalid_id_is_one_line(tmp_path):
    assert "nor a local folder" in one_line(lambda: load_encoder(str(tmp_path / "no" / "such" / "model")))
    assert "not a valid Hub model id" in one_line(lambda: load_encoder("bad id with spaces"))


def test_offline_with_no_cache_is_one_line(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert "not in the local Hub cache and HF_HUB_OFFLINE is set" in one_line(lambda: load_encoder("org/model"))


def _copy_model(hub, source: str, target: Path) -> Path:
    target.mkdir()
    for path in hub.files(source):
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_bytes(hub.read(source, path))
    return target


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100]), "files do not load"),
    (lambda d: (d / "config.json").write_text("{ not json"), "not a readable JSON config"),
    (lambda d: (d / "config.json").write_text(json.dumps({**json.loads((d / "config.json").read_text()),
                                                         "auto_map": {"AutoModel": "m.M"}})), "--trust-remote-code"),
])
def test_damaged_or_remote_code_model_folders_are_one_line(hub, model_repos, tmp_path, damage, message):
    folder = _copy_model(hub, model_repos.dinov2, tmp_path / "model")
    damage(folder)
    assert message in one_line(lambda: load_encoder(str(folder)))


def test_the_same_local_model_under_two_spellings_has_one_protocol(hub, model_repos, tmp_path, monkeypatch):
    folder = _copy_model(hub, model_repos.timm_vit, tmp_path / "model")
    monkeypatch.chdir(tmp_path)
    assert load_encoder("model").protocol == load_encoder(f"./model/../{folder.name}").protocol == \
        load_encoder(str(folder)).protocol


def test_a_local_projector_folder_is_read_not_looked_up(hub, model_repos, tmp_path):
    folder = _copy_model(hub, model_repos.projector, tmp_path / "projector")
    assert load_projector(folder)[0].in_features == load_projector(folder / "mm_projector.safetensors")[0].in_features
    assert "no such file or folder" in one_line(lambda: load_projector(tmp_path / "missing"))


def test_pickle_only_messages_name_the_cli_option(model_repos):
    assert "--allow-pickle" in one_line(lambda: load_encoder(model_repos.pickle_only))
    assert "--allow-pickle" in one_line(lambda: load_projector(model_repos.projector_pickle))


def _spair_with(tmp_path: Path, **pair_changes) -> Path:
    import shutil

    from low_metric.sources.mini import mini_benchmark_root

    root = tmp_path / "spair"
    shutil.copytree(mini_benchmark_root(), root)
    first = sorted((root / "PairAnnotation" / "test").glob("*.json"))[0]
    data = json.loads(first.read_text())
    for key, fn in pair_changes.items():
        data[key] = fn(data[key])
    first.write_text(json.dumps(data))
    return root, first.stem


@pytest.mark.parametrize("box", [lambda b: [b[0], b[1], b[0], b[3]], lambda b: [b[2], b[1], b[0], b[3]]],
                         ids=["zero-width", "inverted"])
def test_empty_or_inverted_boxes_fail_at_load_naming_the_pair(tmp_path, box):
    root, pair = _spair_with(tmp_path, trg_bndbox=box)
    message = one_line(lambda: load_spair(root))
    assert pair in message and "empty or inverted" in message


def test_keypoints_outside_the_image_are_warned_and_counted(tmp_path):
    root, pair = _spair_with(tmp_path, src_kps=lambda k: [[-50.0, -50.0]] + k[1:])
    with pytest.warns(UserWarning, match=f"1 keypoints in 1 pairs lie outside their image \\(first: {pair}\\)"):
        load_spair(root)


# ------------------------------------------------------------------------------------- CLI habits
def _options():
    from low_metric.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                yield name, command, action


def test_every_option_has_a_help_and_shows_its_default():
    for name, command, action in _options():
        assert action.help, f"{name} {action.option_strings[0]} has no help"
        if action.default not in (None, False, []):
            text = command.formatter_class(name)._get_help_string(action)
            assert "default" in text, f"{name} {action.option_strings[0]}: default {action.default!r} not shown"


def test_exit_codes_are_stated_in_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "1 runtime failure" in out and "2 usage error" in out and "130 interrupted" in out


def test_score_json_is_one_object_on_stdout(model_repos, tmp_path, capsys):
    out = tmp_path / "out.json"
    code = main(["score", model_repos.timm_vit, "--reference", model_repos.clip224, "--limit", "1", "--json",
                 "--output", str(out), "--cache-dir", str(tmp_path / "c")])
    captured = capsys.readouterr()
    assert code == 0
    data = json.loads(captured.out)  # the whole of stdout is one JSON object
    assert data["output"] == str(out) and data["results"] == read_results(out)
    assert {"timestamp", "versions"} <= set(data["results"][0]) and "torch" in data["results"][0]["versions"]


def test_an_invalid_id_through_evaluates_encoder_configuration_is_one_line():
    import evaluate

    from low_metric.metric import metric_file

    metric = evaluate.load(str(metric_file()), "encoder")
    message = one_line(lambda: metric.compute(predictions=["bad id with spaces"], references=[["org/reference"]]))
    assert "'bad id with spaces' is not a valid Hub model id" in message


def test_leaderboard_reads_a_local_folder_and_skips_bad_files_naming_them(record, tmp_path, capsys):
    results = _results_file(tmp_path, record)
    assert main(["publish", str(results), "--dataset", "hardening/board", "--local-dir", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "datasets" / "hardening" / "board"
    (good,) = folder.glob("results/**/*.jsonl")
    row = json.loads(good.read_text())
    bad_record = copy.deepcopy(record)
    bad_record["A"]["A"] = "high"
    bad = {
        "results/a--high/x.jsonl": json.dumps({**row, "record": json.dumps(bad_record)}),
        "results/b--hash/x.jsonl": json.dumps({**row, "protocol_hash": 7}),
        "results/c--text/x.jsonl": "not json at all",
    }
    for path, text in bad.items():
        (folder / path).parent.mkdir(parents=True)
        (folder / path).write_text(text + "\n")
    capsys.readouterr()
    with pytest.warns(UserWarning) as caught:
        assert main(["leaderboard", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["encoder"] for r in rows] == [record["encoder"]]
    assert {p for p in bad if any(p in str(w.message) for w in caught)} == set(bad)
