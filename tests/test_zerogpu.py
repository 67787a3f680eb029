"""The Space on ZeroGPU: ``space/app.py`` imported with a stand-in for ``spaces.GPU`` that forks a worker,
pickles across and enforces the duration asked, as spaces 0.51.3 does (``tests/zerogpu.py``)."""

from __future__ import annotations

import os
import time

import gradio as gr
import pytest
from huggingface_hub import scan_cache_dir

from low_metric.core.errors import Refused
from low_metric.hub.guard import check_weights, public_encoder
from low_metric.scoring import service
from low_metric.scoring.scorer import DEFAULT_REFERENCES, ScoreConfig, score_encoders
from tests import zerogpu
from tests.space_support import load_app


@pytest.fixture(scope="module")
def app():
    """The app as a ZeroGPU Space imports it: ``import spaces`` gives the stand-in."""
    with zerogpu.install(quota=300.0):
        yield load_app("low_metric_space_zerogpu")


@pytest.fixture
def settings(app, tmp_path):
    return app.Settings(zero_gpu=True, cache_dir=str(tmp_path / "features"))


def cached_repos() -> set[str]:
    return {repo.repo_id for repo in scan_cache_dir().repos if repo.repo_type == "model"}


def test_scoring_runs_in_the_worker_for_a_duration_computed_from_the_work(app, settings, hub, model_repos):
    assert app.spaces.GPU is zerogpu.GPU
    config = app.Options().config(settings)
    service.warm_up(config)  # start-up: data and the references loaded in the main process, before any fork
    weights = check_weights(public_encoder(model_repos.dinov2), settings.max_model_gb)
    asked = service.gpu_seconds(config, weights, 1) + service.MARGIN_SECONDS
    zerogpu.CALLS.clear()
    zerogpu.PROBE[0] = lambda: len(hub.request_log)
    record = app.Handlers(settings).score(model_repos.dinov2, -2, 16, 5, True, 0, [])[5]
    (call,) = zerogpu.CALLS
    assert call.outcome == "ok" and call.pid != os.getpid()  # it ran in a forked worker, its result pickled back
    # the duration asked is the work's: every image of the visitor's encoder and the references' (not cached yet)
    assert call.duration == asked
    images = 57 + 57 + 57 * len(DEFAULT_REFERENCES)  # A images, C images, the references' A images
    assert call.duration >= service.START_SECONDS + service.SECONDS_PER_IMAGE * images + service.MARGIN_SECONDS
    assert call.seconds < call.duration
    # nothing was downloaded inside the worker: the visitor's repo came before, the references at start-up
    before, after = call.probes
    assert not [r.path for r in hub.request_log[before:after] if "/resolve/" in r.path]
    # the visitor's encoder left the Hub cache after scoring; the references stay
    cached = cached_repos()
    assert model_repos.dinov2 not in cached and set(DEFAULT_REFERENCES) <= cached
    # the same numbers as the scorer's, off the GPU
    (expected,) = score_encoders([model_repos.dinov2], ScoreConfig(cache_dir=settings.cache_dir))
    assert record["encoder"] == model_repos.dinov2 and record["protocol_hash"] == expected["protocol_hash"]
    assert record["C"]["C"] == pytest.approx(expected["C"]["C"]) and record["A"]["A"] == pytest.approx(expected["A"]["A"])
    assert record["encoder_protocol"]["revision"] == hub.head(model_repos.dinov2)
    # once the references' tokens are cached, a request asks only for its own work
    app.Handlers(settings).score(model_repos.dinov2, -2, 16, 5, True, 0, [])
    assert zerogpu.CALLS[-1].duration == pytest.approx(call.duration - service.SECONDS_PER_IMAGE * 57 * 2, abs=1)


def test_the_default_request_fits_the_quotas(app, settings):
    """The largest model the Space accepts (4 GB), all 57 images, references not cached: within an anonymous
    visitor's daily 2 minutes (the free account's 5 bound LOW_METRIC_MAX_GPU_SECONDS)."""
    config = app.Options().config(settings)
    need = service.gpu_seconds(config, int(settings.max_model_gb * service.GB), 1) + service.MARGIN_SECONDS
    assert need <= 120 and settings.max_gpu_seconds <= 300


def test_errors_inside_the_worker_reach_the_page_with_their_message(app, settings, model_repos):
    zerogpu.CALLS.clear()
    with pytest.raises(gr.Error, match="has no vision tower"):  # raised by the encoder loader, inside the worker
        app.Handlers(settings).score(model_repos.bert, -2, 16, 5, True, 1, [])
    assert zerogpu.CALLS[-1].outcome == "gradio"
    # what any other exception would become: its class name only (why run_scorer raises gr.Error itself)
    with pytest.raises(gr.Error) as info:
        zerogpu.GPU(duration=5)(lambda: 1 / 0)()
    assert info.value.message == "ZeroDivisionError"


def test_the_request_limit_fires_before_the_gpu_duration(app, settings, model_repos, monkeypatch, tmp_path):
    monkeypatch.setattr(service, "START_SECONDS", 0.2)
    monkeypatch.setattr(service, "SECONDS_PER_IMAGE", 0.0)
    fresh = app.Settings(zero_gpu=True, cache_dir=str(tmp_path / "slow"))
    zerogpu.CALLS.clear()
    with pytest.raises(gr.Error, match="longer than this Space's limit of 1 s"):
        app.Handlers(fresh).score(model_repos.dinov2, -2, 16, 5, True, 0, [])
    (call,) = zerogpu.CALLS
    assert call.outcome == "gradio" and call.duration == 1 + service.MARGIN_SECONDS and call.seconds < call.duration
    # and a worker that outlives its duration is killed, as ZeroGPU does
    start = time.monotonic()
    with pytest.raises(gr.Error, match="GPU task aborted"):
        zerogpu.GPU(duration=0.5)(time.sleep)(30)
    assert time.monotonic() - start < 10


def test_a_request_over_the_gpu_limit_is_refused_before_any_download(app, hub, model_repos, tmp_path):
    tight = app.Settings(zero_gpu=True, max_gpu_seconds=5, cache_dir=str(tmp_path / "features"))
    n_requests = len(hub.request_log)
    zerogpu.CALLS.clear()
    with pytest.raises(Refused, match=r"needs about \d+ s of GPU time: the limit is 5 s"):
        app.score_encoder(model_repos.timm_vit, app.Options(), tight)
    assert not zerogpu.CALLS
    assert not [r.path for r in hub.request_log[n_requests:] if r.path.endswith(".safetensors")]
