"""Publishing results to model cards and the results dataset, against the Hub double."""

from __future__ import annotations

import copy
import difflib
import json
import threading
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from huggingface_hub import ModelCard, metadata_load

from low_metric import LowMetricError
from low_metric.hub.card import HubIds, card_repo_id, card_results, merge_card
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

SOURCE = "https://huggingface.co/spaces/org/low-metric"  # where a card's numbers come from (the Space)


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
def test_card_results_are_the_measured_scores(records, model_repos):
    vit = records[0]
    assert card_repo_id(vit) == model_repos.timm_vit
    results = card_results(vit, "0.1.0", SOURCE)
    assert [(r.metric_type, r.metric_config) for r in results] == [("low-metric/ac_score", "alignment"),
                                                                   ("low-metric/ac_score", "correspondence")]
    assert {r.metric_args["protocol_hash"] for r in results} == {vit["protocol_hash"]}
    assert results[1].metric_value == round(vit["C"]["C"], 2) and results[0].metric_value == round(vit["A"]["A"], 4)
    assert {(r.dataset_type, r.dataset_split, r.source_url) for r in results} == {("low-metric/mini-benchmark", "test", SOURCE)}
    assert results[0].task_type == "image-feature-extraction" and results[0].dataset_revision is None
    # AC is a prediction for a hypothetical MLLM, not a measurement of the encoder: never on its card
    assert [r.metric_config for r in card_results(with_ac(vit), "0.1.0", SOURCE)] == ["alignment", "correspondence"]
    ids = HubIds(metric="me/ac_score", spair="me/spair-71k")
    spair = copy.deepcopy(vit)
    spair["protocol"]["data"]["pairs"]["source"] = "spair"
    with pytest.raises(LowMetricError, match="SPair-71k, which has no official Hub id"):
        card_results(spair, "0.1.0", SOURCE)
    assert {(r.metric_type, r.dataset_type) for r in card_results(spair, "0.1.0", SOURCE, ids)} == {("me/ac_score", "me/spair-71k")}
    folder = copy.deepcopy(vit)
    folder["protocol"]["data"]["images"]["source"] = "folder"
    with pytest.raises(LowMetricError, match="local image folder"):
        card_results(folder, "0.1.0", SOURCE)
    with pytest.raises(LowMetricError, match="not a Hub id"):
        HubIds(spair="SPair-71k")
    local = copy.deepcopy(vit)
    local["encoder_protocol"]["revision"] = "sha256:" + "0" * 64
    with pytest.raises(LowMetricError, match="not a Hub model"):
        card_repo_id(local)


def test_merge_card_is_pure_and_idempotent(records):
    vit = records[0]
    merged = merge_card(OTHER_CARD, card_results(vit, "0.1.0", SOURCE), "someone-vit")
    assert merge_card(merged, card_results(vit, "0.1.0", SOURCE), "someone-vit") is merged  # nothing to change
    assert merge_card(None, card_results(vit, "0.1.0", SOURCE), "tiny").startswith("---\nmodel-index:")
    broken = OTHER_CARD.replace("- name: someone-vit\n", "- name: a\n  results: []\n- name: b\n")
    with pytest.raises(LowMetricError, match="lists 2 models"):
        merge_card(broken, card_results(vit, "0.1.0", SOURCE), "x")
    legacy = merge_card(OTHER_CARD, [r for r in card_results(vit, "0.1.0", SOURCE)], "someone-vit")
    legacy = legacy.replace("type: low-metric/ac_score", "type: predicted_score")  # what low_metric 0.1.0 filed
    cleaned = ModelCard(merge_card(legacy, card_results(vit, "0.1.0", SOURCE), "someone-vit")).data.eval_results
    assert [r.metric_type for r in cleaned] == ["accuracy", "low-metric/ac_score", "low-metric/ac_score"]


