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


def test_hub_failures_are_classified_once_for_every_face(hub, fresh_hf_cache, model_repos) -> None:
    """The one classifier (sources.hub.hub_failure) behind the three mappers, on the real errors of
    huggingface_hub from the Hub double: a gated repo is "gated" though GatedRepoError is a
    RepositoryNotFoundError; each face words the same failure its own way, in one line."""
    import httpx
    from huggingface_hub import HfApi, hf_hub_download

    from low_metric.hub.guard import repo_weight_bytes
    from low_metric.hub.publish import hub_errors as publish_errors
    from low_metric.sources.hub import hub_errors as read_errors
    from low_metric.sources.hub import hub_failure
    from tests.conftest import READER_TOKEN, WRITER_TOKEN

    hub.add_repo("guard/gated", {"config.json": b"{}"}, gated=True, read_tokens=[WRITER_TOKEN])

    def failure(call):
        try:
            call()
        except Exception as exc:  # the library's own exception, classified
            return hub_failure(exc)
        raise AssertionError("no failure")

    gated = failure(lambda: hf_hub_download("guard/gated", "config.json", token=READER_TOKEN))
    assert (gated.kind, gated.status) == ("gated", 403)
    assert failure(lambda: HfApi().model_info("guard/absent")).kind == "missing"
    assert failure(lambda: hf_hub_download(model_repos.timm_vit, "config.json", revision="v9")).kind == "revision"
    unknown = failure(lambda: HfApi().model_info(model_repos.timm_vit, token="hf_unknown"))
    assert (unknown.kind, unknown.status) == ("http", 401)
    assert failure(lambda: httpx.get("http://127.0.0.1:9/", timeout=2)).kind == "unreachable"
    assert hub_failure(ValueError("a bug")) is None  # not the Hub's answer: passes unchanged

    def read():
        with read_errors("guard/gated", None):
            hf_hub_download("guard/gated", "config.json", token=READER_TOKEN)

    def publish():
        with publish_errors("model guard/gated", READER_TOKEN):
            hf_hub_download("guard/gated", "config.json", token=READER_TOKEN)

    assert "'guard/gated' is a gated repo: request access" in one_line_of(read, LowMetricError)
    assert one_line_of(publish, LowMetricError) == "model guard/gated is gated and this token has no access to it"
    assert one_line_of(lambda: repo_weight_bytes(EncoderRef(None, False, "guard/absent", None)), Refused) == (
        "'guard/absent' is not a public model repo on the Hub (or not readable with this token)")
    with pytest.raises(ValueError, match="a bug"), read_errors("x/y", None):
        raise ValueError("a bug")


def one_line_of(call, kind: type[Exception]) -> str:
    """The message of the ``kind`` error ``call`` raises: one line, without the token used."""
    from tests.conftest import READER_TOKEN

    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and READER_TOKEN not in message
    return message
