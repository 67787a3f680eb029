"""Publishing to the Hub: results to model cards and to the shared results dataset, folders to Spaces.

Every publish is planned before anything is written: the token, each repo, the rights on it, its
current files and the merged new ones are all checked first (reads only, and the Hub's own
``validate-yaml`` for every card), so a refusal leaves no half-written state. A card update opens a
pull request unless ``create_pr=False``; a result that is already there (on the branch, or in an open
pull request of ours) changes nothing. The token comes from the argument, ``HF_TOKEN`` or the
huggingface_hub login, and is never printed or stored.

``local_dir=DIR`` writes exactly the files a publish would commit into ``DIR/<type>s/<org>/<name>/``
and touches no Hub at all (no token, no network): a card is merged into DIR's copy of it when there is
one (download the current card there first to see the exact commit), else into a new card.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from low_metric.core.errors import LowMetricError, RuntimeFailure, first_line
from low_metric.hub.card import (
    HubIds,
    card_repo_id,
    card_results,
    merge_card,
)
from low_metric.hub.leaderboard import (
    DATA_FILES,
    RESULTS_DIR,
    dataset_card,
    merge_results,
    record_row,
    result_path,
    row_file,
    same_result,
)
from low_metric.scoring.results import VERSION, check_record, write_text_atomic
from low_metric.sources.hub import HubFailure, hub_failures

FOLDER_IGNORE = ["__pycache__/*", "*/__pycache__/*", "*.pyc", ".*", "*/.*"]
Reader = Callable[[str], "str | None"]  # a repo's current text of a path (None: no such file)


@dataclass
class PublishOutcome:
    """What a publish did (or, for a dry run, would do) to one repo."""

    repo_id: str
    repo_type: str
    changed: bool
    files: dict[str, str] = field(default_factory=dict)  # path -> new text of each file that changes (folders: size)
    diff: str = ""  # unified diff of those files against the Hub (or the local folder)
    url: str | None = None  # the commit written, or the repo when a folder is unchanged
    pr_url: str | None = None  # the pull request opened (or the open one that already holds the change)
    create_pr: bool = False  # the change goes (went) through a pull request
    dry_run: bool = False
    local_dir: str | None = None  # where the files were written instead of the Hub

    @property
    def card_text(self) -> str | None:
        return self.files.get("README.md")

    def report(self) -> str:
        """What happened, for people: one line (a dry run adds the diff or the file list)."""
        where = f"{self.repo_type} {self.repo_id}"
        if self.local_dir is not None:
            if not self.changed:
                return f"{where}: unchanged in {self.local_dir}"
            return f"{where}: wrote {len(self.files)} file(s) into {self.local_dir}: {', '.join(self.files)}"
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


@contextlib.contextmanager
def hub_errors(what: str, token: str | None = None, forbidden: str = "") -> Iterator[None]:
    """huggingface_hub's and the network's errors about ``what`` as one-line LowMetricErrors; a
    token never appears in them (masked if a message would hold it)."""

    def describe(f: HubFailure) -> LowMetricError:
        if f.kind in ("offline", "unreachable"):
            return RuntimeFailure(f"the Hub at {_endpoint()} is unreachable (connection failed)")
        if f.kind == "timeout":
            return RuntimeFailure(f"the Hub at {_endpoint()} did not answer in time")
        if f.kind == "http" and f.status == 412:
            return HubConflictError(f"{what} changed while publishing (412): try again")
        return LowMetricError({
            "gated": f"{what} is gated and this token has no access to it",
            "missing": f"{what} does not exist on {_endpoint()} (or is private to this token)",
            "revision": f"{what}: revision not found ({f.detail})",
        }.get(f.kind) or {
            401: "the Hub refused the token (401): check HF_TOKEN or `hf auth login`",
            403: f"no write access to {what} (403){forbidden}",
        }.get(f.status, f"{what}: the Hub answered HTTP {f.status} ({f.detail})"))

    try:
        with hub_failures(describe):
            yield
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


def _validate(api: Any, token: str | None, repo_id: str, repo_type: str, text: str) -> None:
    """Ask the Hub's own validator (``/api/validate-yaml``) about the exact card text to be committed
    (``RepoCard.validate`` sends a re-rendered card, and in huggingface_hub 1.5 always to huggingface.co,
    whatever ``HF_ENDPOINT`` says)."""
    from huggingface_hub.utils import get_session, hf_raise_for_status

    with hub_errors(f"{repo_type} {repo_id}", token):
        response = get_session().post(f"{_endpoint()}/api/validate-yaml", json={"repoType": repo_type, "content": text},
                                      headers={"Accept": "text/plain"})
        if response.status_code == 400:
            raise LowMetricError(f"{repo_type} {repo_id}: the Hub rejected the card's metadata: {_complaints(response)}")
        hf_raise_for_status(response)


def _complaints(response: Any) -> str:
    """What a validate-yaml refusal says, in one line."""
    try:
        body = response.json()
    except ValueError:
        return first_line(response.text)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
    return first_line(body.get("error", response.text) if isinstance(body, dict) else response.text)


def _local_reader(folder: Path) -> Reader:
    def read(path: str) -> str | None:
        file = folder / path
        return file.read_text(encoding="utf-8") if file.is_file() else None
    return read


def _hub_reader(api: Any, token: str | None, repo_id: str, repo_type: str, sha: str | None) -> Reader:
    def read(path: str) -> str | None:
        if sha is None:
            return None
        with hub_errors(f"{repo_type} {repo_id}", token):
            return _read(api, repo_id, path, sha, repo_type)
    return read


def local_folder(local_dir: str | Path, repo_id: str, repo_type: str) -> Path:
    """Where ``--local-dir`` puts a repo's files: ``DIR/<type>s/<org>/<name>``."""
    return Path(local_dir) / f"{repo_type}s" / repo_id


