"""The metric's "encoder" configuration: the same numbers as the scorer's CLI for the same settings."""

import json

import evaluate
import pytest

from low_metric.cli import main
from low_metric.core.errors import LowMetricError
from low_metric.metric.install import install_metric


@pytest.fixture(scope="module")
def metric(tmp_path_factory):
    path = install_metric(tmp_path_factory.mktemp("modules"))
    return evaluate.load(str(path), "encoder")


def test_encoder_configuration_equals_the_cli(metric, model_repos, tmp_path):
    cache = str(tmp_path / "cache")
    out = metric.compute(
        predictions=[model_repos.dinov2, model_repos.timm_vit],
        references=[[model_repos.clip224]] * 2,
        cache_dir=cache,
        window=0,
    )
    assert out["encoders"] == [model_repos.dinov2, model_repos.timm_vit]
    assert len(out["protocol_hash"]) == 64 and out["protocol"]["correspondence"]["window"] == 0
    path = tmp_path / "cli.json"
    assert main(["score", model_repos.dinov2, model_repos.timm_vit, "--reference", model_repos.clip224,
                 "--window", "0", "--cache-dir", cache, "--output", str(path)]) == 0
    cli = {r["encoder"]: r for r in json.loads(path.read_text())["results"]}
    for name, a, c in zip(out["encoders"], out["A"], out["C"]):
        assert a == pytest.approx(cli[name]["A"]["A"], abs=1e-9) and c == pytest.approx(cli[name]["C"]["C"], abs=1e-9)
        assert cli[name]["protocol_hash"] == out["protocol_hash"]


def test_encoder_configuration_bad_input(metric, model_repos):
    with pytest.raises(LowMetricError, match="same reference encoders"):
        metric.compute(predictions=["a", "b"], references=[["x"], ["y"]])
    with pytest.raises(LowMetricError, match="unknown option"):
        metric.compute(predictions=["a"], references=[["x"]], resolutoin=224)
    with pytest.raises(LowMetricError, match="expected a list of reference encoder ids"):
        metric.compute(predictions=["a"], references=["x"])
