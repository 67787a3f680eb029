"""Publishing to the Hub: results to model cards and to the shared results dataset, folders to Spaces.

Every publish is planned before anything is written: the token, each repo, the rights on it, its
current files and the merged new ones are all checked first (reads only), so a refusal leaves no
half-written state. A card update opens a pull request unless ``create_pr=False``; a result that is
already there (on the branch, or in an open pull request of ours) changes nothing. The token comes
from the argument, ``HF_TOKEN`` or the huggingface_hub login, and is never printed or stored.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from low_metric.core.errors import LowMetricError, RuntimeFailure
from low_metric.hub.card import (
    SOURCE_URL,
    card_repo_id,
    eval_results,
    eval_results_yaml,
    merge_card,
)
from low_metric.hub.leaderboard import (
    RESULTS_DIR,
    dataset_card,
    merge_results,
    result_file,
    result_path,
)
from low_metric.scoring.results import VERSION, check_record
from low_metric.sources.hub import network_failure

FOLDER_IGNORE = ["__pycache__/*", "*/__pycache__/*", "*.pyc", ".*", "*/.*"]


@dataclass
class PublishOutcome:
    """What a publish did (or, for a dry run, would do) to one repo."""

    repo_id: str
    repo_type: str
    changed: bool
    files: dict[str, str] = field(default_factory=dict)  # path -> new text of each file that changes (folders: size)
    diff: str = ""  # unified diff of those files against the Hub
    url: str | None = None  # the commit written, or the repo when a folder is unchanged
    pr_url: str | None = None  # the pull request opened (or the open one that already holds the change)
    create_pr: bool = False  # the change goes (went) through a pull request
    dry_run: bool = False

    @property
    def card_text(self) -> str | None:
        return self.files.get("README.md")

    def report(self) -> str:
        """What happened, for people: one line (a dry run adds the diff or the file list)."""
        where = f"{self.repo_type} {self.repo_id}"
        if not self.changed:
            return f"{where}: unchanged" + (f" (already proposed in {self.pr_url})" if self.pr_url else "")
        if self.dry_run:
            how = "open a pull request with" if self.create_pr else "commit"
            detail = self.diff or "\n".join(f"  {path} ({note})" for path, note in self.files.items())
            return f"[dry run] {where}: would {how} {len(self.files)} file(s): {', '.join(self.files)}\n{detail}"
        return f"{where}: pull request {self.pr_url}" if self.pr_url else f"{where}: committed {self.url}"


class HubConflictError(LowMetricError):
    """The branch moved between reading and committing (HTTP 412)."""


@dataclass
class _Plan:
    repo_id: str
    repo_type: str
    files: dict[str, str]  # only the files that change
    old: dict[str, str | None]
    title: str
    description: str
    parent: str | None = None
    create_pr: bool = False
    create_repo: bool = False
    open_pr: str | None = None


# ------------------------------------------------------------------------------------- plumbing
def resolve_token(token: str | None = None, *, required: bool = True) -> str | None:
    """The token to use: the argument, else ``HF_TOKEN``, else the huggingface_hub login."""
    from huggingface_hub import get_token

    token = token or get_token()
    if token is None and required:
        raise LowMetricError("no Hugging Face token: set HF_TOKEN or log in with `hf auth login`")
    return token


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _first_line(text: object) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


@contextlib.contextmanager
def hub_errors(what: str, token: str | None = None, forbidden: str = "") -> Iterator[None]:
    """Turn huggingface_hub and network errors about ``what`` into one-line LowMetricErrors."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        try:
            yield
        except GatedRepoError:
            raise LowMetricError(f"{what} is gated and this token has no access to it") from None
        except RepositoryNotFoundError:
            raise LowMetricError(f"{what} does not exist on {_endpoint()} (or is private to this token)") from None
        except RevisionNotFoundError as e:
            raise LowMetricError(f"{what}: revision not found ({_first_line(e.server_message or e)})") from None
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else None
            if status == 401:
                raise LowMetricError("the Hub refused the token (401): check HF_TOKEN or `hf auth login`") from None
            if status == 403:
                raise LowMetricError(f"no write access to {what} (403){forbidden}") from None
            if status == 412:
                raise HubConflictError(f"{what} changed while publishing (412): try again") from None
            raise LowMetricError(f"{what}: the Hub answered HTTP {status} ({_first_line(e.server_message or e)})") from None
        except (OfflineModeIsEnabled, LocalEntryNotFoundError, ConnectionError):
            raise RuntimeFailure(f"the Hub at {_endpoint()} is unreachable (connection failed)") from None
        except ValueError as e:  # huggingface_hub's validate-yaml refusal of a README
            if not str(e).startswith("Invalid metadata"):
                raise
            raise LowMetricError(f"{what}: the Hub rejected the card's metadata: {' '.join(str(e).split()[4:])}") from None
        except Exception as e:  # the HTTP client's own errors
            failure = network_failure(e)
            if failure == "timeout":
                raise RuntimeFailure(f"the Hub at {_endpoint()} did not answer in time") from None
            if failure:
                raise RuntimeFailure(f"the Hub at {_endpoint()} is unreachable (connection failed)") from None
            raise
    except LowMetricError as e:
        if token and token in str(e):
            raise type(e)(str(e).replace(token, "***")) from None
        raise