# ------------------------------------------------------------------------------------- planning
def _card_files(read: Reader, record: dict[str, Any], repo_id: str, source_url: str,
                ids: HubIds) -> tuple[dict[str, str | None], dict[str, str]]:
    old = {"README.md": read("README.md")}
    new = {"README.md": merge_card(old["README.md"], card_results(record, VERSION, source_url, ids), repo_id.split("/")[-1])}
    return old, {p: t for p, t in new.items() if t != old[p]}


def _dataset_files(read: Reader, records: Sequence[dict[str, Any]], dataset_id: str,
                   timestamp: str) -> tuple[dict[str, str | None], dict[str, str]]:
    """The records' row files (an unchanged result keeps its file) and, when the dataset's card lacks
    this version's files and schema, the card (the rest of it kept)."""
    old: dict[str, str | None] = {}
    new: dict[str, str] = {}
    for record in records:
        path, row = result_path(record), record_row(record, timestamp)
        old[path] = read(path)
        if not same_result(old[path], row):
            new[path] = row_file(row)
    old["README.md"] = read("README.md")
    card = dataset_card(dataset_id, old["README.md"])
    if card != old["README.md"]:
        new["README.md"] = card
    return old, new


def _source_url(record: dict[str, Any], dataset: str | None, source_url: str | None) -> str:
    if dataset:
        return f"{_endpoint()}/datasets/{dataset}/blob/main/{result_path(record)}"
    if source_url:
        return source_url
    raise LowMetricError("a card's scores need a source: publish them to a results dataset too (--dataset ID)")


def _summary(record: dict[str, Any]) -> str:
    values = [f"A = {record['A']['A']:.4f} ({record['A']['mode']})" if "A" in record else "",
              f"C = {record['C']['C']:.2f}" if "C" in record else ""]
    return (f"{', '.join(v for v in values if v)}\n\nProtocol hash: `{record['protocol_hash']}`.\n"
            f"Scored and published with low_metric {VERSION} (after arXiv 2408.16357).")


def _card_title(repo_id: str, record: dict[str, Any]) -> str:
    return f"low_metric: scores of {repo_id} (protocol {record['protocol_hash'][:12]})"


def _dataset_title(records: Sequence[dict[str, Any]]) -> str:
    if len(records) == 1:
        return f"low_metric: {records[0]['encoder']} under protocol {records[0]['protocol_hash'][:12]}"
    return f"low_metric: {len(records)} results"


