"""A standard-library Hugging Face Hub double for tests: a real HTTP server on 127.0.0.1.

It serves model, dataset and Space repos (resolve, repo info, tree, refs, commits) and accepts
uploads (preupload, NDJSON commits, pull requests, repo creation), keeping every commit so a test
can read back what a push left. Point ``HF_ENDPOINT`` at ``hub.url`` before huggingface_hub is
imported (see ``conftest.py``).

    hub = HubDouble().start()
    hub.add_user("alice", "hf_alice")
    sha = hub.add_repo("org/model", {"config.json": b"{}"}, write_tokens=["hf_alice"])
    hub.read("org/model", "config.json")          # -> b"{}"

Access rules: an unknown token gets 401 everywhere; a gated repo shows its metadata (info, tree)
to all but answers file downloads with 401 ``GatedRepo`` without a token and 403 to a token it
does not grant; a private repo answers 401 ``RepoNotFound``
without a token and 404 to a token it does not grant; writing to a branch needs a token in the
repo's ``write_tokens``, while any known token may open a pull request or discussion; a repo can be
created only under the user's own name or one of its ``orgs``. ``auth-check`` answers read and write
checks by the same rules, and ``validate-yaml`` checks that a card's front matter is YAML with a
well-formed ``model-index``. Tokens are never logged: ``request_log`` keeps headers with
``authorization`` redacted (and request bodies as sent, so tests can check no token is in them).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

REPO_TYPES = ("model", "dataset", "space")
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack", ".npz",
                ".pkl", ".parquet", ".arrow", ".zip", ".gz", ".tar", ".jpg", ".jpeg", ".png")
LFS_MIN_SIZE = 10 * 1024 * 1024
_API_WORDS = {"revision", "tree", "preupload", "commit", "commits", "discussions", "paths-info", "refs", "auth-check"}
_GITATTRIBUTES = b"".join(b"*%s filter=lfs diff=lfs merge=lfs -text\n" % s.encode() for s in LFS_SUFFIXES)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _is_lfs(path: str, data: bytes) -> bool:
    return path.lower().endswith(LFS_SUFFIXES) or len(data) >= LFS_MIN_SIZE


class LoggedRequest(NamedTuple):
    """One request as the double saw it; ``authorization`` is redacted, never stored. ``body``: the
    request body as text (undecodable bytes replaced)."""

    method: str
    path: str
    headers: dict[str, str]
    body: str = ""


@dataclass(frozen=True)
class Commit:
    """One commit of a repo: a full snapshot of its files."""

    sha: str
    ref: str
    parent: str | None
    title: str
    description: str
    author: str | None
    date: str
    files: Mapping[str, bytes]
    added: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


@dataclass
class Discussion:
    """A discussion or pull request; a pull request's changes live on ``ref`` (``refs/pr/N``)."""

    num: int
    title: str
    description: str
    author: str | None
    is_pull_request: bool
    status: str
    created_at: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ref(self) -> str | None:
        return f"refs/pr/{self.num}" if self.is_pull_request else None


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    gated: bool
    read_tokens: frozenset[str] | None
    write_tokens: set[str]
    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    discussions: list[Discussion] = field(default_factory=list)


class HubError(Exception):
    """An error answer: HTTP status, ``X-Error-Code`` and message."""

    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit


def _files_from(source: Path | str | Mapping[str, bytes | str]) -> dict[str, bytes]:
    if isinstance(source, Mapping):
        return {k: v.encode() if isinstance(v, str) else bytes(v) for k, v in source.items()}
    root = Path(source)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