def _api(token: str | None) -> Any:
    from huggingface_hub import HfApi

    return HfApi(token=token, library_name="low_metric", library_version=VERSION)


def _namespaces(api: Any, token: str | None) -> set[str]:
    """The user's name and organisations (empty without a token); checks the token and the connection."""
    if token is None:
        return set()
    with hub_errors("the token", token):
        me = api.whoami()
    return {me["name"], *(o["name"] for o in me.get("orgs", []))}


def _read(api: Any, repo_id: str, path: str, revision: str, repo_type: str) -> str | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    try:
        local = hf_hub_download(repo_id, path, revision=revision, repo_type=repo_type, token=api.token,
                                endpoint=api.endpoint)
    except RemoteEntryNotFoundError:
        return None
    return Path(local).read_text(encoding="utf-8")


def _diff(old: dict[str, str | None], new: dict[str, str]) -> str:
    return "".join("".join(difflib.unified_diff((old.get(p) or "").splitlines(True), text.splitlines(True),
                                                f"a/{p}", f"b/{p}")) for p, text in new.items())


def _summary(record: dict[str, Any]) -> str:
    values = [f"A = {record['A']['A']:.4f} ({record['A']['mode']})" if "A" in record else "",
              f"C = {record['C']['C']:.2f}" if "C" in record else "",
              f"AC = {record['AC']['AC_mean']:.4f}" if "AC" in record else ""]
    return (f"{', '.join(v for v in values if v)}\n\nProtocol hash: `{record['protocol_hash']}`.\n"
            f"Scored and published with low_metric {VERSION} (after arXiv 2408.16357).")


def _write_check(api: Any, repo_id: str, repo_type: str, token: str | None, hint: str) -> None:
    """Refuse early when the token may not write to the repo (skipped without a token: dry runs)."""
    if token:
        with hub_errors(f"{repo_type} {repo_id}", token, hint):
            api.auth_check(repo_id, repo_type=repo_type, write=True)


