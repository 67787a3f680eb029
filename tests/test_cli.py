"""The low-metric command line, run as a real process."""

import json
import subprocess
import sys

import numpy as np
import pytest

from low_metric import fit_law, paper_table


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "low_metric.cli", *args], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_law_json_has_r2_per_benchmark():
    out = json.loads(run("law", "--table", "paper", "--json").stdout)
    t = paper_table()
    assert set(out) == set(t.benchmarks)
    for b, r in out.items():
        assert r["r2"] == pytest.approx(fit_law(*t.benchmark(b)).r2, abs=1e-12)
        assert r["r2"] > r["r2_linear"] and r["n"] == 13


def test_law_table_and_saved_laws(tmp_path):
    out = run("law", "--save-dir", str(tmp_path)).stdout
    assert "mmbench_en" in out and "LOO RMSE" in out
    assert len(list(tmp_path.glob("law_*.json"))) == 8


def test_policy_simulation_prints_both_curves():
    out = json.loads(run("policy", "--table", "paper", "--benchmark", "all", "--budget", "5", "--trials", "100", "--json").stdout)
    ac, rnd = np.array(out["mean"]["ac"]), np.array(out["mean"]["random"])
    assert len(ac) == len(rnd) == 5 and (ac[1:] > rnd[1:]).all()
    text = run("policy", "--benchmark", "mme", "--budget", "3", "--trials", "20").stdout
    assert "AC policy" in text and "random" in text and len(text.strip().splitlines()) == 5


def test_policy_recommendation_from_files(tmp_path):
    cands = tmp_path / "candidates.csv"
    cands.write_text("name,A,C\nenc-a,0.8,14\nenc-b,0.5,24\nenc-c,0.35,20\nenc-d,0.4,3\nenc-e,0.6,18\n")
    observed = tmp_path / "observed.json"
    observed.write_text(json.dumps({"enc-a": 64.0, "enc-d": 33.0}))
    rec = json.loads(run("policy", "--candidates", str(cands), "--observed", str(observed), "--json").stdout)
    assert rec["next"] in {"enc-b", "enc-c", "enc-e"}
    assert rec["top"][0] in rec["predicted"] and len(rec["top"]) == 3
    text = run("policy", "--candidates", str(cands), "--observed", str(observed)).stdout
    assert "next to fine-tune" in text and "(observed)" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (("law", "--table", "missing.csv"), "no such file"),
        (("law", "--benchmark", "gqa"), "unknown benchmark 'gqa'"),
        (("policy", "--budget", "0"), "budget must be between 1"),
        (("policy", "--observed", "x.csv"), "--observed needs --candidates"),
    ],
)
def test_errors_are_one_line_and_nonzero(args, message):
    proc = run(*args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
