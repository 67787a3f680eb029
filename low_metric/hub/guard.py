"""The guard: whether a Hub repo may be loaded, decided before anything large is downloaded.

Used by the Space for every visitor's request and by ``low-metric score --max-model-gb``. It reads
the repo's listing (with file sizes) and, at most, its ``config.json``: a gated or private repo, a
repo whose config asks for remote code (``auto_map``), pickle-only weights and weights above a size
limit are refused with one line each.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
from pathlib import Path
from typing import Any

from low_metric.core.errors import LowMetricError, Refused, RuntimeFailure
from low_metric.sources.hub import FILES, HubFailure, hub_failures
from low_metric.sources.names import EncoderRef, parse_encoder_id

GB = 1024**3
MAX_CONFIG_BYTES = 1024**2
_REVISION = re.compile(r"[\w.-]+(?:/[\w.-]+)*")


def public_encoder(text: str | None, *, max_name: int = 200, max_parts: int = 2) -> list[EncoderRef]:
    """The Hub repos ``text`` names, for a public service: ``org/name[@revision]`` parts (library
    prefixes allowed), at most ``max_parts`` of them; local paths, URLs and bare architectures refused."""
    text = (text or "").strip()
    if not text:
        raise Refused("enter a Hub model id, e.g. facebook/dinov2-large")
    if len(text) > max_name:
        raise Refused(f"an encoder id is at most {max_name} characters")
    if text.count("+") >= max_parts:
        raise Refused(f"at most {max_parts} encoders can be concatenated")
    try:
        refs = parse_encoder_id(text)
    except Refused:
        raise
    except LowMetricError as exc:
        raise Refused(str(exc)) from None
    for ref in refs:
        if ref.revision and (not _REVISION.fullmatch(ref.revision) or ".." in ref.revision):
            raise Refused(f"'{ref.revision}' is not a valid revision")
        if Path(ref.target).exists():
            raise Refused(f"'{ref.target}' names a local path: this service scores Hub repos only")
        if ref.repo_id is None or ref.target.count("/") != 1:
            raise Refused(f"'{ref.name}' is not a Hub model id: use org/name (no local paths, URLs or bare "
                          "architectures)")
    return refs


def _hub_refusals(ref: EncoderRef) -> contextlib.AbstractContextManager[None]:
    """The Hub's answers about ``ref`` as one-line refusals."""

    def describe(f: HubFailure) -> LowMetricError:
        if f.kind in ("offline", "timeout", "unreachable"):
            return RuntimeFailure(f"the Hub is unreachable (checking '{ref.target}'): try again later")
        if f.kind in ("gated", "missing"):
            return Refused(f"'{ref.target}' is not a public model repo on the Hub (or not readable with this token)")
        if f.kind == "revision":
            return Refused(f"revision '{ref.revision}' not found in '{ref.target}'")
        return Refused(f"the Hub refused '{ref.target}' (HTTP {f.status if f.status is not None else '?'})")

    return hub_failures(describe)


def repo_weight_bytes(ref: EncoderRef, *, token: str | bool | None = False, api: Any = None,
                      trust_remote_code: bool = False) -> int:
    """Bytes of safetensors weights the scorer would fetch for ``ref``; refuses gated repos, remote
    code (unless trusted) and pickle-only weights. Only the listing and config.json are downloaded."""
    from huggingface_hub import HfApi, hf_hub_download

    api = api or HfApi()
    repo_id = ref.target
    with _hub_refusals(ref):
        info = api.model_info(repo_id, revision=ref.revision, files_metadata=True, token=token)
        if info.gated and token is False:
            raise Refused(f"'{repo_id}' is gated: this service scores public models only")
        sizes = {s.rfilename: s.size or 0 for s in info.siblings or ()}
        if "config.json" in sizes and not trust_remote_code:
            if sizes["config.json"] > MAX_CONFIG_BYTES:
                raise Refused(f"'{repo_id}': its config.json is over 1 MB")
            config = Path(hf_hub_download(repo_id, "config.json", revision=info.sha, token=token))
            if _asks_remote_code(repo_id, config):
                raise Refused(f"'{repo_id}' needs trust_remote_code (its own Python code): pass "
                              "--trust-remote-code if you trust it (never on a public service)")
    return _safetensors_bytes(repo_id, sizes)


def _asks_remote_code(repo_id: str, config: Path) -> bool:
    """Whether a config.json asks transformers to run the repo's own code (``auto_map``)."""
    try:
        data = json.loads(config.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Refused(f"'{repo_id}': its config.json is not valid JSON") from None
    return isinstance(data, dict) and "auto_map" in data


def _matching(files: dict[str, int], patterns: list[str]) -> list[str]:
    return [f for f in files if any(fnmatch.fnmatch(f, p) for p in patterns if not p.endswith(".json"))]


def _safetensors_bytes(repo_id: str, sizes: dict[str, int]) -> int:
    """The largest set of safetensors weights one library loads; pickle-only repos are refused."""
    safe = [_matching(sizes, patterns) for _, patterns, _ in FILES.values()]
    if not any(safe) and any(_matching(sizes, pickled) for _, _, pickled in FILES.values()):
        raise Refused(f"'{repo_id}' has only pickled weights (.bin): only safetensors are loaded here")
    return max(sum(sizes[f] for f in files) for files in safe)


def check_weights(refs: list[EncoderRef], max_gb: float, *, token: str | bool | None = False, api: Any = None,
                  trust_remote_code: bool = False, limit: str = "the limit is {max_gb:g} GB") -> int:
    """Refuse an encoder whose Hub weights (all parts together) exceed ``max_gb`` (``limit`` words the
    refusal's second half); local folders count their safetensors files. Returns the total in bytes."""
    from low_metric.sources.encoders import on_hub

    total = 0
    for ref in map(on_hub, refs):
        if ref.local:
            total += sum(p.stat().st_size for p in Path(ref.target).rglob("*.safetensors"))
        else:
            total += repo_weight_bytes(ref, token=token, api=api, trust_remote_code=trust_remote_code)
    if total > max_gb * GB:
        raise Refused(f"the encoder's weights take {total / GB:.2f} GB: {limit.format(max_gb=max_gb)}")
    return total


def check_image_count(spair: str | None, limit: int | None, max_images: int) -> int:
    """Refuse a request that would encode more distinct images than ``max_images`` (counted from the
    annotations of SPair-71k at ``spair``, or of the built-in mini benchmark); returns the count."""
    from low_metric.sources.mini import load_mini
    from low_metric.sources.spair import load_spair

    pairs = load_spair(spair, limit=limit) if spair else load_mini(limit=limit)
    if len(pairs.images) > max_images:
        raise Refused(f"this request would encode {len(pairs.images)} images: the limit is {max_images} "
                      "(choose fewer pairs per category)")
    return len(pairs.images)