def _head(api: Any, token: str | None, repo_id: str, repo_type: str) -> str | None:
    """The repo's head commit, or None when it does not exist (or is private to others)."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    with hub_errors(f"{repo_type} {repo_id}", token):
        try:
            return api.repo_info(repo_id, repo_type=repo_type).sha
        except RepositoryNotFoundError as e:
            if isinstance(e, GatedRepoError):
                raise
            return None


def _creatable(repo_id: str, repo_type: str, token: str | None, namespaces: set[str]) -> None:
    namespace = repo_id.split("/")[0]
    if token and namespace not in namespaces:
        raise LowMetricError(f"{repo_type} {repo_id} does not exist and this token cannot create it under '{namespace}'")


# ------------------------------------------------------------------------------------- planning
def _plan_card(api: Any, token: str | None, record: dict[str, Any], repo_id: str, *, create_pr: bool,
               benchmark: str | None, source_url: str) -> _Plan:
    what = f"model {repo_id}"
    with hub_errors(what, token):
        sha = api.model_info(repo_id).sha
    if not create_pr:
        _write_check(api, repo_id, "model", token, ": open a pull request instead (the default: drop --no-pr, create_pr=False)")
    with hub_errors(what, token):
        old: dict[str, str | None] = {"README.md": _read(api, repo_id, "README.md", sha, "model")}
        new = {"README.md": merge_card(old["README.md"], eval_results(record, VERSION, source_url),
                                       repo_id.split("/")[-1])}
        if benchmark:
            path, text = eval_results_yaml(record, VERSION, benchmark, source_url)
            old[path], new[path] = _read(api, repo_id, path, sha, "model"), text
    files = {p: t for p, t in new.items() if t != old[p]}
    plan = _Plan(repo_id, "model", files, old, f"low_metric: scores of {repo_id} (protocol {record['protocol_hash'][:12]})",
                 _summary(record), parent=sha, create_pr=create_pr)
    if files and create_pr:
        plan.open_pr = _open_pr_with(api, token, plan)
    return plan


def _open_pr_with(api: Any, token: str | None, plan: _Plan) -> str | None:
    """An open pull request of ours whose branch already holds the planned files."""
    with hub_errors(f"model {plan.repo_id}", token):
        for d in api.get_repo_discussions(plan.repo_id, discussion_type="pull_request", discussion_status="open"):
            if d.is_pull_request and d.status == "open" and d.title == plan.title and all(
                    _read(api, plan.repo_id, p, d.git_reference, "model") == t for p, t in plan.files.items()):
                return d.url
    return None


def _dataset_head(api: Any, token: str | None, namespaces: set[str], dataset_id: str) -> str | None:
    """The dataset's head commit (None: missing, and ours to create), once the token may write to it."""
    sha = _head(api, token, dataset_id, "dataset")
    if sha is None:
        _creatable(dataset_id, "dataset", token, namespaces)
    else:
        _write_check(api, dataset_id, "dataset", token, "")
    return sha


def check_dataset_access(dataset_id: str, *, token: str | None = None) -> None:
    """Fail now (one line) unless the token may write to ``dataset_id`` or create it: before long work."""
    token = resolve_token(token)
    api = _api(token)
    _dataset_head(api, token, _namespaces(api, token), dataset_id)


def _plan_dataset(api: Any, token: str | None, namespaces: set[str], records: Sequence[dict[str, Any]],
                  dataset_id: str) -> _Plan:
    """One commit for all the records' files (and the card of a dataset that is created)."""
    new = {result_path(r): result_file(r) for r in records}
    title = (f"low_metric: {records[0]['encoder']} under protocol {records[0]['protocol_hash'][:12]}" if len(records) == 1
             else f"low_metric: {len(new)} results")
    description = "\n\n".join(f"{r['encoder']}: {_summary(r)}" for r in records)
    sha = _dataset_head(api, token, namespaces, dataset_id)
    if sha is None:
        return _Plan(dataset_id, "dataset", {"README.md": dataset_card(dataset_id), **new}, dict.fromkeys(["README.md", *new]),
                     title, description, create_repo=True)
    with hub_errors(f"dataset {dataset_id}", token):
        old = {p: _read(api, dataset_id, p, sha, "dataset") for p in new}
    return _Plan(dataset_id, "dataset", {p: t for p, t in new.items() if t != old[p]}, old, title, description)


# ------------------------------------------------------------------------------------- writing
def _outcome(plan: _Plan, dry_run: bool = False) -> PublishOutcome:
    return PublishOutcome(plan.repo_id, plan.repo_type, bool(plan.files) and plan.open_pr is None, dict(plan.files),
                          _diff(plan.old, plan.files), pr_url=plan.open_pr, create_pr=plan.create_pr, dry_run=dry_run)


def _apply(api: Any, token: str | None, plan: _Plan) -> PublishOutcome:
    from huggingface_hub import CommitOperationAdd

    outcome = _outcome(plan)
    if not outcome.changed:
        return outcome
    what = f"{plan.repo_type} {plan.repo_id}"
    with hub_errors(what, token):
        if plan.create_repo:
            api.create_repo(plan.repo_id, repo_type=plan.repo_type, exist_ok=True)
        info = api.create_commit(plan.repo_id, [CommitOperationAdd(p, t.encode()) for p, t in plan.files.items()],
                                 commit_message=plan.title, commit_description=plan.description,
                                 repo_type=plan.repo_type, create_pr=plan.create_pr, parent_commit=plan.parent)
    outcome.url, outcome.pr_url = info.commit_url, info.pr_url
    return outcome


