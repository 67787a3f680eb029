"""The one encoder-id parser and the guard (``low_metric.hub.guard``) as the CLI uses them:
``low-metric score --max-model-gb`` refuses before any weights are downloaded."""

from __future__ import annotations

import re

import pytest

from low_metric.cli import main
from low_metric.core.errors import LowMetricError, Refused
from low_metric.hub.guard import check_weights, public_encoder
from low_metric.sources.names import EncoderRef, parse_encoder_id
from tests.space_support import add_remote_code_repo


@pytest.mark.parametrize(("text", "expected"), [
    ("org/a", [EncoderRef(None, False, "org/a", None)]),
    ("org/a@v1.0", [EncoderRef(None, False, "org/a", "v1.0")]),
    ("timm:hf-hub:org/a@refs/pr/1", [EncoderRef("timm", True, "org/a", "refs/pr/1")]),
    ("timm:vit_small_patch14_dinov2.lvd142m", [EncoderRef("timm", False, "vit_small_patch14_dinov2.lvd142m", None)]),
    (" org/a + open_clip:org/b ", [EncoderRef(None, False, "org/a", None), EncoderRef("open_clip", False, "org/b", None)]),
])
def test_encoder_ids_parse_into_their_parts(text, expected):
    assert parse_encoder_id(text) == expected
    assert "+".join(ref.name for ref in expected) == "+".join(p.strip() for p in text.split("+"))


@pytest.mark.parametrize(("text", "kwargs", "message"), [
    ("", {}, "must be a non-empty string"),
    ("org/a+", {}, "empty part around '+'"),
    ("org/a@", {}, "empty revision"),
    ("xyz:org/a", {}, "unknown library prefix 'xyz:'"),
    ("https://huggingface.co/org/a", {}, "is a URL, not a Hub model id"),
    ("../no/such/folder", {}, "not a valid Hub model id (org/name), nor a local folder"),
    ("org/a+org/b", {"revision": "main"}, "give each part of a concatenation its revision"),
    ("org/a\nb", {}, "contains a control character"),
])
def test_bad_encoder_ids_are_one_line_errors(text, kwargs, message):
    with pytest.raises(LowMetricError) as info:
        parse_encoder_id(text, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_local_folder_is_a_folder_and_takes_no_revision(tmp_path):
    ref, = parse_encoder_id(str(tmp_path))
    assert ref.local and ref.repo_id is None and ref.target == str(tmp_path)
    with pytest.raises(LowMetricError, match="revision applies to Hub repos"):
        parse_encoder_id(f"{tmp_path}@main")


def test_public_services_refuse_what_the_library_accepts(tmp_path):
    assert parse_encoder_id(str(tmp_path))[0].local
    with pytest.raises(Refused, match="names a local path"):
        public_encoder(str(tmp_path))
    with pytest.raises(Refused, match="not a Hub model id"):
        public_encoder("timm:vit_small_patch14_dinov2")


def cli_score(encoder: str, tmp_path, *args: str) -> int:
    return main(["score", encoder, "--no-alignment", "--limit", "1", "--output", str(tmp_path / "out.json"),
                 "--cache-dir", str(tmp_path / "cache"), *args])


def weight_downloads(hub, repo: str, since: int) -> list[str]:
    return [r.path for r in hub.request_log[since:] if r.path.startswith(f"/{repo}/resolve/") and ".safetensors" in r.path]


def test_max_model_gb_refuses_before_downloading_weights(hub, model_repos, tmp_path, capsys, fresh_hf_cache):
    repo = model_repos.effnet_real  # about 18 MB of safetensors
    before = len(hub.request_log)
    assert cli_score(repo, tmp_path, "--max-model-gb", "0.001") == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"low-metric: error: the encoder's weights take 0\.0\d GB: above --max-model-gb 0\.001", err)
    assert "\n" not in err and not (tmp_path / "out.json").exists()
    assert weight_downloads(hub, repo, before) == []
    assert cli_score(repo, tmp_path, "--max-model-gb", "1") == 0  # within the limit: scored
    assert weight_downloads(hub, repo, before)


def test_the_guard_counts_local_folders_and_every_part(model_repos, tmp_path):
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 3000)
    refs = parse_encoder_id(f"{folder}+{model_repos.timm_vit}")
    total = check_weights(refs, 1.0)
    assert total > 3000
    with pytest.raises(Refused, match="the limit is"):
        check_weights(refs, (total - 1) / 1024**3)


def test_pickle_only_and_remote_code_are_refused_by_the_cli_guard(hub, model_repos, tmp_path, capsys):
    assert cli_score(model_repos.pickle_only, tmp_path, "--max-model-gb", "1") == 2
    assert "only pickled weights" in capsys.readouterr().err
    remote = add_remote_code_repo(hub, model_repos.dinov2, "guard-tests/remote-code")
    assert cli_score(remote, tmp_path, "--max-model-gb", "1") == 2
    assert "pass --trust-remote-code if you trust it" in capsys.readouterr().err
    assert not any("modeling_custom.py" in r.path for r in hub.request_log)
