"""The Hub double, driven by huggingface_hub's real client over a real socket."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.conftest import READER_TOKEN, WRITER_TOKEN
from tests.hub_double import HubDouble

FILES = {"config.json": b'{"a": 1}', "weights/model.safetensors": b"\0" * 64, "README.md": b"# card\n"}


@pytest.fixture
def repo(hub: HubDouble, request: pytest.FixtureRequest) -> str:
    """A fresh model repo named after the test, writable with WRITER_TOKEN."""
    repo_id = f"double/{request.node.name.replace('_', '-')}"
    hub.add_repo(repo_id, FILES, write_tokens=[WRITER_TOKEN])
    return repo_id


def test_download_and_info(hub: HubDouble, repo: str, fresh_hf_cache: Path) -> None:
    path = hf_hub_download(repo, "config.json")
    assert Path(path).read_bytes() == FILES["config.json"]
    info = HfApi().model_info(repo, files_metadata=True)
    assert info.id == repo and info.sha == hub.head(repo)
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == {".gitattributes", *FILES}
    assert siblings["weights/model.safetensors"].lfs is not None and siblings["config.json"].lfs is None
    folder = Path(snapshot_download(repo))
    assert (folder / "weights" / "model.safetensors").read_bytes() == FILES["weights/model.safetensors"]
    assert folder.name == hub.head(repo)


def test_headers_of_resolve(hub: HubDouble, repo: str) -> None:
    lfs = httpx.head(f"{hub.url}/{repo}/resolve/main/weights/model.safetensors")
    assert lfs.headers["X-Repo-Commit"] == hub.head(repo)
    assert lfs.headers["X-Linked-Size"] == "64" and lfs.headers["X-Linked-Etag"] and lfs.headers["ETag"]
    assert not any(k.lower().startswith("x-xet") for k in lfs.headers)
    missing = httpx.head(f"{hub.url}/{repo}/resolve/main/nope.json")
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "EntryNotFound"
    assert missing.headers["X-Repo-Commit"] == hub.head(repo)
    ranged = httpx.get(f"{hub.url}/{repo}/resolve/main/config.json", headers={"Range": "bytes=2-"})
    assert ranged.status_code == 206 and ranged.content == FILES["config.json"][2:]


def test_tree(repo: str) -> None:
    api = HfApi()
    top = {f.path for f in api.list_repo_tree(repo)}
    assert top == {".gitattributes", "config.json", "README.md", "weights"}
    everything = {f.path for f in api.list_repo_tree(repo, recursive=True)}
    assert everything == top | {"weights/model.safetensors"}
    assert [f.path for f in api.list_repo_tree(repo, path_in_repo="weights")] == ["weights/model.safetensors"]


def test_errors(hub: HubDouble, repo: str, fresh_hf_cache: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("double/absent", "config.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo, "config.json", revision="v9")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(repo, "absent.json")
    with pytest.raises(HfHubHTTPError, match="401"):
        HfApi().model_info(repo, token="hf_unknown_token")


def test_gated_and_private(hub: HubDouble, fresh_hf_cache: Path) -> None:
    hub.add_repo("double/gated", FILES, gated=True, read_tokens=[WRITER_TOKEN])
    hub.add_repo("double/private", FILES, private=True, write_tokens=[WRITER_TOKEN])
    assert HfApi().model_info("double/gated").gated == "auto"  # metadata is public
    with pytest.raises(GatedRepoError) as no_token:
        hf_hub_download("double/gated", "config.json", token=False)
    assert no_token.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as wrong_token:
        hf_hub_download("double/gated", "config.json", token=READER_TOKEN)
    assert wrong_token.value.response.status_code == 403
    assert Path(hf_hub_download("double/gated", "config.json", token=WRITER_TOKEN)).read_bytes() == FILES["config.json"]
    for token, status in ((False, 401), (READER_TOKEN, 404)):
        with pytest.raises(RepositoryNotFoundError) as err:
            HfApi().model_info("double/private", token=token)
        assert err.value.response.status_code == status
    assert HfApi().model_info("double/private", token=WRITER_TOKEN).private


def test_revisions_by_hash_and_quoted_pr_ref(hub: HubDouble, repo: str, fresh_hf_cache: Path) -> None:
    first = hub.head(repo)
    second = hub.push(repo, {"config.json": b'{"a": 2}'})
    assert hub.head(repo) == second != first
    assert Path(hf_hub_download(repo, "config.json", revision=first)).read_bytes() == b'{"a": 1}'
    assert Path(hf_hub_download(repo, "config.json")).read_bytes() == b'{"a": 2}'
    assert HfApi().model_info(repo, revision=first).sha == first
    pr = HfApi().upload_file(path_or_fileobj=b"pr", path_in_repo="pr.txt", repo_id=repo, token=READER_TOKEN,
                             create_pr=True, commit_message="from a reader")
    assert Path(hf_hub_download(repo, "pr.txt", revision=pr.pr_revision)).read_bytes() == b"pr"
    assert [c.title for c in HfApi().list_repo_commits(repo)] == ["update", "initial commit"]


def test_pull_request_by_any_valid_token(hub: HubDouble, repo: str) -> None:
    api = HfApi()
    info = api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\nnew card", path_in_repo="README.md",
                           repo_id=repo, token=READER_TOKEN, create_pr=True, commit_message="Add AC scores")
    assert info.pr_url == f"{hub.url}/{repo}/discussions/1" and info.pr_revision == "refs/pr/1"
    assert hub.read(repo, "README.md", revision="refs/pr/1").endswith(b"new card")
    assert hub.read(repo, "README.md") == FILES["README.md"]  # main untouched
    (pr,) = hub.pull_requests(repo)
    assert (pr.num, pr.title, pr.author, pr.ref) == (1, "Add AC scores", "reader", "refs/pr/1")
    details = api.get_discussion_details(repo, 1)
    assert details.is_pull_request and details.target_branch == "refs/heads/main"
    assert [e.type for e in details.events] == ["comment", "commit"]
    assert [d.num for d in api.get_repo_discussions(repo)] == [1]
    with pytest.raises(HfHubHTTPError, match="403"):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo, token=READER_TOKEN)
    with pytest.raises(HfHubHTTPError, match="401"):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo, token="hf_unknown_token",
                        create_pr=True)


def test_upload_folder_pr_and_direct_commit_with_deletion(hub: HubDouble, repo: str, tmp_path: Path) -> None:
    (tmp_path / "card.md").write_text("card")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "r.json").write_text("{}")
    api = HfApi()
    pr = api.upload_folder(folder_path=tmp_path, repo_id=repo, token=READER_TOKEN, create_pr=True)
    assert hub.files(repo, revision=pr.pr_revision) == sorted([".gitattributes", *FILES, "card.md", "sub/r.json"])
    api.create_commit(repo, [CommitOperationAdd("new.txt", b"n"), CommitOperationDelete("weights/")],
                      commit_message="replace weights", token=WRITER_TOKEN)
    assert hub.files(repo) == [".gitattributes", "README.md", "config.json", "new.txt"]
    last = hub.commits(repo)[-1]
    assert (last.title, last.author, last.added, last.deleted) == ("replace weights", "writer", ("new.txt",),
                                                                  ("weights/",))


def test_concurrent_commits_both_land(hub: HubDouble, repo: str) -> None:
    api = HfApi()

    def commit(name: str) -> None:
        api.upload_file(path_or_fileobj=name.encode(), path_in_repo=f"{name}.txt", repo_id=repo, token=WRITER_TOKEN)

    threads = [threading.Thread(target=commit, args=(f"file{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {f"file{i}.txt" for i in range(4)} <= set(hub.files(repo))
    assert len(hub.commits(repo)) == 5


def test_create_repo_whoami_and_yaml(hub: HubDouble) -> None:
    api = HfApi()
    url = api.create_repo("writer/new-model", token=WRITER_TOKEN)
    assert url == f"{hub.url}/writer/new-model"
    conflict = httpx.post(f"{hub.url}/api/repos/create", json={"name": "new-model", "organization": "writer"},
                          headers={"authorization": f"Bearer {WRITER_TOKEN}"})
    assert conflict.status_code == 409 and conflict.json()["url"] == url
    assert api.create_repo("writer/new-model", token=WRITER_TOKEN, exist_ok=True) == url
    assert api.whoami(token=READER_TOKEN)["name"] == "reader"
    api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id="writer/new-model",
                    token=WRITER_TOKEN)  # validate-yaml runs for README.md
    assert hub.read("writer/new-model", "README.md").startswith(b"---")


def test_dataset_and_space_repos(hub: HubDouble, fresh_hf_cache: Path) -> None:
    hub.add_repo("double/data", {"train.csv": "x\n1\n"}, repo_type="dataset")
    hub.add_repo("double/space", {"app.py": "print()"}, repo_type="space")
    assert Path(hf_hub_download("double/data", "train.csv", repo_type="dataset")).read_text() == "x\n1\n"
    assert HfApi().dataset_info("double/data").sha == hub.head("double/data", repo_type="dataset")
    assert Path(hf_hub_download("double/space", "app.py", repo_type="space")).read_text() == "print()"
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("double/data", "train.csv")  # it is not a model repo


def test_request_log_never_holds_tokens(hub: HubDouble, repo: str) -> None:
    HfApi().model_info(repo, token=WRITER_TOKEN)
    assert hub.request_log[-1].headers["authorization"] == "<redacted>"
    logged = json.dumps([list(r) for r in hub.request_log])
    assert WRITER_TOKEN not in logged and READER_TOKEN not in logged


def test_auth_check_orgs_validate_yaml_and_logged_bodies(hub: HubDouble, repo: str) -> None:
    api = HfApi()
    api.auth_check(repo, token=READER_TOKEN)
    api.auth_check(repo, write=True, token=WRITER_TOKEN)
    with pytest.raises(HfHubHTTPError, match="403"):
        api.auth_check(repo, write=True, token=READER_TOKEN)
    with pytest.raises(RepositoryNotFoundError):
        api.auth_check("double/absent", token=WRITER_TOKEN)
    hub.add_user("member", "hf_test_member", orgs=["team"])
    assert [o["name"] for o in api.whoami(token="hf_test_member")["orgs"]] == ["team"]
    assert api.create_repo("team/data", repo_type="dataset", token="hf_test_member").endswith("/datasets/team/data")
    with pytest.raises(HfHubHTTPError, match="403"):
        api.create_repo("team/other", token=READER_TOKEN)  # not the reader's namespace
    ok = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": "---\nlicense: mit\n---\n# card\n"})
    assert ok.status_code == 200 and ok.json() == {"errors": [], "warnings": []}
    bad_index = "---\nmodel-index:\n- name: x\n  results:\n  - task: {type: t}\n    dataset: {name: d}\n    metrics: []\n---\n"
    for bad in ("---\nlicense: [mit\n---\n", bad_index):
        answer = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": bad})
        assert answer.status_code == 400 and answer.json()["errors"]
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(path_or_fileobj=bad_index.encode(), path_in_repo="README.md", repo_id=repo, token=WRITER_TOKEN)
    api.upload_file(path_or_fileobj=b"a logged body", path_in_repo="body.txt", repo_id=repo, token=WRITER_TOKEN)
    assert any("body.txt" in r.body for r in hub.request_log if r.method == "POST")