def publish_records(records: Sequence[dict[str, Any]], *, cards: bool = True, dataset: str | None = None,
                    repo_id: str | None = None, create_pr: bool = True, eval_results_file: bool = False,
                    benchmark: str | None = None, token: str | None = None, dry_run: bool = False) -> list[PublishOutcome]:
    """Publish records to their model cards and/or a results dataset, all checked before any write.

    ``repo_id`` overrides the card repo (one record only). ``eval_results_file`` also writes the
    ``.eval_results/*.yaml`` form, filed under ``benchmark`` (default: ``dataset``). A dry run reads
    but writes nothing and needs no token (with one, it checks the rights too).
    """
    if not cards and not dataset:
        raise LowMetricError("nothing to publish: choose the model cards and/or a results dataset")
    records = [check_record(r, f"record {i}") for i, r in enumerate(records)]  # hashes recomputed, numbers finite
    if repo_id and len(records) != 1:
        raise LowMetricError("repo_id names one card: publish one record with it")
    benchmark = benchmark or dataset
    if eval_results_file and not benchmark:
        raise LowMetricError("the .eval_results form files scores under a benchmark dataset: give benchmark= (or a dataset)")
    token = resolve_token(token, required=not dry_run)
    api = _api(token)
    namespaces = _namespaces(api, token)
    builders: list[Callable[[], _Plan]] = []
    for record in records:
        if cards:
            source = (f"{_endpoint()}/datasets/{dataset}/blob/main/{result_path(record)}" if dataset else SOURCE_URL)
            builders.append(functools.partial(_plan_card, api, token, record, repo_id or card_repo_id(record),
                                              create_pr=create_pr, benchmark=benchmark if eval_results_file else None,
                                              source_url=source))
    if dataset:
        builders.append(functools.partial(_plan_dataset, api, token, namespaces, records, dataset))
    plans = [build() for build in builders]  # every check and merge before the first write
    if dry_run:
        return [_outcome(p, dry_run=True) for p in plans]
    outcomes = []
    for build, plan in zip(builders, plans):
        for attempt in range(3):  # a direct commit raced by another: merge again on the new head
            try:
                outcomes.append(_apply(api, token, plan))
                break
            except HubConflictError:
                if attempt == 2:
                    raise
                plan = build()
    return outcomes


def publish_to_card(record: dict[str, Any], *, repo_id: str | None = None, create_pr: bool = True,
                    token: str | None = None, eval_results_file: bool = False, benchmark: str | None = None,
                    dry_run: bool = False) -> PublishOutcome:
    """Merge a record's A/C/AC scores into its encoder's model card (a pull request unless ``create_pr=False``)."""
    return publish_records([record], repo_id=repo_id, create_pr=create_pr, token=token, dry_run=dry_run,
                           eval_results_file=eval_results_file, benchmark=benchmark)[0]


def publish_to_dataset(record: dict[str, Any], dataset_id: str, *, token: str | None = None,
                       dry_run: bool = False) -> PublishOutcome:
    """Write a record to the results dataset (created if missing) as ``results/<org>--<name>/<hash>.json``."""
    return publish_records([record], cards=False, dataset=dataset_id, token=token, dry_run=dry_run)[0]


def read_leaderboard(dataset_id: str, *, revision: str | None = None, token: str | None = None) -> list[dict[str, Any]]:
    """The results dataset as one table: a row per file (see :func:`low_metric.hub.leaderboard.merge_results`)."""
    token = resolve_token(token, required=False)
    api = _api(token)
    with hub_errors(f"dataset {dataset_id}", token):
        info = api.dataset_info(dataset_id, revision=revision)
        paths = [s.rfilename for s in info.siblings or () if s.rfilename.startswith(f"{RESULTS_DIR}/")
                 and s.rfilename.endswith(".json")]
        files = {}
        for p in paths:
            try:
                files[p] = json.loads(_read(api, dataset_id, p, info.sha, "dataset") or "null")
            except json.JSONDecodeError:
                files[p] = None  # merge_results skips it with a warning
    return merge_results(files)


