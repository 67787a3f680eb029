"""Hub access for the sources: listing and fetching a model repo's files, the local cache, and
huggingface_hub's errors as one-line LowMetricErrors (never with a token in them).

A Hub repo is listed at the asked revision, only the files its library needs are fetched (configs and
safetensors weights; pickles only with ``allow_pickle``) and the snapshot's commit hash is its
revision. With ``HF_HUB_OFFLINE=1`` the cached snapshot is used. A local folder's revision is
``sha256:`` + a hash of its files.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from low_metric.core.errors import LowMetricError, RuntimeFailure, first_line
from low_metric.sources import pipelines
from low_metric.sources.names import EncoderRef
from low_metric.sources.statmemo import file_stats, memoised

OPEN_CLIP_CONFIG = "open_clip_config.json"
# (configs, safetensors weights, pickled weights) fetched per library
FILES = {
    "transformers": (["config.json", "preprocessor_config.json", "processor_config.json"],
                     ["model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json"],
                     ["pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json"]),
    "timm": (["config.json"], ["model.safetensors"], ["pytorch_model.bin"]),
    "open_clip": ([OPEN_CLIP_CONFIG], ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors"],
                  ["open_clip_pytorch_model.bin"]),
    "diffusers": pipelines.all_files(),  # the parts a pipeline's kind loads: see pipelines.select
}


@dataclass(frozen=True)
class HubFailure:
    """What an exception of huggingface_hub or of its HTTP client says. ``kind``: "gated", "missing"
    (no such repo, or private to this token), "revision", "http" (another refusal, with its
    ``status``), "offline" (not in the local cache while offline), "timeout" or "unreachable";
    ``detail``: the first line of the server's message (never holding a token: the Hub does not echo it)."""

    kind: str
    status: int | None = None
    detail: str = ""


def hub_failure(exc: BaseException) -> HubFailure | None:
    """The :class:`HubFailure` ``exc`` is, or None when it is not one (a bug, not the Hub's answer).
    Network failures are told by their class names (httpx or httpx2, by huggingface_hub version;
    requests' ConnectionError), so no HTTP client is imported here."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    kinds = [(GatedRepoError, "gated"), (RepositoryNotFoundError, "missing"), (RevisionNotFoundError, "revision"),
             (LocalEntryNotFoundError, "offline"), (OfflineModeIsEnabled, "offline"), (HfHubHTTPError, "http")]
    kind = next((name for cls, name in kinds if isinstance(exc, cls)), None)
    if kind is None:
        names = {c.__name__ for c in type(exc).__mro__}
        kind = "timeout" if "TimeoutException" in names else "unreachable" if names & {"TransportError", "ConnectionError"} else None
    if kind is None:
        return None
    response = getattr(exc, "response", None) if isinstance(exc, HfHubHTTPError) else None
    detail = first_line(getattr(exc, "server_message", None) or exc, type(exc).__name__)
    return HubFailure(kind, None if response is None else response.status_code, detail)


@contextlib.contextmanager
def hub_failures(describe: Callable[[HubFailure], LowMetricError]) -> Iterator[None]:
    """Re-raise huggingface_hub's and the network's exceptions as ``describe(failure)`` (one line,
    without the traceback); any other exception passes unchanged."""
    try:
        yield
    except Exception as exc:
        failure = hub_failure(exc)
        if failure is None:
            raise
        raise describe(failure) from None


def resolve(ref: EncoderRef, *, token: str | None, allow_pickle: bool, trust_remote_code: bool,
            weights: bool = True) -> tuple[Path, str, str]:
    """The folder holding ``ref``'s files, its revision (commit or content hash) and its library;
    ``weights=False`` fetches the configs only (the weights files are still checked to exist)."""
    target = ref.target
    if ref.local or offline():
        folder = Path(target) if ref.local else cached_snapshot(target, ref.revision)
        commit = content_hash(folder) if ref.local else folder.name
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        library = ref.library or detect_library(files, ref.hf_hub, lambda f: folder / f, target)
        select_files(library, files, allow_pickle, target, lambda f: folder / f)
        return folder, commit, library
    return _snapshot(target, ref.revision, token, ref.library, ref.hf_hub, allow_pickle, trust_remote_code, weights)


def hub_errors(repo_id: str, revision: str | None) -> contextlib.AbstractContextManager[None]:
    """huggingface_hub's errors reading ``repo_id`` as one-line LowMetricErrors (no token in them)."""
    from huggingface_hub import constants

    def describe(f: HubFailure) -> LowMetricError:
        if f.kind == "offline":
            return RuntimeFailure(f"'{repo_id}' is not in the local cache and the Hub is unreachable (offline)")
        if f.kind in ("timeout", "unreachable"):
            detail = "did not answer in time" if f.kind == "timeout" else "is unreachable"
            return RuntimeFailure(f"the Hub at {constants.ENDPOINT} {detail} (loading '{repo_id}')")
        return LowMetricError({
            "gated": f"'{repo_id}' is a gated repo: request access on the Hub, then pass token= (or log in) with a "
                     "token that has it",
            "missing": f"repo '{repo_id}' not found on the Hub (or private: pass a token that can read it)",
            "revision": f"revision '{revision}' not found in '{repo_id}'",
        }.get(f.kind, f"the Hub refused '{repo_id}' (HTTP {f.status}){': check the token' if f.status in (401, 403) else ''}"))

    return hub_failures(describe)




