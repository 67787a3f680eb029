"""What the Hub builds: both Spaces and the mini benchmark dataset, written with ``--local-dir`` by the hub
scripts, then used from those files alone: each Space started in a fresh process as a Space runs it
(``python app.py`` in its folder, whose own copy of the library wins over any installed one: each Space
reports the copy it imported) and asked to score through gradio_client, against the Hub double; the
dataset read back with ``datasets`` and the SPair loader."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml

import low_metric
from low_metric.hub.card import HubIds
from low_metric.hub.spaces import PYTHON_VERSION, ZEROGPU_TORCH, library_requirements
from low_metric.scoring.results import VERSION
from low_metric.scoring.scorer import DEFAULT_REFERENCES, ScoreConfig, score_encoders
from tests.conftest import WRITER_TOKEN
from tests.space_support import add_results_dataset, free_port

SCRIPTS = Path(__file__).resolve().parents[1] / "hub_scripts"
PACKAGE = Path(low_metric.__file__).resolve().parent


def build(script: str, out: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(SCRIPTS / script), *args, "--local-dir", str(out)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env}, check=False)
    assert proc.returncode == 0 and "wrote" in proc.stdout, proc.stdout + proc.stderr
    return proc


def front_matter(readme: Path) -> dict:
    return yaml.safe_load(re.match(r"---\n(.*?)\n---\n", readme.read_text(), re.DOTALL)[1])


def space_env(root: Path, hub_url: str, port: int, **extra: str) -> dict[str, str]:
    """A Space's environment: this one's libraries (PYTHONPATH kept: a floors overlay stays in force, and the
    Space's folder comes first on sys.path anyway), none of its Hub, gradio or low_metric settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "GRADIO_", "LOW_METRIC_"))}
    return env | {"HF_ENDPOINT": hub_url, "HF_HOME": str(root / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1",
                  "HF_HUB_DISABLE_XET": "1", "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SERVER_NAME": "127.0.0.1",
                  "GRADIO_SERVER_PORT": str(port), "GRADIO_TEMP_DIR": str(root / "gradio_tmp"),
                  "LOW_METRIC_CACHE": str(root / "low_metric_cache"), "NO_PROXY": "127.0.0.1,localhost",
                  "OPENBLAS_NUM_THREADS": "2", **extra}


@contextmanager
def serving(folder: Path, env: dict[str, str], port: int, ready: str) -> Iterator[list[str]]:
    """``python app.py`` in ``folder`` until its port answers and a line with ``ready`` was printed; yields its output."""
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0 and any(ready in line for line in lines):
                    break
            time.sleep(0.5)
        assert proc.poll() is None and any(ready in line for line in lines), "".join(lines)[-4000:]
        yield lines
    finally:
        proc.terminate()
        proc.wait(30)


def library_of(lines: list[str], prefix: str) -> Path:
    """The library folder a Space says it runs (its start-up line: ``<prefix> ... (<folder>)``)."""
    line = next(line for line in lines if line.startswith(prefix))
    return Path(re.search(r"\(([^)]+)\)", line)[1])


def check_library_copy(folder: Path) -> None:
    copy = folder / "low_metric"
    assert (copy / "VERSION").read_text().strip() == VERSION
    source = {p.relative_to(PACKAGE) for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    copied = {p.relative_to(copy) for p in copy.rglob("*") if p.is_file()}
    assert copied == source | {Path("VERSION")}  # the whole package, data included, nothing else (no caches, no tests)


def check_requirements(folder: Path) -> None:
    lines = [line for line in (folder / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert lines == library_requirements() and not any(line.startswith("low_metric") for line in lines)
    floor = next(line for line in lines if re.match(r"torch\s*>=", line)).split(">=")[1].strip()
    assert any(f"{v}.".startswith(f"{floor}.") for v in ZEROGPU_TORCH)  # a torch ZeroGPU runs meets the floor


def test_the_app_space_builds_and_scores_from_its_own_files(hub, model_repos, tmp_path):
    from gradio_client import Client

    board = score_encoders([model_repos.timm_vit], ScoreConfig(limit=1, cache_dir=str(tmp_path / "board")))
    dataset = add_results_dataset(hub, "space-build/results", board)
    folder = tmp_path / "space"
    build("deploy_space.py", folder, "--results-dataset", dataset)
    front = front_matter(folder / "README.md")
    assert front["python_version"] == PYTHON_VERSION in ("3.10", "3.12") and front["sdk"] == "gradio"
    assert front["models"] == list(DEFAULT_REFERENCES) and front["datasets"] == [HubIds.mini, dataset]
    assert front["preload_from_hub"] == [f"{r} config.json,preprocessor_config.json,model.safetensors"
                                         for r in DEFAULT_REFERENCES]
    assert front["hf_oauth"] is True and "/data" not in (folder / "README.md").read_text()
    assert (folder / "app.py").read_bytes() == (PACKAGE.parent / "space" / "app.py").read_bytes()
    check_requirements(folder)
    check_library_copy(folder)

    port = free_port()
    env = space_env(tmp_path, hub.url, port, LOW_METRIC_RESULTS_DATASET=dataset)
    with serving(folder, env, port, "data and references loaded") as lines:
        assert library_of(lines, "low_metric ") == folder / "low_metric"  # the Space's own copy, not the install
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False, download_files=False)
        record = client.predict(model_repos.dinov2, -2, 16, 5, True, 1, api_name="/score")[4]
        table, note = client.predict(api_name="/leaderboard")
    (expected,) = score_encoders([model_repos.dinov2], ScoreConfig(limit=1, cache_dir=str(tmp_path / "cli")))
    assert record["encoder"] == model_repos.dinov2 and record["protocol_hash"] == expected["protocol_hash"]
    assert record["C"]["C"] == pytest.approx(expected["C"]["C"]) and record["A"]["A"] == pytest.approx(expected["A"]["A"])
    assert "1 results from the dataset" in note and table["data"][0][0] == model_repos.timm_vit
    hub_cache = {p.name for p in (tmp_path / "hf_home" / "hub").iterdir()}
    assert "models--tests--tiny-dinov2" not in hub_cache  # the visitor's encoder left the cache after scoring
    assert {"models--openai--clip-vit-large-patch14", "models--openai--clip-vit-large-patch14-336"} <= hub_cache


def test_the_metric_space_builds_and_serves_from_its_own_files(hub, tmp_path):
    from gradio_client import Client

    folder = tmp_path / "ac_score"
    build("publish_metric.py", folder)
    assert {p.name for p in folder.iterdir()} == {"ac_score.py", "app.py", "README.md", "requirements.txt", "low_metric"}
    assert front_matter(folder / "README.md")["python_version"] == PYTHON_VERSION
    check_requirements(folder)
    check_library_copy(folder)
    example = {"predictions": [[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.8], [0.8, 0.6], [1.0, 0.0]]],
               "references": [[[1.0, 0.0], [0.6, 0.8]], [[0.0, 1.0]]], "mode": "projector"}
    port = free_port()
    env = space_env(tmp_path, hub.url, port, HF_HUB_OFFLINE="1", HF_EVALUATE_OFFLINE="1")
    with serving(folder, env, port, "ac_score: low_metric") as lines:
        assert library_of(lines, "ac_score: ") == folder / "low_metric"
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False, download_files=False)
        result = client.predict("alignment", json.dumps(example), api_name="/compute")
    target = [np.asarray(p, dtype=np.float32) for p in example["predictions"]]
    assert result["A"] == low_metric.a_score(target, [np.asarray(r, dtype=np.float32) for r in example["references"]])


def test_evaluate_loads_the_published_metric_by_its_hub_id(hub, tmp_path):
    """What the metric card promises: ``evaluate.load("ORG/ac_score")`` where low_metric is installed."""
    proc = subprocess.run([sys.executable, str(SCRIPTS / "publish_metric.py"), "--space-id", "writer/ac_score"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_TOKEN": WRITER_TOKEN},
                          check=False)
    assert proc.returncode == 0 and "committed" in proc.stdout, proc.stdout + proc.stderr
    script = ("import evaluate, json; ac = evaluate.load('writer/ac_score', 'ac'); "
              "print('RESULT', json.dumps(ac.compute(predictions=[{'A': 0.47, 'C': 24.51}], law='paper')['AC']))")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_EVALUATE_OFFLINE", "HF_HUB_OFFLINE")}
    env["HF_HOME"] = str(tmp_path / "hf_home")  # no module cached: it comes from the Space
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env,
                            cwd=tmp_path, check=False)
    assert loaded.returncode == 0 and "RESULT" in loaded.stdout, loaded.stdout[-2000:] + loaded.stderr[-3000:]
    import evaluate

    from low_metric.metric import metric_file

    expected = evaluate.load(str(metric_file()), "ac").compute(predictions=[{"A": 0.47, "C": 24.51}], law="paper")["AC"]
    assert json.loads(loaded.stdout.split("RESULT", 1)[1]) == pytest.approx(expected)
    assert any(r.path.startswith("/spaces/writer/ac_score/resolve/") for r in hub.request_log)


def test_the_mini_benchmark_dataset_reads_back(hub, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    from low_metric.sources.mini import load_mini
    from low_metric.sources.spair import load_spair

    folder = tmp_path / "mini"
    build("publish_benchmark.py", folder, "--dataset-id", "me/mini-benchmark")
    card = DatasetCard((folder / "README.md").read_text())
    assert card.data.license == "other" and card.data.license_link == "SOURCES.md" and card.data.pretty_name
    assert (folder / "SOURCES.md").read_bytes() == (PACKAGE / "data" / "mini" / "SOURCES.md").read_bytes()
    mini = load_mini()
    assert load_spair(folder).hash == mini.hash  # the same data: `low-metric score --spair <download>` scores it
    pairs = datasets.load_dataset(str(folder), "pairs", split="test", cache_dir=str(tmp_path / "datasets_cache"))
    assert pairs.num_rows == len(mini.pairs) and pairs.features["src_kps"].feature.feature.dtype == "float64"
    first, row = mini.pairs[0], pairs[0]
    assert row["pair"] == first.id and np.allclose(row["trg_kps"], first.trg_kps) and (folder / row["src_image"]).is_file()
    # and published: the Hub double holds the same files
    proc = subprocess.run([sys.executable, str(SCRIPTS / "publish_benchmark.py"), "--dataset-id", "writer/mini-benchmark"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_TOKEN": WRITER_TOKEN},
                          check=False)
    assert proc.returncode == 0 and "committed" in proc.stdout, proc.stdout + proc.stderr
    local = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert [f for f in hub.files("writer/mini-benchmark", repo_type="dataset") if f != ".gitattributes"] == local