# ------------------------------------------------------------------------------------- folders and batches
def folder_files(folder: str | Path, required: Sequence[str] = ()) -> list[str]:
    """The files of ``folder`` that an upload sends (caches and hidden files left out)."""
    from huggingface_hub.utils import filter_repo_objects

    root = Path(folder)
    if not root.is_dir():
        raise LowMetricError(f"{folder}: no such folder")
    files = sorted(filter_repo_objects([p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()],
                                       ignore_patterns=FOLDER_IGNORE))
    missing = [r for r in required if r not in files]
    if missing:
        raise LowMetricError(f"{folder}: missing {', '.join(missing)}")
    return files


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def publish_folder(folder: str | Path, repo_id: str, *, repo_type: str = "space", space_sdk: str | None = "gradio",
                   required: Sequence[str] = ("README.md",), create_pr: bool = False, private: bool = False,
                   token: str | None = None, dry_run: bool = False, message: str | None = None) -> PublishOutcome:
    """Upload a folder (e.g. a Space: created if missing with ``space_sdk``); unchanged files are not re-sent.

    A dry run lists the files and touches nothing (no token, no network).
    """
    from huggingface_hub import RepoFile

    root = Path(folder)
    files = folder_files(root, required)
    listing = {p: f"{(root / p).stat().st_size} bytes" for p in files}
    if dry_run:
        return PublishOutcome(repo_id, repo_type, True, listing, create_pr=create_pr, dry_run=True)
    token = resolve_token(token)
    api = _api(token)
    what = f"{repo_type} {repo_id}"
    namespaces = _namespaces(api, token)
    sha = _head(api, token, repo_id, repo_type)
    remote: dict[str, str] = {}
    if sha is None:
        if create_pr:
            raise LowMetricError(f"{what} does not exist: a pull request needs an existing repo")
        _creatable(repo_id, repo_type, token, namespaces)
    else:
        if not create_pr:
            _write_check(api, repo_id, repo_type, token, ": pass create_pr=True (--create-pr) to open a pull request")
        with hub_errors(what, token):
            remote = {f.path: f.blob_id for f in api.list_repo_tree(repo_id, repo_type=repo_type, revision=sha,
                                                                     recursive=True) if isinstance(f, RepoFile)}
    changed = {p: s for p, s in listing.items() if remote.get(p) != _git_blob_sha((root / p).read_bytes())}
    if not changed:
        return PublishOutcome(repo_id, repo_type, False, url=f"{_endpoint()}/{repo_type}s/{repo_id}")
    with hub_errors(what, token, ": pass create_pr=True (--create-pr) to open a pull request"):
        if sha is None:
            api.create_repo(repo_id, repo_type=repo_type, space_sdk=space_sdk, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=root, repo_id=repo_id, repo_type=repo_type, allow_patterns=list(changed),
                                 commit_message=message or f"low_metric {VERSION}: upload {root.name}",
                                 create_pr=create_pr)
    return PublishOutcome(repo_id, repo_type, True, changed, url=info.commit_url, pr_url=info.pr_url, create_pr=create_pr)


def score_command(encoders: Sequence[str], *, output: str, num_processes: int = 1, cpu: bool = False,
                  extra: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """The command (and extra environment) that scores ``encoders`` in one batch: plain Python for one
    process, ``accelerate launch`` for several (``cpu``: gloo processes on the CPU)."""
    if not encoders:
        raise LowMetricError("no encoder to score")
    if num_processes < 1:
        raise LowMetricError("the number of processes must be >= 1")
    score = ["-m", "low_metric.cli", "score", *encoders, "--output", output, *extra]
    if num_processes == 1:
        return [sys.executable, *score], {}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes), "--multi_gpu"]
    return [*launch, *score], {"ACCELERATE_USE_CPU": "1"} if cpu else {}


def read_encoder_list(path: str | Path) -> list[str]:
    """Encoder names from a file, one per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise LowMetricError(f"{path}: cannot read ({e.strerror})") from None
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