def _snapshot(repo_id: str, revision: str | None, token: str | None, library: str | None, hf_hub: bool,
              allow_pickle: bool, trust_remote_code: bool, weights: bool) -> tuple[Path, str, str]:
    """List the repo at ``revision``, detect the library, fetch the needed files; returns (folder, commit, library)."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    with hub_errors(repo_id, revision):
        info = HfApi().model_info(repo_id, revision=revision, token=token)
        files = [s.rfilename for s in info.siblings or ()]

        def fetch(filename: str) -> Path:
            return Path(hf_hub_download(repo_id, filename, revision=info.sha, token=token))

        library = library or detect_library(files, hf_hub, fetch, repo_id)
        patterns = select_files(library, files, allow_pickle, repo_id, fetch)
        patterns = (patterns if weights else FILES[library][0]) + (["*.py"] if trust_remote_code else [])
        # by the name asked for, so the cache records the branch (for HF_HUB_OFFLINE) too
        folder = Path(snapshot_download(repo_id, revision=revision, token=token, allow_patterns=patterns))
    return folder, folder.name, library  # a snapshot folder is named after its commit


def offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def cached_snapshot(repo_id: str, revision: str | None) -> Path:
    """The cached snapshot of ``repo_id`` at ``revision`` (HF_HUB_OFFLINE=1); its folder name is the commit."""
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    revision = revision or "main"
    try:  # the cache named now (scan_cache_dir's default is the one set when it was first imported)
        repos = scan_cache_dir(constants.HF_HUB_CACHE).repos
    except CacheNotFound:
        repos = frozenset()
    for repo in repos:
        if repo.repo_id == repo_id and repo.repo_type == "model":
            for cached in repo.revisions:
                if revision in cached.refs or cached.commit_hash.startswith(revision):
                    return cached.snapshot_path
    raise LowMetricError(f"'{repo_id}' at '{revision}' is not in the local Hub cache and HF_HUB_OFFLINE is set")


def detect_library(files: Sequence[str], hf_hub: bool, fetch: Callable[[str], Path], name: str) -> str:
    if pipelines.MODEL_INDEX in files:
        return "diffusers"
    if hf_hub and OPEN_CLIP_CONFIG in files:
        return "open_clip"
    if "config.json" in files:
        try:
            config = json.loads(fetch("config.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise LowMetricError(f"'{name}': its config.json is not a readable JSON config") from None
        if "architecture" in config:
            return "timm"
        if "model_type" in config or "architectures" in config:
            return "transformers"
    if OPEN_CLIP_CONFIG in files:
        return "open_clip"
    raise LowMetricError(f"'{name}' holds no model config (transformers/timm config.json, {OPEN_CLIP_CONFIG} "
                         f"or a diffusers {pipelines.MODEL_INDEX})")


def select_files(library: str, files: Sequence[str], allow_pickle: bool, name: str,
                 fetch: Callable[[str], Path]) -> list[str]:
    """Patterns of the files to fetch: configs and safetensors weights, pickles only if allowed (for a
    diffusers pipeline, those of the parts its kind loads, read from ``model_index.json``)."""
    if library == "diffusers":
        if pipelines.MODEL_INDEX not in files:
            raise LowMetricError(f"'{name}' has no {pipelines.MODEL_INDEX}: not a diffusers pipeline")
        return pipelines.select(_json(fetch(pipelines.MODEL_INDEX), name), files, allow_pickle, name)
    configs, safe, pickled = FILES[library]

    def weights(patterns: list[str]) -> bool:
        return any(fnmatch.fnmatch(f, p) for f in files for p in patterns if not p.endswith(".json"))

    if weights(safe):
        return configs + safe
    if weights(pickled) and allow_pickle:
        return configs + pickled
    if weights(pickled):
        raise LowMetricError(f"'{name}' has only pickled weights: pass --allow-pickle (allow_pickle=True) to load "
                             "them weights-only, if you trust the repo")
    raise LowMetricError(f"'{name}' has no {library} weights file ({', '.join(safe)})")


def _json(path: Path, name: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LowMetricError(f"'{name}': {path.name} is not valid JSON") from None
    if not isinstance(data, dict):
        raise LowMetricError(f"'{name}': {path.name} is not a JSON object")
    return data


def content_hash(folder: Path) -> str:
    """``sha256:`` + the hash of a folder's files (relative paths and bytes), read again only when a
    file's size or modification time changed (in this process, or across runs with a stat memo)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    key = tuple((p.relative_to(folder).as_posix(), *file_stats([p])[0]) for p in files)
    return memoised(f"folder:{folder.resolve()}", files, lambda: _files_hash(key),
                    valid=lambda v: isinstance(v, str) and v.startswith("sha256:") and len(v) == 71)


@functools.lru_cache(maxsize=64)
def _files_hash(files: tuple[tuple[str, str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for relative, path, _, _ in files:
        digest.update(relative.encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def evict(repo_ids: Sequence[str], keep: Sequence[str] = ()) -> int:
    """Delete the model repos ``repo_ids`` (but never those in ``keep``) from the local Hub cache;
    returns how many revisions went. A service scoring visitors' encoders keeps its disk bounded so."""
    from huggingface_hub import constants, scan_cache_dir

    cache = scan_cache_dir(constants.HF_HUB_CACHE)
    doomed = [rev.commit_hash for repo in cache.repos if repo.repo_type == "model" and repo.repo_id in repo_ids
              and repo.repo_id not in keep for rev in repo.revisions]
    if doomed:
        cache.delete_revisions(*doomed).execute()
    return len(doomed)