THEIR_CARD = """---
license: apache-2.0
tags: [vision, "feature extraction"]   # a flow list
model-index:
- name: someone-vit
  results:
    # their classification result, in their own layout
    - task: {type: image-classification, name: Image Classification}
      dataset:
        name: ImageNet-1k
        type: imagenet-1k
        split: validation
      metrics:
        - type: accuracy
          value: 81.2   # top-1
          unit: "%"
          name: Top-1 accuracy
      source:
        name: Their paper
        url: https://example.org/paper
        user: someone
    - task:
        type: image-segmentation
      dataset: {name: ADE20K, type: ade20k}
      metrics: [{type: mIoU, value: 47.1, unit: "%"}]
# what follows is theirs too
library_name: timm
---
# someone-vit

Their body.
"""


def test_someone_elses_model_index_is_kept_byte_for_byte(hub, records, model_repos, tmp_path_factory):
    hub.add_repo("cards/their-layout", {"README.md": THEIR_CARD}, write_tokens=[WRITER_TOKEN])
    vit = records[0]
    n_log = len(hub.request_log)
    publish_to_card(vit, repo_id="cards/their-layout", create_pr=False, token=WRITER_TOKEN, source_url=SOURCE)
    calls = [(r.method, r.path.split("?")[0]) for r in hub.request_log[n_log:] if r.method == "POST"]
    assert calls.index(("POST", "/api/validate-yaml")) < calls.index(("POST", "/api/models/cards/their-layout/commit/main"))
    first = hub.read("cards/their-layout", "README.md").decode()
    # every line of theirs is still there, in order, unchanged; ours is one block inside their results list
    theirs, merged = THEIR_CARD.splitlines(True), first.splitlines(True)
    added = [line for line in difflib.ndiff(theirs, merged) if line[:2] in ("- ", "+ ")]
    assert all(line.startswith("+ ") for line in added)
    block = "".join(line[2:] for line in added)
    assert first == THEIR_CARD.replace("# what follows is theirs too\n", block + "# what follows is theirs too\n")
    card = ModelCard(first)
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results][:2] == [("accuracy", 81.2), ("mIoU", 47.1)]
    assert card.data.library_name == "timm" and card.text == "# someone-vit\n\nTheir body.\n"
    # another value and another protocol: only our block changes
    (nn,) = score([model_repos.timm_vit], model_repos.clip224, tmp_path_factory.getbasetemp() / "publish_feature_cache",
                  window=0)
    publish_to_card(nn, repo_id="cards/their-layout", create_pr=False, token=WRITER_TOKEN, source_url=SOURCE)
    second = hub.read("cards/their-layout", "README.md").decode()
    assert [line for line in difflib.ndiff(first.splitlines(True), second.splitlines(True)) if line[:2] == "- "] == []
    assert len(ours(second)) == 4 and len(ModelCard(second).data.eval_results) == 6


def test_a_card_the_hub_rejects_is_never_written(hub, records):
    rejected = OTHER_CARD.replace("    metrics:\n    - type: accuracy\n      value: 81.2\n      name: Top-1 accuracy\n",
                                  "    metrics: []\n")
    hub.add_repo("cards/rejected", {"README.md": rejected}, write_tokens=[WRITER_TOKEN])
    with pytest.raises(LowMetricError, match="the Hub rejected the card's metadata: model-index.*metrics"):
        publish_to_card(records[0], repo_id="cards/rejected", create_pr=False, token=WRITER_TOKEN, source_url=SOURCE)
    with pytest.raises(LowMetricError, match="the Hub rejected"):
        publish_to_card(records[0], repo_id="cards/rejected", token=READER_TOKEN, source_url=SOURCE)
    assert len(hub.commits("cards/rejected")) == 1 and not hub.pull_requests("cards/rejected")


