"""Publishing results to model cards and the results dataset, against the Hub double."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import httpx
import pytest
import yaml
from huggingface_hub import ModelCard, metadata_load, parse_eval_result_entries

from low_metric import LowMetricError
from low_metric.hub.card import card_repo_id, eval_results, merge_card
from low_metric.hub.leaderboard import format_table, result_path, write_table
from low_metric.hub.publish import (
    publish_records,
    publish_to_card,
    publish_to_dataset,
    read_leaderboard,
)
from tests.conftest import READER_TOKEN, WRITER_TOKEN
from tests.hub_double import HubDouble
from tests.scored import OTHER_CARD, score, with_ac


@pytest.fixture(scope="module")
def records(model_repos, tmp_path_factory) -> list[dict]:
    """Real records of two tiny encoders (C and ridge A against the tiny CLIP@224)."""
    cache = tmp_path_factory.getbasetemp() / "publish_feature_cache"
    return score([model_repos.timm_vit, model_repos.dinov2], model_repos.clip224, cache)


@pytest.fixture
def card_repo(hub: HubDouble, request: pytest.FixtureRequest) -> str:
    """A model repo whose card already holds someone else's results; WRITER_TOKEN may write to it."""
    repo_id = f"cards/{request.node.name.replace('_', '-')[:60]}"
    hub.add_repo(repo_id, {"README.md": OTHER_CARD, "config.json": "{}"}, write_tokens=[WRITER_TOKEN])
    return repo_id


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither HF_TOKEN nor a stored login."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "stored_tokens"))


def ours(card_text: str) -> list:
    return [r for r in ModelCard(card_text).data.eval_results if r.source_name and r.source_name.startswith("low_metric")]


# ---------------------------------------------------------------------------------- pure parts
def test_eval_results_carry_the_protocol(records, model_repos):
    vit = records[0]
    assert card_repo_id(vit) == model_repos.timm_vit
    results = eval_results(vit, "0.1.0")
    assert [r.metric_type for r in results] == ["a_score", "c_score"]
    assert {r.metric_args["protocol_hash"] for r in results} == {vit["protocol_hash"]}
    assert results[1].metric_value == round(vit["C"]["C"], 2) and results[0].task_type == "image-feature-extraction"
    full = eval_results(with_ac(vit), "0.1.0")
    assert [r.metric_type for r in full][:3] == ["a_score", "c_score", "ac_score"]
    assert len(full) == 3 + 8  # the AC mean and a predicted score per benchmark of the paper
    local = copy.deepcopy(vit)
    local["encoder_protocol"]["revision"] = "sha256:" + "0" * 64
    with pytest.raises(LowMetricError, match="not a Hub model"):
        card_repo_id(local)


def test_merge_card_is_pure_and_idempotent(records):
    vit = records[0]
    merged = merge_card(OTHER_CARD, eval_results(vit, "0.1.0"), "someone-vit")
    assert merge_card(merged, eval_results(vit, "0.1.0"), "someone-vit") is merged  # nothing to change
    assert merge_card(None, eval_results(vit, "0.1.0"), "tiny").startswith("---\nmodel-index:")
    broken = OTHER_CARD.replace("- name: someone-vit\n", "- name: a\n  results: []\n- name: b\n")
    with pytest.raises(LowMetricError, match="lists 2 models"):
        merge_card(broken, eval_results(vit, "0.1.0"), "x")


# ---------------------------------------------------------------------------------- model cards
def test_card_keeps_other_results_and_valid_yaml(hub, records, card_repo, tmp_path):
    outcome = publish_to_card(records[0], repo_id=card_repo, create_pr=False, token=WRITER_TOKEN)
    assert outcome.changed and outcome.pr_url is None and outcome.url
    text = hub.read(card_repo, "README.md").decode()
    assert text.endswith("# someone-vit\n\nA card written by someone else: this body must survive.\n")
    card = ModelCard(text)  # parses back, model-index and all
    types = [(r.metric_type, r.metric_value) for r in card.data.eval_results]
    assert ("accuracy", 81.2) in types and len(types) == 3
    assert card.data.model_name == "someone-vit" and card.data.license == "apache-2.0"
    assert card.data.eval_results[0].source_name == "Their paper"
    (tmp_path / "README.md").write_text(text)
    meta = metadata_load(tmp_path / "README.md")
    assert meta["tags"] == ["vision"] and len(meta["model-index"]) == 1
    card.validate()  # the double's validate-yaml
    bad = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": "---\nmodel-index:\n- name: x\n---\n"})
    assert bad.status_code == 400 and bad.json()["errors"]  # ... which does check


