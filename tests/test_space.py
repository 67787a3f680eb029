"""The Space (``space/app.py``): launched on 127.0.0.1 and driven through gradio_client, its handlers
called directly, its refusals and limits, all against the Hub double."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from low_metric.cli import main
from low_metric.core.errors import Refused
from low_metric.hub.guard import public_encoder
from low_metric.scoring.results import write_json_atomic
from low_metric.scoring.scorer import ScoreConfig, score_encoders
from low_metric.scoring.timelimit import call_with_time_limit
from tests.conftest import READER_TOKEN, WRITER_TOKEN
from tests.space_support import (
    add_remote_code_repo,
    add_results_dataset,
    calibration_for,
    copy_repo,
    launched,
    load_app,
)

app = load_app()
OPTIONS = {"layer": -3, "patch": 12, "window": 3, "alignment": True, "pairs": 0}
CLI_OPTIONS = ["--layer", "-3", "--patch", "12", "--window", "3"]


@pytest.fixture(scope="module")
def space(hub, model_repos, tmp_path_factory):
    """The app on 127.0.0.1 with a 10 MB model limit, a results dataset, and repos of its own."""
    root = tmp_path_factory.mktemp("space")
    board = score_encoders([model_repos.timm_vit], ScoreConfig(cache_dir=str(root / "board_cache")))
    repos = SimpleNamespace(
        card=copy_repo(hub, model_repos.dinov2, "space-tests/dinov2-card"),
        remote_code=add_remote_code_repo(hub, model_repos.dinov2, "space-tests/remote-code"),
        dataset=add_results_dataset(hub, "space-tests/results", board),
    )
    settings = app.Settings(max_model_gb=0.01, cache_dir=str(root / "cache"), dataset_id=repos.dataset,
                            space_id="space-tests/low-metric")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        with launched(settings) as url:
            client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
            yield SimpleNamespace(client=client, settings=settings, repos=repos, root=root, board=board[0])


def score(space, encoder: str, **options) -> tuple:
    return space.client.predict(encoder, *{**OPTIONS, **options}.values(), api_name="/score")


def cli_record(encoder: str, args: list[str], tmp_path: Path) -> dict:
    out = tmp_path / "cli.json"
    assert main(["score", encoder, *args, "--output", str(out), "--cache-dir", str(tmp_path / "cli_cache")]) == 0
    (record,) = json.loads(out.read_text())["results"]
    return record


def refusal(call) -> str:
    """The one-line message of the error the page shows for ``call``."""
    with pytest.raises(AppError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message.strip(), message
    return message


# ------------------------------------------------------------------------------------- through the API
@pytest.mark.parametrize(("options", "cli_args"), [
    ({}, CLI_OPTIONS),
    ({"alignment": False, "pairs": 2}, [*CLI_OPTIONS, "--no-alignment", "--limit", "2"]),
], ids=["defaults", "no-alignment-2-pairs"])
def test_scores_what_the_cli_scores(space, model_repos, tmp_path, options, cli_args):
    headline, categories, predicted, plot, record = score(space, model_repos.dinov2, **options)
    expected = cli_record(model_repos.dinov2, cli_args, tmp_path)
    assert record["protocol_hash"] == expected["protocol_hash"]
    assert record["C"]["C"] == pytest.approx(expected["C"]["C"], abs=1e-6)
    for category, row in expected["C"]["per_category"].items():
        assert record["C"]["per_category"][category] == pytest.approx(row, abs=1e-6)
    assert ("A" in record) == ("A" in expected) == options.get("alignment", True)
    if "A" in record:
        assert record["A"]["A"] == pytest.approx(expected["A"]["A"], abs=1e-6)
        assert f"{expected['A']['A']:.4f}" in headline
    assert f"{expected['C']['C']:.2f}" in headline and "no calibration" in headline
    assert [row[0] for row in categories["data"]] == list(expected["C"]["per_category"])
    assert categories["data"][0][3] == round(expected["C"]["per_category"]["face"]["pck@0.1"], 2)
    assert predicted["data"] == []  # no calibration: no predictions
    assert model_repos.dinov2 in json.dumps(plot) and "CLIP224+DINOv2" in json.dumps(plot)


def test_progress_is_reported_while_scoring(space, model_repos):
    job = space.client.submit(model_repos.timm_vit, -2, 10, 5, True, 0, api_name="/score")
    seen = []
    while not job.done():
        status = job.status()
        seen += [p.unit for p in status.progress_data or []]
        time.sleep(0.02)
    assert job.result()[4]["encoder"] == model_repos.timm_vit
    assert "img" in seen  # the scorer's tqdm bars ("img") reach the page's progress bar


@pytest.mark.parametrize(("encoder", "expected"), [
    ("", "enter a Hub model id"),
    ("../secrets", "not a valid Hub model id"),
    ("https://huggingface.co/facebook/dinov2-large", "not a Hub model id"),
    ("timm:vit_small_patch14_dinov2", "not a Hub model id"),
    ("nobody/nothing", "not a public model repo"),
    ("tests/tiny-dinov2@no-such-branch", "revision 'no-such-branch' not found"),
    ("space-tests/remote-code", "needs trust_remote_code"),
    ("tests/pickle-only-vit", "only pickled weights"),
    ("tests/efficientnet-lite0", "this Space scores models up to 0.01 GB"),
    ("tests/gated-clip", "is gated"),
    ("tests/tiny-bert", "has no vision tower"),
    ("a/b+c/d+e/f", "at most 2 encoders"),
])
def test_refusals_are_one_line_and_the_next_request_works(space, hub, encoder, expected):
    message = refusal(lambda: score(space, encoder))
    assert expected in message
    assert not any("modeling_custom.py" in r.path for r in hub.request_log)  # remote code is never fetched
    assert score(space, "tests/tiny-dinov2", pairs=1)[4]["C"]["pairs"] == 3


@pytest.mark.parametrize(("options", "expected"), [
    ({"patch": 1}, "patch must be between 2 and 64"),
    ({"window": 99}, "window must be between 0 and 15"),
    ({"layer": 2.5}, "layer must be a whole number"),
    ({"pairs": None}, "pairs must be a whole number"),
    ({"pairs": -1}, "pairs must be between 0 and 100000"),
])
def test_options_outside_their_ranges_are_refused(options, expected):
    with pytest.raises(Refused, match=expected):
        app.Options.from_inputs(**{**OPTIONS, **options})


def test_the_page_refuses_out_of_range_options_too(space):
    assert "less than minimum value 2" in refusal(lambda: score(space, "tests/tiny-dinov2", patch=1))


def test_push_needs_a_result_and_a_sign_in(space, model_repos):
    fresh = Client(space.client.src, verbose=False, analytics_enabled=False, download_files=False)
    assert "score an encoder first" in refusal(lambda: fresh.predict(api_name="/push"))
    score(space, model_repos.dinov2, pairs=1)
    assert "sign in with Hugging Face first" in refusal(lambda: space.client.predict(api_name="/push"))


def test_leaderboard_reads_the_results_dataset(space, model_repos):
    table, note = space.client.predict(api_name="/leaderboard")
    assert "1 results from the dataset `space-tests/results`" in note
    (row,) = table["data"]
    row = dict(zip(table["headers"], row))
    assert row["encoder"] == model_repos.timm_vit and row["A"] == round(space.board["A"]["A"], 4)
    assert row["protocol_hash"] == space.board["protocol_hash"][:12]


def test_page_views_reuse_the_leaderboard_read(space, hub):
    handlers = app.Handlers(space.settings)
    handlers.refresh_leaderboard()  # one snapshot_download of the results dataset
    n_requests = len(hub.request_log)
    for _ in range(3):  # page views within a minute: no Hub request
        table, note = handlers.leaderboard()
        assert "1 results from the dataset" in note and len(table) == 1
    assert len(hub.request_log) == n_requests
    handlers.refresh_leaderboard()  # the button reads it again
    assert any(space.repos.dataset in r.path for r in hub.request_log[n_requests:])


# ------------------------------------------------------------------------------------- handlers, in process
def test_push_opens_a_pull_request_on_the_card(space, hub, caplog, capsys):
    handlers = app.Handlers(space.settings)
    record = handlers.score(space.repos.card, -2, 16, 5, True, 1, [])[5]
    token = gr.OAuthToken(token=WRITER_TOKEN, scope="openid profile write-discussions", expires_at=2**31)
    message = handlers.push(record, token)
    (pr,) = hub.pull_requests(space.repos.card)
    assert f"discussions/{pr.num}" in message and "Opened a pull request" in message and WRITER_TOKEN not in message
    card = hub.read(space.repos.card, "README.md", revision=pr.ref).decode()
    assert record["protocol_hash"] in card and "config: alignment" in card and "config: correspondence" in card
    assert f"{record['C']['C']:.2f}" in card and f"url: {hub.url}/spaces/space-tests/low-metric" in card
    assert "README.md" not in hub.files(space.repos.card)  # main is untouched: only the pull request changes
    assert "already holds this result" in handlers.push(record, token)
    assert len(hub.pull_requests(space.repos.card)) == 1
    with pytest.raises(gr.Error) as info:  # a token the Hub refuses: the message never shows it
        handlers.push(record, gr.OAuthToken(token=READER_TOKEN + "-revoked", scope="", expires_at=2**31))
    assert "401" in info.value.message and READER_TOKEN not in info.value.message
    logged = caplog.text + "".join(capsys.readouterr())
    assert WRITER_TOKEN not in logged and READER_TOKEN not in logged


def test_calibration_adds_ac_and_predicted_scores_as_the_cli_does(space, model_repos, tmp_path):
    plain = app.Handlers(space.settings).score(model_repos.dinov2, -2, 16, 5, True, 1, [])[5]
    calibration = calibration_for(plain["protocol"])
    settings = app.Settings(cache_dir=space.settings.cache_dir, calibration=calibration)
    headline, _, predicted, _, _, record, _ = app.Handlers(settings).score(model_repos.dinov2, -2, 16, 5, True, 1, [])
    write_json_atomic(tmp_path / "calibration.json", calibration)
    expected = cli_record(model_repos.dinov2, ["--limit", "1", "--calibration", str(tmp_path / "calibration.json")],
                          tmp_path)
    assert record["AC"]["AC_mean"] == pytest.approx(expected["AC"]["AC_mean"], abs=1e-6)
    assert f"{expected['AC']['AC_mean']:.3f}" in headline
    assert list(predicted["benchmark"]) == list(calibration["laws"])
    assert list(predicted["predicted score"]) == [round(y, 2) for y in record["AC"]["predicted"].values()]
    other = app.Handlers(settings).score(model_repos.dinov2, -2, 8, 5, True, 1, [])  # another P: another protocol
    assert "AC" not in other[5] and "options differ from the calibration" in other[0] and other[2].empty


def test_image_and_time_limits_refuse_then_the_next_request_works(space, model_repos):
    few_images = app.Handlers(app.Settings(max_images=10, cache_dir=space.settings.cache_dir))
    with pytest.raises(gr.Error, match="would encode 57 images: the limit is 10"):
        few_images.score(model_repos.dinov2, -2, 16, 5, True, 0, [])
    assert few_images.score(model_repos.dinov2, -2, 16, 5, True, 1, [])[5]["C"]["pairs"] == 3
    fresh_cache = str(space.root / "slow_cache")
    with pytest.raises(gr.Error, match="longer than this Space's limit of 0.3 s"):
        app.Handlers(app.Settings(max_seconds=0.3, cache_dir=fresh_cache)).score(model_repos.dinov2, -2, 16, 5, True, 0, [])
    time.sleep(1.5)  # an interruption outliving the request would land here
    record = app.Handlers(app.Settings(cache_dir=fresh_cache)).score(model_repos.dinov2, -2, 16, 5, True, 0, [])[5]
    assert record["C"]["pairs"] == 56


def test_plot_places_session_encoders_among_the_papers():
    record = {"encoder": "org/enc", "A": {"A": 0.5, "mode": "ridge"}, "C": {"C": 20.0}, "protocol_hash": "ab" * 32}
    history = app.add_to_history(app.add_to_history([], record), record)  # the same result once
    history = app.add_to_history(history, {**record, "protocol_hash": "cd" * 32})  # other options: a point of its own
    frame = app.placement(history)
    assert list(frame.columns) == ["name", "A", "C", "source", "protocol"]
    assert list(frame["source"]) == [app.PAPER_SOURCE] * 13 + [app.SESSION_SOURCE] * 3  # a legend row, 2 points
    assert frame.iloc[13][["A", "C"]].isna().all()  # the legend row has no coordinates
    paper = frame[frame["source"] == app.PAPER_SOURCE].set_index("name")
    assert paper.loc["DINOv2", "C"] == pytest.approx(24.51) and 0.3 < paper.loc["DINOv2", "A"] < 0.7
    assert frame.iloc[-2].tolist() == ["org/enc", 0.5, 20.0, "scored here (ridge A)", "ab" * 6]
    assert app.add_to_history(history, {"encoder": "x", "C": {"C": 1.0}}) == history  # without A: not on the plot


# ------------------------------------------------------------------------------------- pure parts
@pytest.mark.parametrize(("text", "names"), [
    (" facebook/dinov2-large ", ["facebook/dinov2-large"]),
    ("org/a@refs/pr/1+timm:org/b", ["org/a@refs/pr/1", "timm:org/b"]),
    ("open_clip:hf-hub:laion/CLIP-ViT-L-14", ["open_clip:hf-hub:laion/CLIP-ViT-L-14"]),
])
def test_encoder_ids_that_pass(text, names):
    assert [ref.name for ref in public_encoder(text)] == names


def test_local_paths_are_refused(tmp_path, monkeypatch):
    (tmp_path / "some-org" / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Refused, match="'some-org/model' names a local path"):
        public_encoder("some-org/model")


def test_time_limit_interrupts_even_code_that_swallows_it():
    def stubborn() -> None:
        for _ in range(2):
            try:
                while True:
                    pass
            except BaseException:  # noqa: BLE001, S112 - what careless library code does
                continue

    start = time.monotonic()
    with pytest.raises(Refused, match="limit of 0.2 s"):
        call_with_time_limit(0.2, stubborn)
    assert time.monotonic() - start < 3
    assert call_with_time_limit(5, lambda: 42) == 42
    time.sleep(1.2)  # nothing is left to land later


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    calibration = calibration_for({"data": "elsewhere"})
    write_json_atomic(tmp_path / "cal.json", calibration)
    monkeypatch.setenv("LOW_METRIC_CALIBRATION", str(tmp_path / "cal.json"))
    monkeypatch.setenv("LOW_METRIC_RESULTS_DATASET", "org/results")
    monkeypatch.setenv("LOW_METRIC_MAX_MODEL_GB", "1.5")
    monkeypatch.setenv("LOW_METRIC_MAX_IMAGES", "80")
    monkeypatch.setenv("LOW_METRIC_MAX_SECONDS", "60")
    monkeypatch.setenv("LOW_METRIC_MAX_GPU_SECONDS", "120")
    monkeypatch.setenv("LOW_METRIC_SPAIR_DATASET", "org/spair-71k")
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    settings = app.Settings.from_env()
    assert (settings.max_model_gb, settings.max_images, settings.max_seconds, settings.max_gpu_seconds) == (1.5, 80, 60.0, 120.0)
    assert settings.dataset_id == "org/results" and settings.calibration == calibration
    assert settings.ids.spair == "org/spair-71k" and settings.ids.mini == app.HubIds.mini
    assert not settings.show_login and not settings.zero_gpu and settings.source_url is None
    monkeypatch.setenv("SPACE_ID", "org/space")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    settings = app.Settings.from_env()
    assert settings.show_login and settings.zero_gpu and settings.source_url.endswith("/spaces/org/space")