class HubDouble:
    """The Hub double: repo state behind a lock, served by a ThreadingHTTPServer in a thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._users: dict[str, str] = {}  # token -> user name
        self._orgs: dict[str, tuple[str, ...]] = {}  # user name -> organisations
        self._counter = itertools.count()
        self.request_log: list[LoggedRequest] = []
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubDouble:
        self._thread = threading.Thread(target=self._server.serve_forever, name="hub-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HubDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test API
    def add_user(self, name: str, token: str, orgs: Iterable[str] = ()) -> str:
        """Register a user token (and the organisations the user may create repos in); returns the token."""
        with self._lock:
            self._users[token] = name
            self._orgs[name] = tuple(orgs)
        return token

    def add_repo(self, repo_id: str, files: Path | str | Mapping[str, bytes | str], *,
                 repo_type: str = "model", gated: bool = False, private: bool = False,
                 write_tokens: Iterable[str] = (), read_tokens: Iterable[str] | None = None,
                 message: str = "initial commit") -> str:
        """Create (or replace) a repo from a folder or {path: bytes}; returns its first commit's sha.

        ``read_tokens`` limits who gets through a gate or into a private repo (default: any known
        token for gated repos, the write tokens for private ones).
        """
        if repo_type not in REPO_TYPES:
            raise ValueError(f"repo_type must be one of {REPO_TYPES}")
        with self._lock:
            unknown = [t for t in [*write_tokens, *(read_tokens or ())] if t not in self._users]
            if unknown:
                raise ValueError("tokens must be registered with add_user() first")
            reads = frozenset(read_tokens) if read_tokens is not None else None
            repo = _Repo(repo_type, repo_id, private, gated, reads, set(write_tokens))
            self._repos[(repo_type, repo_id)] = repo
            return self._commit(repo, "main", None, {".gitattributes": _GITATTRIBUTES, **_files_from(files)},
                                (), message, "", None)

    def push(self, repo_id: str, files: Path | str | Mapping[str, bytes | str] | None = None, *,
             delete: Iterable[str] = (), repo_type: str = "model", branch: str = "main",
             message: str = "update") -> str:
        """Commit files (and deletions) straight to a branch, as the repo owner; returns the sha."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            return self._commit(repo, branch, repo.refs.get(branch, repo.refs["main"]),
                                _files_from(files) if files is not None else {}, tuple(delete), message, "", None)

    def read(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        """The bytes of ``path`` at ``revision``; KeyError when absent."""
        with self._lock:
            return self._snapshot(self._repo(repo_type, repo_id), revision).files[path]

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[str]:
        """Sorted file paths at ``revision``."""
        with self._lock:
            return sorted(self._snapshot(self._repo(repo_type, repo_id), revision).files)

    def commits(self, repo_id: str, repo_type: str = "model") -> list[Commit]:
        """Every commit of the repo, on all refs, oldest first."""
        with self._lock:
            return list(self._repo(repo_type, repo_id).commits.values())

    def pull_requests(self, repo_id: str, repo_type: str = "model") -> list[Discussion]:
        """The repo's pull requests, oldest first."""
        with self._lock:
            return [d for d in self._repo(repo_type, repo_id).discussions if d.is_pull_request]

    def head(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        """The commit sha that ``revision`` points to."""
        with self._lock:
            return self._snapshot(self._repo(repo_type, repo_id), revision).sha

    # ------------------------------------------------------------------ state
    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        try:
            return self._repos[(repo_type, repo_id)]
        except KeyError:
            raise HubError(404, "RepoNotFound", f"Repository Not Found: {repo_id}") from None

    def _snapshot(self, repo: _Repo, revision: str) -> Commit:
        sha = repo.refs.get(revision) or repo.refs.get(revision.removeprefix("refs/heads/"))
        if sha is None and re.fullmatch(r"[0-9a-f]{7,40}", revision):
            sha = next((s for s in repo.commits if s.startswith(revision)), None)
        if sha is None:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return repo.commits[sha]

    def _commit(self, repo: _Repo, ref: str, parent: str | None, added: Mapping[str, bytes],
                deleted: tuple[str, ...], title: str, description: str, author: str | None) -> str:
        files = dict(repo.commits[parent].files) if parent else {}
        for path in deleted:
            folder = path.rstrip("/") + "/"
            gone = [p for p in files if p == path or p.startswith(folder)]
            if not gone:
                raise HubError(404, "EntryNotFound", f"A file with this name doesn't exist: {path}")
            for p in gone:
                del files[p]
        files.update(added)
        blob = json.dumps([parent, title, next(self._counter), sorted((p, _git_blob_sha(d)) for p, d in files.items())])
        sha = hashlib.sha1(blob.encode()).hexdigest()
        repo.commits[sha] = Commit(sha, ref, parent, title, description, author, _now(), MappingProxyType(files),
                                   tuple(added), deleted)
        repo.refs[ref] = sha
        return sha

    def _user(self, token: str | None) -> str | None:
        if token is None:
            return None
        if token not in self._users:
            raise HubError(401, None, "Invalid credentials in Authorization header")
        return self._users[token]

    def _readable(self, repo_type: str, repo_id: str, token: str | None, gate: bool = True) -> _Repo:
        """The repo if ``token`` may see it; ``gate=False`` for metadata, which gated repos show to all."""
        self._user(token)
        repo = self._repo(repo_type, repo_id)
        granted = _granted(repo, token)
        if repo.private and not granted:
            raise HubError(401 if token is None else 404, "RepoNotFound", f"Repository Not Found: {repo_id}")
        if gate and repo.gated and not granted:
            raise HubError(401 if token is None else 403, "GatedRepo",
                           f"Access to model {repo_id} is restricted. You must have access to it.")
        return repo

    def _writer(self, repo: _Repo, token: str | None, pull_request: bool) -> str:
        user = self._user(token)
        if user is None:
            raise HubError(401, None, "You must be authenticated to write")
        if token not in repo.write_tokens and not pull_request:
            raise HubError(403, None, f"You don't have the rights to write on {repo.repo_id}")
        return user

    def _open_discussion(self, repo: _Repo, title: str, description: str, author: str | None,
                         pull_request: bool, status: str) -> Discussion:
        num = len(repo.discussions) + 1
        d = Discussion(num, title, description, author, pull_request, status, _now())
        d.events.append(_event("comment", author, {"edited": False, "hidden": False, "latest": {"raw": description}}))
        repo.discussions.append(d)
        if pull_request:
            repo.refs[d.ref] = repo.refs["main"]
        return d


def _granted(repo: _Repo, token: str | None) -> bool:
    """Write tokens always pass; else the repo's read tokens, or any known token for a public gate."""
    if token is None:
        return False
    if token in repo.write_tokens:
        return True
    return token in repo.read_tokens if repo.read_tokens is not None else not repo.private


def _event(kind: str, author: str | None, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": hashlib.sha1(repr((kind, data, _now())).encode()).hexdigest()[:24], "type": kind,
            "createdAt": _now(), "author": {"name": author or "deleted"}, "data": data}


def _entry(path: str, data: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "file", "path": path, "size": len(data), "oid": _git_blob_sha(data)}
    if _is_lfs(path, data):
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


def _folder(path: str) -> dict[str, Any]:
    return {"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest()}


def _path_info(files: Mapping[str, bytes], path: str) -> dict[str, Any] | None:
    if path in files:
        return _entry(path, files[path])
    return _folder(path) if any(f.startswith(path.rstrip("/") + "/") for f in files) else None


def _tree(files: Mapping[str, bytes], folder: str, recursive: bool) -> list[dict[str, Any]]:
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(files):
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix):].split("/")
        depth = len(parts) if recursive else 1
        for i in range(1, min(depth, len(parts) - 1) + 1):
            sub = prefix + "/".join(parts[:i])
            out.setdefault(sub, _folder(sub))
        if recursive or len(parts) == 1:
            out[path] = _entry(path, files[path])
    if prefix and not out:
        raise HubError(404, "EntryNotFound", f"{folder} does not exist on this revision")
    return list(out.values())


def _yaml_errors(content: str) -> list[str]:
    """What the Hub's validate-yaml would object to in a card: its front matter's YAML and model-index."""
    import yaml

    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
    if match is None:
        return []
    try:
        meta = yaml.safe_load(match[1]) or {}
    except yaml.YAMLError as e:
        return [f"invalid YAML: {str(e).splitlines()[0]}"]
    if not isinstance(meta, dict):
        return ["metadata must be a YAML mapping"]
    index = meta.get("model-index")
    if index is None:
        return []
    errors = []
    for i, model in enumerate(index if isinstance(index, list) else [None]):
        if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not isinstance(model.get("results"), list):
            errors.append(f"model-index[{i}] needs a name and a results list")
            continue
        for j, r in enumerate(model["results"]):
            where = f"model-index[{i}].results[{j}]"
            if not isinstance(r, dict) or not isinstance((r.get("task") or {}).get("type"), str):
                errors.append(f"{where}.task.type is required")
            elif not all(isinstance((r.get("dataset") or {}).get(k), str) for k in ("name", "type")):
                errors.append(f"{where}.dataset needs a name and a type")
            elif not r.get("metrics") or not all(isinstance(m, dict) and isinstance(m.get("type"), str) and "value" in m
                                                 for m in r["metrics"]):
                errors.append(f"{where}.metrics: each needs a type and a value")
    return errors


def _handler_for(hub: HubDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.hub = hub
    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubDouble

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # ------------------------------------------------------------------ plumbing
    def _dispatch(self, method: str) -> None:
        headers = {k.lower(): ("<redacted>" if k.lower() in ("authorization", "cookie") else v)
                   for k, v in self.headers.items()}
        self.body = self._read_body() if method == "POST" else b""
        with self.hub._lock:
            self.hub.request_log.append(LoggedRequest(method, self.path, headers, self.body.decode(errors="replace")))
        auth = self.headers.get("Authorization", "")
        self.token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        split = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        try:
            self._route(method, split.path)
        except HubError as e:
            self._error(e, method)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
              method: str = "GET", content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, e: HubError, method: str, extra: Mapping[str, Any] | None = None) -> None:
        headers = {"X-Error-Message": e.message}
        if e.code:
            headers["X-Error-Code"] = e.code
        if e.commit:
            headers["X-Repo-Commit"] = e.commit
        self._send(e.status, json.dumps({"error": e.message, **(extra or {})}).encode(), headers, method)

    # ------------------------------------------------------------------ routes
    def _route(self, method: str, path: str) -> None:
        segs = [unquote(s) for s in path.strip("/").split("/")]
        if segs[0] != "api":
            return self._resolve(method, segs)
        if segs[1:] == ["whoami-v2"]:
            return self._whoami()
        if segs[1:] == ["validate-yaml"] and method == "POST":
            errors = _yaml_errors(json.loads(self.body or b"{}").get("content", ""))
            return self._json({"errors": [{"message": e} for e in errors], "warnings": []}, 400 if errors else 200)
        if segs[1:] == ["repos", "create"] and method == "POST":
            return self._create_repo()
        if len(segs) >= 3 and segs[1] in ("models", "datasets", "spaces"):
            n = 1 if len(segs) == 3 or segs[3] in _API_WORDS else 2
            repo_type, repo_id, rest = segs[1][:-1], "/".join(segs[2:2 + n]), segs[2 + n:]
            return self._api(method, repo_type, repo_id, rest)
        raise HubError(404, None, f"Not found: {path}")

    def _resolve(self, method: str, segs: list[str]) -> None:
        repo_type = "model"
        if segs[0] in ("datasets", "spaces") and len(segs) > 3:
            repo_type, segs = segs[0][:-1], segs[1:]
        n = 1 if segs[1:2] == ["resolve"] else 2
        if segs[n:n + 1] != ["resolve"] or len(segs) < n + 3 or method == "POST":
            raise HubError(404, None, "Not found")
        repo_id, revision, filename = "/".join(segs[:n]), segs[n + 1], "/".join(segs[n + 2:])
        with self.hub._lock:
            commit = self.hub._snapshot(self.hub._readable(repo_type, repo_id, self.token), revision)
        data = commit.files.get(filename)
        if data is None:
            raise HubError(404, "EntryNotFound", f"Entry not found: {filename}", commit=commit.sha)
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{_git_blob_sha(data)}"', "Accept-Ranges": "bytes"}
        if _is_lfs(filename, data):
            headers |= {"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))}
        status, body = 200, data
        if match := re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")):
            start, end = int(match[1]), int(match[2] or len(data) - 1)
            status, body = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{len(data)}"
        self._send(status, body, headers, method, "application/octet-stream")

    def _whoami(self) -> None:
        with self.hub._lock:
            user = self.hub._user(self.token)
        if user is None:
            raise HubError(401, None, "Invalid credentials in Authorization header")
        orgs = [{"type": "org", "name": o, "roleInOrg": "write"} for o in self.hub._orgs.get(user, ())]
        self._json({"type": "user", "id": user, "name": user, "fullname": user, "orgs": orgs,
                    "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": "write"}}})

    def _create_repo(self) -> None:
        payload = json.loads(self.body or b"{}")
        repo_type = payload.get("type") or "model"
        with self.hub._lock:
            user = self.hub._user(self.token)
            if user is None:
                raise HubError(401, None, "You must be authenticated to create a repo")
            namespace = payload.get("organization") or user
            repo_id = f"{namespace}/{payload['name']}"
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            url = f"{self.hub.url}/{prefix}{repo_id}"
            if (repo_type, repo_id) in self.hub._repos:
                err = HubError(409, None, f"You already created this {repo_type} repo")
                return self._error(err, "POST", {"url": url})
            if namespace != user and namespace not in self.hub._orgs.get(user, ()):
                raise HubError(403, None, f"You don't have the rights to create a repo under {namespace}")
            private = payload.get("private") or payload.get("visibility") == "private"
            repo = _Repo(repo_type, repo_id, bool(private), False, None, {self.token})
            self.hub._repos[(repo_type, repo_id)] = repo
            self.hub._commit(repo, "main", None, {".gitattributes": _GITATTRIBUTES}, (), "initial commit", "", user)
        self._json({"url": url, "name": repo_id})

    def _api(self, method: str, repo_type: str, repo_id: str, rest: list[str]) -> None:
        hub = self.hub
        if method == "POST" and rest and rest[0] in ("preupload", "commit", "discussions"):
            return self._post(repo_type, repo_id, rest)
        with hub._lock:
            repo = hub._readable(repo_type, repo_id, self.token, gate=False)
            if not rest or rest[0] == "revision":
                commit = hub._snapshot(repo, "/".join(rest[1:]) or "main")
                return self._json(self._info(repo, commit))
            if rest[0] == "tree" and len(rest) >= 2:
                commit = hub._snapshot(repo, rest[1])
                recursive = self.query.get("recursive", "false").lower() in ("true", "1")
                return self._json(_tree(commit.files, "/".join(rest[2:]), recursive))
            if rest[0] == "paths-info" and len(rest) == 2:
                files = hub._snapshot(repo, rest[1]).files
                paths = parse_qs(self.body.decode()).get("paths", [])
                return self._json([i for p in paths if (i := _path_info(files, p)) is not None])
            if rest[0] == "refs":
                return self._json(self._refs(repo))
            if rest[0] == "auth-check" and rest[1:] in ([], ["write"]):
                hub._readable(repo_type, repo_id, self.token)
                if rest[1:]:
                    hub._writer(repo, self.token, pull_request=False)
                return self._json({})
            if rest[0] == "commits" and len(rest) >= 2:
                return self._json(self._history(repo, hub._snapshot(repo, "/".join(rest[1:])).sha))
            if rest[0] == "discussions" and len(rest) == 1:
                items = [self._discussion(repo, d) for d in repo.discussions]
                return self._json({"discussions": items[::-1], "count": len(items), "start": 0,
                                   "numClosedDiscussions": sum(d.status == "closed" for d in repo.discussions)})
            if rest[0] == "discussions" and len(rest) == 2 and rest[1].isdigit():
                if not 0 < int(rest[1]) <= len(repo.discussions):
                    raise HubError(404, None, "Discussion not found")
                return self._json(self._discussion(repo, repo.discussions[int(rest[1]) - 1], details=True))
        raise HubError(404, None, f"Not found: {'/'.join(rest)}")

    def _post(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        hub = self.hub
        with hub._lock:
            repo = hub._readable(repo_type, repo_id, self.token)
            create_pr = self.query.get("create_pr") == "1"
            if rest[0] == "preupload":
                commit = hub._snapshot(repo, "main" if create_pr else "/".join(rest[1:]) or "main")
                files = json.loads(self.body)["files"]
                return self._json({"commitOid": commit.sha, "files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                     "oid": _git_blob_sha(commit.files[f["path"]]) if f["path"] in commit.files else None}
                    for f in files]})
            if rest[0] == "commit":
                return self._json(self._apply_commit(repo, "/".join(rest[1:]) or "main", create_pr))
            if rest == ["discussions"]:
                user = hub._user(self.token)
                if user is None:
                    raise HubError(401, None, "You must be authenticated to open a discussion")
                payload = json.loads(self.body)
                d = hub._open_discussion(repo, payload["title"], payload.get("description", ""), user,
                                         bool(payload.get("pullRequest")), "draft" if payload.get("pullRequest") else "open")
                return self._json({"num": d.num, "pullRequest": d.is_pull_request})
        raise HubError(404, None, f"Not found: {'/'.join(rest)}")

    def _apply_commit(self, repo: _Repo, revision: str, create_pr: bool) -> dict[str, Any]:
        hub = self.hub
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        header = next(x["value"] for x in lines if x["key"] == "header")
        revision = revision.removeprefix("refs/heads/")
        parent = header.get("parentCommit")
        base = hub._snapshot(repo, parent if create_pr and parent else revision)
        if parent and not base.sha.startswith(parent):
            raise HubError(412, None, "A commit has happened since. Please refresh and try again.")
        ref = revision if revision in repo.refs else None
        if ref is None and not create_pr:
            raise HubError(400, None, f"Can only commit to a branch, not to {revision}")
        user = hub._writer(repo, self.token, create_pr or ref.startswith("refs/pr/"))
        added: dict[str, bytes] = {}
        deleted: list[str] = []
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "file":
                raw = value["content"]
                added[value["path"]] = base64.b64decode(raw) if value.get("encoding") == "base64" else raw.encode()
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
            elif key != "header":
                raise HubError(400, None, f"Unsupported commit operation: {key}")
        pr = None
        if create_pr:
            pr = hub._open_discussion(repo, header["summary"], header.get("description", ""), user, True, "open")
            repo.refs[pr.ref] = base.sha
            ref = pr.ref
        sha = hub._commit(repo, ref, repo.refs[ref], added, tuple(deleted), header["summary"],
                          header.get("description", ""), user)
        if pr is None and ref.startswith("refs/pr/"):
            pr = repo.discussions[int(ref.rsplit("/", 1)[1]) - 1]
        if pr is not None:
            pr.events.append(_event("commit", user, {"subject": header["summary"], "oid": sha}))
        prefix = f"{hub.url}/{'' if repo.repo_type == 'model' else repo.repo_type + 's/'}{repo.repo_id}"
        return {"success": True, "commitOid": sha, "commitUrl": f"{prefix}/commit/{sha}",
                "pullRequestUrl": f"{prefix}/discussions/{pr.num}" if pr else None}

    # ------------------------------------------------------------------ payloads
    def _info(self, repo: _Repo, commit: Commit) -> dict[str, Any]:
        blobs = self.query.get("blobs", "").lower() in ("true", "1")
        siblings = []
        for path, data in sorted(commit.files.items()):
            sib: dict[str, Any] = {"rfilename": path}
            if blobs:
                entry = _entry(path, data)
                sib |= {"size": entry["size"], "blobId": entry["oid"]}
                if "lfs" in entry:
                    sib["lfs"] = {"sha256": entry["lfs"]["oid"], "size": len(data), "pointerSize": 134}
            siblings.append(sib)
        first = next(iter(repo.commits.values()))
        return {"_id": first.sha[:24], "id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": commit.sha,
                "lastModified": commit.date, "createdAt": first.date, "private": repo.private,
                "gated": "auto" if repo.gated else False, "disabled": False, "downloads": 0, "likes": 0,
                "tags": [], "siblings": siblings}

    def _refs(self, repo: _Repo) -> dict[str, Any]:
        branches = [{"name": r, "ref": f"refs/heads/{r}", "targetCommit": s}
                    for r, s in repo.refs.items() if not r.startswith("refs/")]
        out: dict[str, Any] = {"branches": branches, "tags": [], "converts": []}
        if self.query.get("include_prs"):
            out["pullRequests"] = [{"name": r, "ref": r, "targetCommit": s}
                                   for r, s in repo.refs.items() if r.startswith("refs/pr/")]
        return out

    def _history(self, repo: _Repo, sha: str | None) -> list[dict[str, Any]]:
        out = []
        while sha is not None:
            c = repo.commits[sha]
            out.append({"id": c.sha, "title": c.title, "message": c.description, "date": c.date,
                        "authors": [{"user": c.author}] if c.author else []})
            sha = c.parent
        return out

    def _discussion(self, repo: _Repo, d: Discussion, details: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "num": d.num, "title": d.title, "status": d.status, "createdAt": d.created_at,
            "author": {"name": d.author or "deleted"}, "isPullRequest": d.is_pull_request,
            "repo": {"name": repo.repo_id, "type": repo.repo_type}}
        if details:
            out |= {"events": d.events, "changes": {"base": "refs/heads/main"} if d.is_pull_request else {},
                    "filesWithConflicts": [], "diff": ""}
        return out