# ---------------------------------------------------------------------------------- model cards
def test_card_keeps_other_results_and_valid_yaml(hub, records, card_repo, tmp_path):
    outcome = publish_to_card(records[0], repo_id=card_repo, create_pr=False, token=WRITER_TOKEN, source_url=SOURCE)
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
    ok = httpx.post(f"{hub.url}/api/validate-yaml", json={"repoType": "model", "content": text})
    assert ok.status_code == 200 and ok.json()["errors"] == []  # what publishing asked before writing
    bad = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": "---\nmodel-index:\n- name: x\n---\n"})
    assert bad.status_code == 400 and bad.json()["errors"]  # ... which does check


def test_publishing_twice_leaves_one_entry(hub, records, card_repo):
    publish_to_card(records[0], repo_id=card_repo, create_pr=False, token=WRITER_TOKEN, source_url=SOURCE)
    n_commits = len(hub.commits(card_repo))
    again = publish_to_card(records[0], repo_id=card_repo, create_pr=False, token=WRITER_TOKEN, source_url=SOURCE)
    assert not again.changed and again.url is None
    assert len(hub.commits(card_repo)) == n_commits and not hub.pull_requests(card_repo)
    assert len(ours(hub.read(card_repo, "README.md").decode())) == 2


def test_changed_value_replaces_only_its_entry(hub, records, card_repo, model_repos, tmp_path_factory):
    vit = records[0]
    publish_to_card(vit, repo_id=card_repo, create_pr=False, token=WRITER_TOKEN, dataset="writer/results")
    rerun = copy.deepcopy(vit)
    rerun["C"]["C"] += 1.0  # same protocol, another value
    publish_to_card(rerun, repo_id=card_repo, create_pr=False, token=WRITER_TOKEN, dataset="writer/results")
    entries = {r.metric_config: r.metric_value for r in ours(hub.read(card_repo, "README.md").decode())}
    assert entries == {"alignment": round(vit["A"]["A"], 4), "correspondence": round(vit["C"]["C"] + 1.0, 2)}
    # another protocol (nearest-neighbour matching) is another entry; the first stays
    (nn,) = score([model_repos.timm_vit], model_repos.clip224, tmp_path_factory.getbasetemp() / "publish_feature_cache",
                  window=0)
    assert nn["protocol_hash"] != vit["protocol_hash"]
    publish_to_card(nn, repo_id=card_repo, create_pr=False, token=WRITER_TOKEN, dataset="writer/results")
    text = hub.read(card_repo, "README.md").decode()
    assert len(ours(text)) == 4 and len(ModelCard(text).data.eval_results) == 5
    # each protocol cites its own file of the results dataset
    assert {r.source_url.rsplit("/", 1)[-1] for r in ours(text)} == {f"{vit['protocol_hash']}.jsonl", f"{nn['protocol_hash']}.jsonl"}


def test_pull_request_by_default_and_not_twice(hub, records, card_repo):
    main_before = hub.head(card_repo)
    outcome = publish_to_card(with_ac(records[0]), repo_id=card_repo, token=READER_TOKEN, source_url=SOURCE)
    (pr,) = hub.pull_requests(card_repo)
    assert outcome.pr_url.endswith(f"/discussions/{pr.num}") and pr.author == "reader"
    assert hub.head(card_repo) == main_before and hub.read(card_repo, "README.md").decode() == OTHER_CARD
    assert len(ours(hub.read(card_repo, "README.md", revision=pr.ref).decode())) == 2  # A and C; AC is no result of the encoder
    again = publish_to_card(with_ac(records[0]), repo_id=card_repo, token=READER_TOKEN, source_url=SOURCE)
    assert not again.changed and again.pr_url == outcome.pr_url and len(hub.pull_requests(card_repo)) == 1


def test_card_written_when_the_repo_has_none(hub, records):
    hub.add_repo("cards/no-readme", {"config.json": "{}"}, write_tokens=[WRITER_TOKEN])
    publish_to_card(records[1], repo_id="cards/no-readme", create_pr=False, token=WRITER_TOKEN, source_url=SOURCE)
    card = ModelCard(hub.read("cards/no-readme", "README.md").decode())
    assert card.data.model_name == "no-readme" and len(ours(str(card))) == 2 and card.text == "# no-readme\n"