def test_publishing_twice_leaves_one_entry(hub, records, card_repo):
    publish_to_card(records[0], repo_id=card_repo, create_pr=False, token=WRITER_TOKEN)
    n_commits = len(hub.commits(card_repo))
    again = publish_to_card(records[0], repo_id=card_repo, create_pr=False, token=WRITER_TOKEN)
    assert not again.changed and again.url is None
    assert len(hub.commits(card_repo)) == n_commits and not hub.pull_requests(card_repo)
    assert len(ours(hub.read(card_repo, "README.md").decode())) == 2


def test_changed_value_replaces_only_its_entry(hub, records, card_repo, model_repos, tmp_path_factory):
    vit = records[0]
    publish_to_card(vit, repo_id=card_repo, create_pr=False, token=WRITER_TOKEN)
    rerun = copy.deepcopy(vit)
    rerun["C"]["C"] += 1.0  # same protocol, another value
    publish_to_card(rerun, repo_id=card_repo, create_pr=False, token=WRITER_TOKEN)
    entries = {r.metric_type: r.metric_value for r in ours(hub.read(card_repo, "README.md").decode())}
    assert entries == {"a_score": round(vit["A"]["A"], 4), "c_score": round(vit["C"]["C"] + 1.0, 2)}
    # another protocol (nearest-neighbour matching) is another entry; the first stays
    (nn,) = score([model_repos.timm_vit], model_repos.clip224, tmp_path_factory.getbasetemp() / "publish_feature_cache",
                  window=0)
    assert nn["protocol_hash"] != vit["protocol_hash"]
    publish_to_card(nn, repo_id=card_repo, create_pr=False, token=WRITER_TOKEN)
    text = hub.read(card_repo, "README.md").decode()
    assert len(ours(text)) == 4 and len(ModelCard(text).data.eval_results) == 5


def test_pull_request_by_default_and_not_twice(hub, records, card_repo):
    main_before = hub.head(card_repo)
    outcome = publish_to_card(with_ac(records[0]), repo_id=card_repo, token=READER_TOKEN)
    (pr,) = hub.pull_requests(card_repo)
    assert outcome.pr_url.endswith(f"/discussions/{pr.num}") and pr.author == "reader"
    assert hub.head(card_repo) == main_before and hub.read(card_repo, "README.md").decode() == OTHER_CARD
    assert len(ours(hub.read(card_repo, "README.md", revision=pr.ref).decode())) == 11
    again = publish_to_card(with_ac(records[0]), repo_id=card_repo, token=READER_TOKEN)
    assert not again.changed and again.pr_url == outcome.pr_url and len(hub.pull_requests(card_repo)) == 1


def test_card_written_when_the_repo_has_none(hub, records):
    hub.add_repo("cards/no-readme", {"config.json": "{}"}, write_tokens=[WRITER_TOKEN])
    publish_to_card(records[1], repo_id="cards/no-readme", create_pr=False, token=WRITER_TOKEN)
    card = ModelCard(hub.read("cards/no-readme", "README.md").decode())
    assert card.data.model_name == "no-readme" and len(ours(str(card))) == 2 and card.text == "# no-readme\n"


def test_eval_results_file_in_the_same_commit(hub, records, card_repo):
    publish_to_card(records[0], repo_id=card_repo, create_pr=False, token=WRITER_TOKEN, eval_results_file=True,
                    benchmark="low-metric/encoder-results")
    last = hub.commits(card_repo)[-1]
    (path,) = [p for p in last.added if p.startswith(".eval_results/")]
    assert set(last.added) == {"README.md", path} and path.endswith(f"{records[0]['protocol_hash'][:16]}.yaml")
    entries = parse_eval_result_entries(yaml.safe_load(hub.read(card_repo, path)))
    assert [(e.dataset_id, e.task_id) for e in entries] == [("low-metric/encoder-results", "a_score"),
                                                             ("low-metric/encoder-results", "c_score")]
    assert records[0]["protocol_hash"] in entries[0].notes


def test_dry_run_touches_nothing(hub, records, card_repo, no_token):
    n_commits, n_requests = len(hub.commits(card_repo)), len(hub.request_log)
    outcome = publish_to_card(records[0], repo_id=card_repo, dry_run=True)
    assert outcome.dry_run and outcome.changed and "a_score" in outcome.card_text and "+    - type: c_score" in outcome.diff
    assert len(hub.commits(card_repo)) == n_commits and not hub.pull_requests(card_repo)
    assert all(r.method in ("GET", "HEAD") for r in hub.request_log[n_requests:])