def _plan_card(api: Any, token: str | None, record: dict[str, Any], repo_id: str, *, create_pr: bool,
               source_url: str, ids: HubIds) -> _Plan:
    what = f"model {repo_id}"
    with hub_errors(what, token):
        sha = api.model_info(repo_id).sha
    if not create_pr:
        _write_check(api, repo_id, "model", token, ": open a pull request instead (the default: drop --no-pr, create_pr=False)")
    old, files = _card_files(_hub_reader(api, token, repo_id, "model", sha), record, repo_id, source_url, ids)
    if "README.md" in files:
        _validate(api, token, repo_id, "model", files["README.md"])
    plan = _Plan(repo_id, "model", files, old, _card_title(repo_id, record), _summary(record), parent=sha,
                 create_pr=create_pr)
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
                  dataset_id: str, timestamp: str) -> _Plan:
    """One commit for all the records' files (and the card, when new or older than this version's)."""
    sha = _dataset_head(api, token, namespaces, dataset_id)
    old, files = _dataset_files(_hub_reader(api, token, dataset_id, "dataset", sha), records, dataset_id, timestamp)
    if "README.md" in files:
        _validate(api, token, dataset_id, "dataset", files["README.md"])
    description = "\n\n".join(f"{r['encoder']}: {_summary(r)}" for r in records)
    return _Plan(dataset_id, "dataset", files, old, _dataset_title(records), description, parent=sha,
                 create_repo=sha is None)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


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
        parent = plan.parent
        if plan.create_repo:
            api.create_repo(plan.repo_id, repo_type=plan.repo_type, exist_ok=True)
            info = api.repo_info(plan.repo_id, repo_type=plan.repo_type)
            if any(s.rfilename != ".gitattributes" for s in info.siblings or ()):
                raise HubConflictError(f"{what} was created by another publisher meanwhile: planning again")
            parent = info.sha
        info = api.create_commit(plan.repo_id, [CommitOperationAdd(p, t.encode()) for p, t in plan.files.items()],
                                 commit_message=plan.title, commit_description=plan.description,
                                 repo_type=plan.repo_type, create_pr=plan.create_pr, parent_commit=parent)
    outcome.url, outcome.pr_url = info.commit_url, info.pr_url
    return outcome


def _write_local(folder: Path, repo_id: str, repo_type: str, old: dict[str, str | None],
                 files: dict[str, str]) -> PublishOutcome:
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / path, text)
    return PublishOutcome(repo_id, repo_type, bool(files), dict(files), _diff(old, files), local_dir=str(folder))


def _publish_local(records: Sequence[dict[str, Any]], targets: list[tuple[dict[str, Any], str]], dataset: str | None,
                   local_dir: str | Path, source_url: str | None, ids: HubIds) -> list[PublishOutcome]:
    """Plan everything against the folders under ``local_dir`` (no Hub), then write."""
    planned = []
    for record, repo_id in targets:
        folder = local_folder(local_dir, repo_id, "model")
        old, files = _card_files(_local_reader(folder), record, repo_id, _source_url(record, dataset, source_url), ids)
        planned.append((folder, repo_id, "model", old, files))
    if dataset:
        folder = local_folder(local_dir, dataset, "dataset")
        old, files = _dataset_files(_local_reader(folder), records, dataset, _now())
        planned.append((folder, dataset, "dataset", old, files))
    return [_write_local(*p) for p in planned]


def publish_records(records: Sequence[dict[str, Any]], *, cards: bool = True, dataset: str | None = None,
                    repo_id: str | None = None, create_pr: bool = True, ids: HubIds = HubIds(),
                    source_url: str | None = None, token: str | None = None, dry_run: bool = False,
                    local_dir: str | Path | None = None) -> list[PublishOutcome]:
    """Publish records to their model cards and/or a results dataset, all checked before any write.

    ``repo_id`` overrides the card repo (one record only). A card's ``source.url`` is the record's
    file in ``dataset``, else ``source_url`` (the Space). ``ids`` names the metric and the datasets
    the cards cite. A dry run reads but writes nothing and needs no token (with one, it checks the
    rights too); ``local_dir`` writes the files into that folder instead and touches no Hub.
    """
    if not cards and not dataset:
        raise LowMetricError("nothing to publish: choose the model cards and/or a results dataset")
    records = [check_record(r, f"record {i}") for i, r in enumerate(records)]  # hashes recomputed, numbers finite
    if repo_id and len(records) != 1:
        raise LowMetricError("repo_id names one card: publish one record with it")
    targets = [(record, repo_id or card_repo_id(record)) for record in records] if cards else []
    for record, _ in targets:
        card_results(record, VERSION, _source_url(record, dataset, source_url), ids)  # refuse early: nothing read yet
    if local_dir is not None:
        return _publish_local(records, targets, dataset, local_dir, source_url, ids)
    token = resolve_token(token, required=not dry_run)
    api = _api(token)
    namespaces = _namespaces(api, token)
    builders: list[Callable[[], _Plan]] = [
        functools.partial(_plan_card, api, token, record, target, create_pr=create_pr, ids=ids,
                          source_url=_source_url(record, dataset, source_url)) for record, target in targets]
    if dataset:
        builders.append(functools.partial(_plan_dataset, api, token, namespaces, records, dataset, _now()))
    plans = [build() for build in builders]  # every check, merge and validation before the first write
    if dry_run:
        return [_outcome(p, dry_run=True) for p in plans]
    outcomes = []
    for build, plan in zip(builders, plans):
        for attempt in range(3):  # a commit raced by another: merge again on the new head
            try:
                outcomes.append(_apply(api, token, plan))
                break
            except HubConflictError:
                if attempt == 2:
                    raise
                plan = build()
    return outcomes


