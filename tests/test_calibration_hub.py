"""A published calibration: `hub_scripts/publish_calibration.py` (and its --local-dir), read back with
huggingface_hub, then `--calibration hub:ORG/NAME` in the CLI and LOW_METRIC_CALIBRATION in the Space,
all against the Hub double."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client

from low_metric.cli import main
from low_metric.scoring.calibration import CALIBRATION_FILE, load_calibration, predict
from low_metric.scoring.report import paper_scale
from low_metric.scoring.results import write_json_atomic
from tests.conftest import WRITER_TOKEN
from tests.space_support import calibration_for, launched, load_app

SCRIPT = Path(__file__).resolve().parent.parent / "hub_scripts" / "publish_calibration.py"
REPO = "writer/low-metric-calibration"  # the writer's own namespace: it may create it
app = load_app()


def publish(*args: str, token: str | None = WRITER_TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"} | ({"HF_TOKEN": token} if token else {})
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def scored(model_repos, tmp_path_factory):
    """The Space's default options scored once (their protocol is the calibration's), and its calibration file."""
    root = tmp_path_factory.mktemp("calibration_hub")
    settings = app.Settings(cache_dir=str(root / "cache"))
    plain = app.Handlers(settings).score(model_repos.dinov2, -2, 16, 5, True, 1, [])[5]
    calibration = calibration_for(plain["protocol"])
    write_json_atomic(root / "calibration.json", calibration)
    return {"root": root, "plain": plain, "calibration": calibration, "file": root / "calibration.json"}


@pytest.fixture(scope="module")
def published(hub, scored):
    before = len(hub.request_log)
    local = scored["root"] / "local"
    proc = publish(str(scored["file"]), "--repo-id", REPO, "--local-dir", str(local))
    assert proc.returncode == 0, proc.stderr
    assert len(hub.request_log) == before  # --local-dir touches no Hub
    proc = publish(str(scored["file"]), "--repo-id", REPO)
    assert proc.returncode == 0, proc.stderr
    return {"local": local, "first": proc.stdout}


def test_local_dir_holds_exactly_what_is_committed(hub, scored, published):
    local = published["local"]
    assert sorted(p.name for p in local.iterdir()) == ["README.md", CALIBRATION_FILE]
    assert sorted(hub.files(REPO, repo_type="dataset")) == [".gitattributes", "README.md", CALIBRATION_FILE]
    for name in ("README.md", CALIBRATION_FILE):
        assert hub.read(REPO, name, repo_type="dataset") == (local / name).read_bytes()
    card = (local / "README.md").read_text()
    assert scored["calibration"]["protocol_hash"] in card and f"hub:{REPO}" in card


def test_read_back_with_huggingface_hub_and_republish_changes_nothing(hub, scored, published):
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(REPO, CALIBRATION_FILE, repo_type="dataset")
    assert json.loads(Path(path).read_text()) == scored["calibration"]
    assert load_calibration(f"hub:{REPO}") == scored["calibration"]
    commits = len(hub.commits(REPO, repo_type="dataset"))
    again = publish(str(scored["file"]), "--repo-id", REPO)
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert len(hub.commits(REPO, repo_type="dataset")) == commits


def test_publishing_refuses_a_damaged_file_and_needs_a_token(scored, tmp_path):
    bad = dict(scored["calibration"], method="refit")  # its calibration hash no longer matches
    write_json_atomic(tmp_path / "bad.json", bad)
    proc = publish(str(tmp_path / "bad.json"), "--repo-id", REPO)
    assert proc.returncode == 2 and "calibration_hash does not match" in proc.stderr
    proc = publish(str(scored["file"]), "--repo-id", REPO, token=None)
    assert proc.returncode == 2 and "no Hugging Face token" in proc.stderr


def test_cli_score_with_a_hub_calibration(model_repos, scored, published, tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["score", model_repos.dinov2, "--limit", "1", "--cache-dir", str(scored["root"] / "cache"), "--output", str(out)]
    capsys.readouterr()
    assert main([*args, "--calibration", f"hub:{REPO}"]) == 0
    text = capsys.readouterr().out
    (record,) = json.loads(out.read_text())["results"]
    assert record["protocol_hash"] == scored["calibration"]["protocol_hash"]
    assert record["AC"] == predict(scored["plain"], scored["calibration"])
    assert "on the paper's scale (transfer calibration)" in text and "interval" in text
    assert main([*args, "--patch", "8", "--calibration", f"hub:{REPO}"]) == 2  # another protocol: refused
    assert "differs from the calibration's" in capsys.readouterr().err
    assert main([*args, "--calibration", "hub:writer/no-such-calibration"]) == 2
    assert "not found" in capsys.readouterr().err


def test_the_space_places_the_encoder_with_the_published_calibration(model_repos, scored, published, monkeypatch):
    monkeypatch.setenv("LOW_METRIC_CALIBRATION", f"hub:{REPO}")
    settings = app.Settings.from_env()
    assert settings.calibration == scored["calibration"]
    settings = app.Settings(cache_dir=str(scored["root"] / "cache"), calibration=settings.calibration)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with launched(settings) as url:
        client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        headline, _, predicted, plot, record = client.predict(model_repos.dinov2, -2, 16, 5, True, 1, api_name="/score")
    expected = predict(scored["plain"], scored["calibration"])
    assert record["AC"] == expected
    assert f"{expected['AC_mean']:.3f}" in headline and "transfer calibration" in headline
    assert predicted["headers"] == ["benchmark", "AC", "predicted score", "interval", "extrapolation"]
    rows = {row[0]: row for row in predicted["data"]}
    for b, y in expected["predicted"].items():
        lo, hi = expected["interval"][b]
        assert rows[b][2] == round(y, 2) and rows[b][3] == f"{lo:.2f} to {hi:.2f}"
        assert rows[b][4] == ("yes" if expected["extrapolation"][b] else "no")
    a, c = paper_scale(record)
    points = [dict(zip(plot["columns"], row)) for row in plot["data"]]
    (mine,) = [p for p in points if p["name"] == model_repos.dinov2]
    assert mine["source"] == app.MAPPED_SOURCE and mine["A"] == pytest.approx(a) and mine["C"] == pytest.approx(c)
    assert a == pytest.approx(sum(expected["mapped"]["A"].values()) / 8) and c == pytest.approx(expected["mapped"]["C"])
    assert sum(p["source"] == app.PAPER_SOURCE for p in points) == 13


def test_the_evaluate_encoder_configuration_with_the_hub_calibration(model_repos, scored, published):
    import evaluate

    from low_metric.metric import metric_file
    from low_metric.scoring.scorer import DEFAULT_REFERENCES

    metric = evaluate.load(str(metric_file()), "encoder", cache_dir=str(scored["root"] / "metric_cache"))
    out = metric.compute(predictions=[model_repos.dinov2], references=[list(DEFAULT_REFERENCES)], limit=1,
                         cache_dir=str(scored["root"] / "cache"), calibration=f"hub:{REPO}")
    assert out["results"][0]["AC"] == predict(scored["plain"], scored["calibration"])
    assert out["AC"] == [out["results"][0]["AC"]["AC_mean"]]
