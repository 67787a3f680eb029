"""Scoring for a long-running service (the Space): one Scorer kept while requests repeat its config,
reference encoders loaded once for the process's life, each request under a time limit, a failed
request leaving nothing half-written behind.

On ZeroGPU the GPU is lent per call, in a worker forked from the main process, for a duration asked
in advance and counted against the visitor's daily quota. So everything that needs no GPU happens
before the call, in the main process: the data and the reference encoders are loaded at start-up
(:func:`warm_up`; the forked worker inherits them), the visitor's repo is downloaded and pinned to
its commit (:func:`prepare_request`), and the duration is computed from the work (:func:`gpu_seconds`).
After the call, the visitor's repo leaves the Hugging Face cache (:meth:`Request.release`); the
references stay.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import torch

from low_metric.core.errors import Refused
from low_metric.scoring.features import ImageJob, feature_key
from low_metric.scoring.scorer import ScoreConfig, Scorer
from low_metric.scoring.timelimit import call_with_time_limit
from low_metric.sources.encoders import on_hub
from low_metric.sources.hub import evict, resolve
from low_metric.sources.names import EncoderRef

GB = 1024**3
# GPU seconds of one request, generous for a ZeroGPU H200 slice: the worker's start (fork, CUDA,
# moving the preloaded references), reading safetensors onto the GPU, and each image encoded
# (decoding, preprocessing and the forward pass; the matching and the ridge fit are small).
START_SECONDS = 20.0
SECONDS_PER_GB = 10.0
SECONDS_PER_IMAGE = 0.15
MARGIN_SECONDS = 10.0  # the request's own time limit fires this much before ZeroGPU's, so its message shows

_SCORERS: dict[str, Scorer] = {}
_REFERENCES: dict[tuple[str, str, str], Any] = {}  # (id, dtype, device) -> a loaded reference encoder


def _one_thread_after_fork() -> None:
    """A process forked from a service (ZeroGPU's GPU worker) computes on one CPU thread: the OpenMP
    thread pool torch used before the fork does not survive it, and the worker's first parallel op hangs."""
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_one_thread_after_fork)


class ServiceScorer(Scorer):
    """A Scorer whose reference encoders stay loaded between requests and configs."""

    def _load(self, name: str, *, scored: bool) -> Any:
        if scored:
            return super()._load(name, scored=True)
        key = (name, self.config.dtype, str(self.accelerator.device))
        if key not in _REFERENCES:
            reference = super()._load(name, scored=False)
            reference.keep = True  # loaded once, before any request, and kept between requests
            reference.load()
            _REFERENCES[key] = reference
        return _REFERENCES[key]

    def reference_encoders(self) -> list[Any]:
        """The config's reference encoders, loaded now if they are not yet (none when A is off)."""
        return [self._load(ref, scored=False) for ref in self.config.references] if self.config.alignment else []

    def references_cached(self) -> bool:
        """Whether every reference's tokens on the A images are already in the feature cache (which a
        forked worker may have filled: it is read again)."""
        self.cache.refresh()
        hashes = {h for images in self.data.image_sets.values() for h in images.hashes} if self.config.alignment else ()
        return all(feature_key(enc.protocol, ImageJob(h, lambda: None, square=False)) in self.cache
                   for enc in self.reference_encoders() for h in hashes)


def scorer_for(config: ScoreConfig) -> ServiceScorer:
    """The Scorer of ``config`` (data and reference tokens load once). It reads public repos only:
    ``token=False`` never sends the host's own token."""
    key = repr(config)
    if key not in _SCORERS:
        _SCORERS.clear()
        _SCORERS[key] = ServiceScorer(config, token=False)
    return _SCORERS[key]


def warm_up(config: ScoreConfig) -> ServiceScorer:
    """A service's start-up: load ``config``'s data and reference encoders before the first request."""
    scorer = scorer_for(config)
    scorer.reference_encoders()
    return scorer


def gpu_seconds(config: ScoreConfig, weight_bytes: int, parts: int = 1) -> int:
    """The GPU time one request needs: start, weights, and every image each encoder part encodes
    (the references' too, until their tokens are cached)."""
    scorer = scorer_for(config)
    a_images = len({h for images in scorer.data.image_sets.values() for h in images.hashes}) if config.alignment else 0
    c_images = len(scorer.data.spair.images) if config.correspondence else 0
    references = 0 if scorer.references_cached() else a_images * len(config.references)
    images = (a_images + c_images) * parts + references
    return math.ceil(START_SECONDS + SECONDS_PER_GB * weight_bytes / GB + SECONDS_PER_IMAGE * images)


@dataclass(frozen=True)
class Request:
    """One visitor's encoder, downloaded and pinned: what the scoring call gets, and its limits."""

    asked: str  # the id as the visitor gave it
    name: str  # the same, each part pinned to the commit downloaded
    repos: tuple[str, ...]  # its Hub repos (evicted from the Hub cache after scoring)
    keep: tuple[str, ...]  # repos never evicted: the references
    limit: float  # the scoring's own time limit (seconds)
    duration: float  # the GPU time asked for (ZeroGPU), a margin above the limit

    def release(self) -> int:
        """Evict the visitor's repos from the Hugging Face cache (never the references)."""
        return evict(self.repos, keep=self.keep)


def prepare_request(refs: list[EncoderRef], config: ScoreConfig, *, weight_bytes: int, zero_gpu: bool,
                    max_seconds: float, max_gpu_seconds: float) -> Request:
    """Decide the limits (on ZeroGPU the work's :func:`gpu_seconds`, refused above ``max_gpu_seconds``;
    elsewhere ``max_seconds``), then download the visitor's repos, before any GPU time."""
    limit = float(max_seconds)
    if zero_gpu:
        limit = float(gpu_seconds(config, weight_bytes, len(refs)))
        if limit + MARGIN_SECONDS > max_gpu_seconds:
            raise Refused(f"this request needs about {limit + MARGIN_SECONDS:.0f} s of GPU time: the limit is "
                          f"{max_gpu_seconds:g} s (choose fewer pairs per category)")
    pinned: list[EncoderRef] = []
    try:
        for ref in map(on_hub, refs):
            _, commit, _ = resolve(ref, token=False, allow_pickle=False, trust_remote_code=False)
            pinned.append(replace(ref, revision=commit))
    except BaseException:
        evict([r.target for r in pinned], keep=config.references)  # a part that failed: the others go too
        raise
    return Request("+".join(r.name for r in refs), "+".join(r.name for r in pinned),
                   tuple(r.target for r in pinned), tuple(config.references), limit, limit + MARGIN_SECONDS)


def score_within(name: str, config: ScoreConfig, seconds: float, *, whose: str = "the") -> dict[str, Any]:
    """One encoder's record, or a :class:`Refused` once scoring has run ``seconds`` (the feature cache is
    read again first: earlier workers forked from this process may have added to it)."""
    def score() -> dict[str, Any]:
        scorer = scorer_for(config)
        scorer.cache.refresh()
        return scorer.score(name)

    try:
        return call_with_time_limit(seconds, score, whose=whose)
    except BaseException:
        _SCORERS.clear()  # a failed or interrupted run may leave its Scorer half-written: the next starts afresh
        raise