def publish_to_card(record: dict[str, Any], *, repo_id: str | None = None, create_pr: bool = True,
                    source_url: str | None = None, dataset: str | None = None, ids: HubIds = HubIds(),
                    token: str | None = None, dry_run: bool = False) -> PublishOutcome:
    """Merge a record's A and C into its encoder's model card (a pull request unless ``create_pr=False``);
    ``source_url`` (or the record's file in ``dataset``, which this does not write) is where the numbers live."""
    if dataset is None and source_url is None:
        raise LowMetricError("a card's scores need a source: give source_url (the Space) or dataset")
    return publish_records([record], repo_id=repo_id, create_pr=create_pr, token=token, dry_run=dry_run,
                           source_url=source_url or _source_url(record, dataset, None), ids=ids)[0]


def publish_to_dataset(record: dict[str, Any], dataset_id: str, *, token: str | None = None,
                       dry_run: bool = False) -> PublishOutcome:
    """Write a record to the results dataset (created if missing) as ``results/<org>--<name>/<hash>.jsonl``."""
    return publish_records([record], cards=False, dataset=dataset_id, token=token, dry_run=dry_run)[0]


_BOARDS: dict[tuple[str, str, str | None], tuple[float, list[dict[str, Any]]]] = {}


def read_leaderboard(dataset_id: str, *, revision: str | None = None, token: str | None = None,
                     max_age: float = 0.0) -> list[dict[str, Any]]:
    """The results dataset as one table of checked rows (see :func:`low_metric.hub.leaderboard.merge_results`),
    read in one ``snapshot_download`` (or from a local folder in the same layout, e.g. one written by
    ``publish --local-dir``); a table read less than ``max_age`` seconds ago is reused."""
    from huggingface_hub import snapshot_download

    key = (_endpoint(), dataset_id, revision)
    if max_age > 0 and key in _BOARDS and time.monotonic() - _BOARDS[key][0] < max_age:
        return [dict(r) for r in _BOARDS[key][1]]
    if Path(dataset_id).is_dir():
        if revision is not None:
            raise LowMetricError(f"revision applies to a Hub dataset, not to the local folder {dataset_id}")
        folder = Path(dataset_id)
    else:
        token = resolve_token(token, required=False)
        with hub_errors(f"dataset {dataset_id}", token):
            folder = Path(snapshot_download(dataset_id, repo_type="dataset", revision=revision, token=token,
                                            allow_patterns=[f"{RESULTS_DIR}/**"]))
    files = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8", errors="replace")
             for p in sorted(folder.glob(DATA_FILES))}
    rows = merge_results(files)
    _BOARDS[key] = (time.monotonic(), rows)
    return [dict(r) for r in rows]


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
                   token: str | None = None, dry_run: bool = False, message: str | None = None,
                   prune: Sequence[str] = ()) -> PublishOutcome:
    """Upload a folder (e.g. a Space: created if missing with ``space_sdk``); unchanged files are not re-sent,
    and files under the ``prune`` prefixes that the folder no longer has are deleted in the same commit.

    A dry run lists the files and touches nothing (no token, no network).
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, RepoFile

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
    stale = sorted(p for p in remote if p not in listing and any(p.startswith(prefix) for prefix in prune))
    if not changed and not stale:
        return PublishOutcome(repo_id, repo_type, False, url=f"{_endpoint()}/{repo_type}s/{repo_id}")
    operations = [CommitOperationAdd(p, str(root / p)) for p in changed] + [CommitOperationDelete(p) for p in stale]
    with hub_errors(what, token, ": pass create_pr=True (--create-pr) to open a pull request"):
        if sha is None:
            api.create_repo(repo_id, repo_type=repo_type, space_sdk=space_sdk, private=private, exist_ok=True)
        info = api.create_commit(repo_id, operations, repo_type=repo_type, create_pr=create_pr,
                                 commit_message=message or f"low_metric {VERSION}: upload {root.name}")
    return PublishOutcome(repo_id, repo_type, True, changed | dict.fromkeys(stale, "deleted"), url=info.commit_url,
                          pr_url=info.pr_url, create_pr=create_pr)


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