def test_dry_run_touches_nothing(hub, records, card_repo, no_token):
    n_commits, n_requests = len(hub.commits(card_repo)), len(hub.request_log)
    outcome = publish_to_card(records[0], repo_id=card_repo, dry_run=True, source_url=SOURCE)
    assert outcome.dry_run and outcome.changed and "config: correspondence" in outcome.card_text
    assert "+    - type: low-metric/ac_score" in outcome.diff
    assert len(hub.commits(card_repo)) == n_commits and not hub.pull_requests(card_repo)
    # reads, and the Hub's validator asked about the card: nothing written
    assert all(r.method in ("GET", "HEAD") or r.path == "/api/validate-yaml" for r in hub.request_log[n_requests:])
    assert any(r.path == "/api/validate-yaml" for r in hub.request_log[n_requests:])


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
    record = json.loads(stored["record"])
    assert record["protocol_hash"] == stored["protocol_hash"] == records[0]["protocol_hash"] and "counts" not in record
    assert record == {k: v for k, v in records[0].items() if k != "counts"}
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
        publish_to_card(records[0], repo_id=card_repo, source_url=SOURCE)
    with pytest.raises(LowMetricError, match="no write access to model .* open a pull request instead"):
        publish_to_card(records[0], repo_id=card_repo, create_pr=False, token=READER_TOKEN, source_url=SOURCE)
    with pytest.raises(LowMetricError, match="model cards/absent does not exist"):
        publish_to_card(records[0], repo_id="cards/absent", token=WRITER_TOKEN, source_url=SOURCE)
    with pytest.raises(LowMetricError, match="need a source"):
        publish_records(records, token=WRITER_TOKEN)
    with pytest.raises(LowMetricError, match="cannot create it under 'writer'"):
        publish_to_dataset(records[0], "writer/not-yours", token=READER_TOKEN)
    with pytest.raises(LowMetricError, match="refused the token"):
        publish_to_card(records[0], repo_id=card_repo, token="hf_unknown_token", source_url=SOURCE)
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


# ---------------------------------------------------------------------------------- read back by the tools that read them
@pytest.fixture(scope="module")
def three_libraries(records, model_repos, tmp_path_factory) -> list[dict]:
    """Records of a timm, a transformers and an open_clip encoder, and one without A (null columns)."""
    cache = tmp_path_factory.getbasetemp() / "publish_feature_cache"
    (clip,) = score([model_repos.open_clip], model_repos.clip224, cache)
    (no_a,) = score([model_repos.siglip], model_repos.clip224, cache, alignment=False)
    return [*records, clip, no_a]


