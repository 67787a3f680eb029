"""The hub_scripts as subprocesses, with HF_ENDPOINT (the Hub double) and HF_TOKEN in their environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from low_metric.hub.leaderboard import result_path
from low_metric.scoring.results import RESULTS_FORMAT, write_json_atomic
from tests.conftest import READER_TOKEN, WRITER_TOKEN
from tests.hub_double import HubDouble
from tests.scored import OTHER_CARD, score

SCRIPTS = Path(__file__).resolve().parent.parent / "hub_scripts"
SECRET = "hf_SECRET_publisher_token_7f3a9c"  # a token string found nowhere else: grep for it


@pytest.fixture(scope="module")
def results_file(model_repos, tmp_path_factory) -> Path:
    cache = tmp_path_factory.getbasetemp() / "publish_feature_cache"
    path = tmp_path_factory.mktemp("script_results") / "results.json"
    write_json_atomic(path, {"format": RESULTS_FORMAT,
                             "results": score([model_repos.timm_vit, model_repos.dinov2], model_repos.clip224, cache)})
    return path


@pytest.fixture(scope="module")
def publisher(hub: HubDouble) -> str:
    return hub.add_user("publisher", SECRET)


def run(script: str, *args: str, token: str | None = None, home: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """Run a hub script; ``token`` goes in HF_TOKEN (none: no HF_TOKEN), ``home`` replaces HF_HOME."""
    environ = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"} | env
    if token:
        environ["HF_TOKEN"] = token
    if home:
        environ["HF_HOME"] = str(home)
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, env=environ,
                          check=False, timeout=300)


def run_many(calls: list[tuple[str, list[str], dict]]) -> list[subprocess.CompletedProcess]:
    """Independent script runs side by side (each pays the same start-up: torch's import)."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda c: run(c[0], *c[1], **c[2]), calls))


def one_error_line(proc: subprocess.CompletedProcess, script: str, words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and words in lines[0], proc.stderr


def space_folder(root: Path) -> Path:
    """A Space page and card to deploy (the library and the requirements are added by the build)."""
    folder = root / "space"
    folder.mkdir()
    (folder / "README.md").write_text("---\ntitle: low_metric\nsdk: gradio\napp_file: app.py\n---\n# Space\n")
    (folder / "app.py").write_text("print('hello')\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    return folder


def test_every_script_has_help_and_reads_the_login(results_file, tmp_path):
    scripts = ("publish_results.py", "publish_metric.py", "deploy_space.py", "score_batch.py", "publish_benchmark.py")
    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text("hf_not_a_known_token")  # a stored `hf auth login`, no HF_TOKEN
    args = [str(results_file), "--card", "--dataset", "x/y", "--dry-run"]
    *helps, login = run_many([(s, ["--help"], {}) for s in scripts] + [("publish_results.py", args, {"home": home})])
    for script, proc in zip(scripts, helps):
        assert proc.returncode == 0 and "--dry-run" in proc.stdout and "HF_TOKEN" in proc.stdout, script
        assert "--local-dir" in proc.stdout and "--token" not in proc.stdout
    one_error_line(login, "publish_results.py", "the Hub refused the token (401)")


def test_publish_end_to_end_never_leaks_the_token(hub, results_file, publisher, model_repos, tmp_path):
    records = json.loads(results_file.read_text())["results"]
    hub.add_repo("publisher/card", {"README.md": OTHER_CARD}, write_tokens=[SECRET])
    procs = []
    # dry run: reads only
    n_requests = len(hub.request_log)
    dry = run("publish_results.py", str(results_file), "--card", "--dataset", "publisher/encoder-results", "--dry-run",
              token=SECRET)
    procs.append(dry)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("[dry run]") == 3 and "+    - type: low-metric/ac_score" in dry.stdout
    assert all(r.method in ("GET", "HEAD") or r.path == "/api/validate-yaml" for r in hub.request_log[n_requests:])
    # cards by pull request and the dataset, in one go
    prs_before = {r: len(hub.pull_requests(r)) for r in (model_repos.timm_vit, model_repos.dinov2)}
    done = run("publish_results.py", str(results_file), "--card", "--dataset", "publisher/encoder-results", token=SECRET)
    procs.append(done)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("pull request") == 2 and done.stdout.count("committed") == 1
    for repo, n in prs_before.items():
        pr = hub.pull_requests(repo)[-1]
        assert len(hub.pull_requests(repo)) == n + 1 and pr.author == "publisher"
        assert b"config: correspondence" in hub.read(repo, "README.md", revision=pr.ref)
    assert {result_path(r) for r in records} <= set(hub.files("publisher/encoder-results", repo_type="dataset"))
    again = run("publish_results.py", str(results_file), "--card", "--dataset", "publisher/encoder-results",
                token=SECRET)
    procs.append(again)
    assert again.returncode == 0 and again.stdout.count("unchanged") == 3, again.stdout + again.stderr
    # a direct commit to a card the publisher may write to
    one = tmp_path / "one.json"
    write_json_atomic(one, {"format": RESULTS_FORMAT, "results": records[:1]})
    direct = run("publish_results.py", str(one), "--card", "--repo-id", "publisher/card", "--no-pr", "--dataset",
                 "publisher/encoder-results", token=SECRET)
    procs.append(direct)
    assert direct.returncode == 0 and "committed" in direct.stdout, direct.stderr
    # the metric Space and the app Space
    for script, args in (("publish_metric.py", ["--space-id", "publisher/ac_score"]),
                         ("deploy_space.py", ["--space-id", "publisher/low-metric", "--folder", str(space_folder(tmp_path))])):
        dry = run(script, *args, "--dry-run", token=SECRET)
        procs.append(dry)
        assert dry.returncode == 0 and "app.py" in dry.stdout and "pycache" not in dry.stdout, dry.stderr
        for expected in ("committed", "unchanged"):
            proc = run(script, *args, token=SECRET)
            procs.append(proc)
            assert proc.returncode == 0 and expected in proc.stdout, proc.stdout + proc.stderr
    space_files = hub.files("publisher/ac_score", repo_type="space")
    assert {"ac_score.py", "app.py", "README.md", "requirements.txt", "low_metric/__init__.py"} <= set(space_files)
    assert not any("pycache" in f for f in space_files + hub.files("publisher/low-metric", repo_type="space"))
    # the token is nowhere: output, files written, commits (messages and contents), request bodies
    assert not any(SECRET in p.stdout + p.stderr for p in procs)
    assert not any(SECRET.encode() in f.read_bytes() for f in tmp_path.rglob("*") if f.is_file())
    assert SECRET not in results_file.read_text()
    for repo_type, repo in [("model", model_repos.timm_vit), ("model", model_repos.dinov2), ("model", "publisher/card"),
                            ("dataset", "publisher/encoder-results"), ("space", "publisher/ac_score"),
                            ("space", "publisher/low-metric")]:
        for c in hub.commits(repo, repo_type=repo_type):
            assert SECRET not in c.title + c.description and not any(SECRET.encode() in d for d in c.files.values())
    assert not any(SECRET in r.body or SECRET in r.path or SECRET in json.dumps(r.headers) for r in hub.request_log)


def test_score_batch_scores_then_publishes(hub, model_repos, tmp_path):
    encoders = tmp_path / "encoders.txt"
    encoders.write_text(f"# tiny encoders\n{model_repos.timm_vit}\n\n")
    out = tmp_path / "batch.json"
    cache = str(tmp_path / "cache")
    dry = run("score_batch.py", "--file", str(encoders), "--num-processes", "2", "--cpu", "--dataset", "writer/batch",
              "--dry-run", "--", "--reference", model_repos.clip224, token=WRITER_TOKEN)
    assert dry.returncode == 0 and "ACCELERATE_USE_CPU=1" in dry.stdout and "accelerate.commands.launch" in dry.stdout
    assert "--num_processes 2" in dry.stdout and not out.exists()
    proc = run("score_batch.py", "--file", str(encoders), "--output", str(out), "--dataset", "writer/batch",
               "--", "--reference", model_repos.clip224, "--cache-dir", cache, token=WRITER_TOKEN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = json.loads(out.read_text())["results"]
    assert record["encoder"] == model_repos.timm_vit and "committed" in proc.stdout
    assert result_path(record) in hub.files("writer/batch", repo_type="dataset")
    # --local-dir: what would be published, written into a folder; no token needed, no Hub written
    n_commits = len(hub.commits("writer/batch", repo_type="dataset"))
    local = run("score_batch.py", "--file", str(encoders), "--output", str(tmp_path / "local.json"), "--card",
                "--dataset", "writer/batch", "--local-dir", str(tmp_path / "out"), "--", "--reference",
                model_repos.clip224, "--cache-dir", cache)
    assert local.returncode == 0 and local.stdout.count("wrote") == 2, local.stdout + local.stderr[-3000:]
    assert (tmp_path / "out" / "models" / model_repos.timm_vit / "README.md").is_file()
    assert (tmp_path / "out" / "datasets" / "writer" / "batch" / result_path(record)).is_file()
    assert len(hub.commits("writer/batch", repo_type="dataset")) == n_commits
    refused = run("score_batch.py", model_repos.timm_vit, "--output", str(tmp_path / "never.json"), "--dataset",
                  "writer/batch", "--", "--reference", model_repos.clip224, token=READER_TOKEN)
    one_error_line(refused, "score_batch.py", "no write access to dataset writer/batch")
    assert not (tmp_path / "never.json").exists()  # refused before scoring


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_errors_are_one_line_and_leave_no_partial_state(hub, results_file, model_repos, tmp_path):
    def state() -> dict:
        repos = [("model", model_repos.timm_vit), ("model", model_repos.dinov2), ("model", "writer/errors-card")]
        out = {r: (len(hub.commits(r, repo_type=t)), len(hub.pull_requests(r, repo_type=t))) for t, r in repos}
        return out | {"locked": len(hub.commits("writer/errors-locked", repo_type="dataset"))}

    hub.add_repo("writer/errors-card", {"README.md": OTHER_CARD}, write_tokens=[WRITER_TOKEN])
    hub.add_repo("writer/errors-locked", {"README.md": "# results\n"}, repo_type="dataset", write_tokens=[WRITER_TOKEN])
    one = tmp_path / "one.json"
    write_json_atomic(one, {"format": RESULTS_FORMAT, "results": json.loads(results_file.read_text())["results"][:1]})
    before = state()
    cases = [
        ({"home": tmp_path / "empty_home"}, [str(results_file), "--dataset", "writer/x"], "no Hugging Face token"),
        ({"token": READER_TOKEN}, [str(one), "--card", "--repo-id", "writer/errors-card", "--no-pr", "--dataset",
                                  "writer/errors-locked"], "no write access to model writer/errors-card (403)"),
        ({"token": WRITER_TOKEN}, [str(one), "--card", "--repo-id", "nobody/absent", "--dataset", "writer/x"],
         "model nobody/absent does not exist"),
        ({"token": WRITER_TOKEN, "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}, [str(results_file), "--dataset",
                                                                                        "writer/x"], "is unreachable"),
        ({"token": WRITER_TOKEN}, [str(results_file), "--card"], "need a source: publish them to a results dataset"),
        ({"token": READER_TOKEN}, [str(results_file), "--card", "--dataset", "writer/errors-locked"],
         "no write access to dataset writer/errors-locked (403)"),  # the cards' PRs would pass: none is opened
        ({"token": WRITER_TOKEN}, [str(tmp_path / "absent.json"), "--card"], "no such file"),
    ]
    unreachable = {"token": READER_TOKEN, "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    more = [("publish_metric.py", ["--space-id", "reader/ac_score"], unreachable, "unreachable"),
            ("deploy_space.py", ["--space-id", "reader/app", "--folder", str(tmp_path / "absent")], unreachable,
             "no app.py"),
            ("deploy_space.py", ["--folder", str(tmp_path / "absent")], unreachable, "give --space-id ID (or --local-dir DIR)"),
            ("publish_metric.py", ["--space-id", "writer/ac_score"], {"token": READER_TOKEN},
             "cannot create it under 'writer'")]
    calls = [("publish_results.py", args, env, words) for env, args, words in cases] + more
    for (script, _, _, words), proc in zip(calls, run_many([c[:3] for c in calls])):
        one_error_line(proc, script, words)
    assert state() == before