# ---------------------------------------------------------------------------------- the results dataset
def test_concurrent_publishers_both_land_and_merge(hub, records, tmp_path):
    dataset = "writer/encoder-results-concurrent"
    errors: list[Exception] = []

    def publish(record: dict) -> None:
        try:
            publish_to_dataset(record, dataset, token=WRITER_TOKEN)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=publish, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    files = hub.files(dataset, repo_type="dataset")
    assert {result_path(r) for r in records} <= set(files) and "README.md" in files
    stored = json.loads(hub.read(dataset, result_path(records[0]), repo_type="dataset"))
    assert stored["format"] == "low_metric.results/1" and "counts" not in stored["results"][0]
    rows = read_leaderboard(dataset)
    assert {r["encoder"] for r in rows} == {r["encoder_protocol"]["id"] for r in records}
    assert all(r["protocol_hash"] == records[0]["protocol_hash"] and r["A"] is not None for r in rows)
    assert rows == sorted(rows, key=lambda r: -r["C"])  # no AC: best C first
    table = format_table(rows).splitlines()
    assert table[0].startswith(f"protocol {records[0]['protocol_hash'][:12]}") and len(table) == 4
    csv_text = write_table(rows, tmp_path / "table.csv").read_text().splitlines()
    assert csv_text[0].startswith("encoder,revision,A,C,AC") and len(csv_text) == 3
    assert json.loads(write_table(rows, tmp_path / "table.json").read_text()) == rows
    n_commits = len(hub.commits(dataset, repo_type="dataset"))
    assert not publish_to_dataset(records[0], dataset, token=WRITER_TOKEN).changed
    assert len(hub.commits(dataset, repo_type="dataset")) == n_commits


# ---------------------------------------------------------------------------------- errors, no partial state
def test_errors_are_one_line_and_leave_nothing(hub, records, card_repo, model_repos, no_token):
    with pytest.raises(LowMetricError, match="no Hugging Face token"):
        publish_to_card(records[0], repo_id=card_repo)
    with pytest.raises(LowMetricError, match="no write access to model .* open a pull request instead"):
        publish_to_card(records[0], repo_id=card_repo, create_pr=False, token=READER_TOKEN)
    with pytest.raises(LowMetricError, match="model cards/absent does not exist"):
        publish_to_card(records[0], repo_id="cards/absent", token=WRITER_TOKEN)
    with pytest.raises(LowMetricError, match="cannot create it under 'writer'"):
        publish_to_dataset(records[0], "writer/not-yours", token=READER_TOKEN)
    with pytest.raises(LowMetricError, match="refused the token"):
        publish_to_card(records[0], repo_id=card_repo, token="hf_unknown_token")
    # the card's pull request would be allowed, the dataset is not: neither is written
    hub.add_repo("writer/locked-results", {"README.md": "# results\n"}, repo_type="dataset", write_tokens=[WRITER_TOKEN])
    def state() -> dict:
        return {r: (hub.head(r), len(hub.pull_requests(r))) for r in (model_repos.timm_vit, model_repos.dinov2)}

    before = state()
    with pytest.raises(LowMetricError, match="no write access to dataset writer/locked-results"):
        publish_records(records, dataset="writer/locked-results", token=READER_TOKEN)
    assert state() == before
    assert len(hub.commits("writer/locked-results", repo_type="dataset")) == 1
    assert len(hub.commits(card_repo)) == 1 and not hub.pull_requests(card_repo)


def test_cli_publish_then_leaderboard(hub, records, tmp_path, monkeypatch, capsys):
    from low_metric.cli import main
    from low_metric.scoring.results import RESULTS_FORMAT, write_json_atomic

    monkeypatch.setenv("HF_TOKEN", WRITER_TOKEN)
    results_file = tmp_path / "results.json"
    write_json_atomic(results_file, {"format": RESULTS_FORMAT, "results": records})
    dataset = "writer/encoder-results-cli"
    assert main(["publish", str(results_file), "--dataset", dataset]) == 0
    out = capsys.readouterr().out
    assert dataset in out and WRITER_TOKEN not in out
    assert main(["leaderboard", dataset, "--output", str(tmp_path / "board.csv")]) == 0
    table = capsys.readouterr().out
    assert all(r["encoder_protocol"]["id"] in table for r in records)
    assert len((tmp_path / "board.csv").read_text().splitlines()) == 1 + len(records)
    assert main(["publish", str(results_file)]) == 2
    assert "nothing to publish to" in capsys.readouterr().err