def test_load_dataset_reads_the_results_dataset(hub, three_libraries, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard, snapshot_download

    dataset = "writer/encoder-results-viewer"
    publish_records(three_libraries, cards=False, dataset=dataset, token=WRITER_TOKEN)
    assert {json.loads(json.loads(hub.read(dataset, result_path(r), repo_type="dataset"))["record"])["encoder_protocol"]
            ["library"] for r in three_libraries} == {"timm", "transformers", "open_clip"}
    card = DatasetCard(hub.read(dataset, "README.md", repo_type="dataset").decode())
    assert card.data.license == "apache-2.0" and card.data.pretty_name and card.data.configs[0]["config_name"] == "default"
    folder = snapshot_download(dataset, repo_type="dataset", local_dir=tmp_path / "snapshot")
    for source in (folder, dataset):  # a download of it, and the Hub (the double) as the Viewer reads it
        rows = datasets.load_dataset(source, split="train", cache_dir=str(tmp_path / "datasets_cache"))
        assert rows.num_rows == 4 and rows.features["A"].dtype == "float64" and rows.features["record"].dtype == "string"
        by_encoder = {row["encoder"]: row for row in rows}
        for record in three_libraries:
            row = by_encoder[record["encoder_protocol"]["id"]]
            assert json.loads(row["record"]) == {k: v for k, v in record.items() if k != "counts"}
            assert row["C"] == record["C"]["C"] and row["protocol_hash"] == record["protocol_hash"]
            assert row["A"] == (record["A"]["A"] if "A" in record else None)
            stored = json.loads(hub.read(dataset, result_path(record), repo_type="dataset"))
            assert row["library"] == record["encoder_protocol"]["library"]
            assert row["timestamp"] == datetime.fromisoformat(stored["timestamp"].replace("Z", "+00:00"))
    board = read_leaderboard(dataset)
    assert len(board) == 4 and {r["encoder"] for r in board} == set(by_encoder)


def test_rows_are_checked_when_read_back(hub, records):
    dataset = "writer/encoder-results-tampered"
    publish_records(records, cards=False, dataset=dataset, token=WRITER_TOKEN)
    path = result_path(records[0])
    row = json.loads(hub.read(dataset, path, repo_type="dataset"))
    row["C"] += 10  # a column that no longer matches its record
    hub.push(dataset, {path: json.dumps(row) + "\n"}, repo_type="dataset")
    with pytest.warns(UserWarning, match="disagree with its record"):
        rows = read_leaderboard(dataset)
    assert [r["encoder"] for r in rows] == [records[1]["encoder_protocol"]["id"]]
    record = json.loads(row["record"])
    record["C"]["C"] += 10
    record["protocol"]["correspondence"]["window"] = 9  # a protocol that no longer hashes to its hash
    row["record"] = json.dumps(record)
    hub.push(dataset, {path: json.dumps(row) + "\n"}, repo_type="dataset")
    with pytest.warns(UserWarning, match="protocol_hash does not match its protocol"):
        assert len(read_leaderboard(dataset)) == 1


def test_local_dir_writes_what_would_be_committed_and_touches_no_hub(hub, records, tmp_path, monkeypatch, capsys):
    import datasets
    from huggingface_hub import DatasetCard

    from low_metric.cli import main
    from low_metric.scoring.results import RESULTS_FORMAT, write_json_atomic
    from tests.test_hub_scripts import closed_port

    results_file = tmp_path / "results.json"
    write_json_atomic(results_file, {"format": RESULTS_FORMAT, "results": records})
    out = tmp_path / "out"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{closed_port()}")  # no Hub at all
    args = ["publish", str(results_file), "--card", "--dataset", "me/encoder-results", "--local-dir", str(out)]
    n_requests = len(hub.request_log)
    assert main(args) == 0
    assert len(hub.request_log) == n_requests
    assert capsys.readouterr().out.count("wrote") == 3
    for record in records:
        card = ModelCard((out / "models" / card_repo_id(record) / "README.md").read_text())
        assert {(r.metric_config, r.metric_value) for r in card.data.eval_results} == {
            ("alignment", round(record["A"]["A"], 4)), ("correspondence", round(record["C"]["C"], 2))}
        assert all(r.source_url.endswith(f"/datasets/me/encoder-results/blob/main/{result_path(record)}")
                   for r in card.data.eval_results)
    folder = out / "datasets" / "me" / "encoder-results"
    assert DatasetCard((folder / "README.md").read_text()).data.license == "apache-2.0"
    rows = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "datasets_cache"))
    assert sorted(rows["encoder"]) == sorted(r["encoder_protocol"]["id"] for r in records)
    # the same publish again: nothing changes (a card merges into DIR's copy, a row keeps its first timestamp)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(args) == 0
    assert capsys.readouterr().out.count("unchanged") == 3
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main([*args, "--dry-run"]) == 2 and "exclude each other" in capsys.readouterr().err
