"""Encode each distinct image once per encoder configuration, into the feature cache.

The images missing from the cache are split across the processes of an ``accelerate`` launch
(process r takes every world-th one); each process appends to its own cache shard, then all
processes re-read the cache. A run that is killed resumes from what reached the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from PIL import Image
from tqdm.auto import tqdm

from low_metric.core.errors import LowMetricError
from low_metric.scoring.cache import FeatureCache, cache_key


@dataclass(frozen=True)
class ImageJob:
    """One image to encode: its content hash, how to load it, and which preprocessing it gets."""

    content_hash: str
    load: Callable[[], Image.Image]
    square: bool  # True: an 840-frame square for correspondence; False: the encoder's native processor


@dataclass(frozen=True)
class EncodeStats:
    """How many images this run encoded (per process) and how many came from the cache."""

    encoded_per_process: list[int]
    from_cache: int

    @property
    def encoded(self) -> int:
        return sum(self.encoded_per_process)


def feature_key(encoder_protocol: dict, job: ImageJob) -> str:
    return cache_key(encoder_protocol, "square" if job.square else "native", job.content_hash)


def encode_into_cache(
    encoder,
    jobs: Sequence[ImageJob],
    cache: FeatureCache,
    accelerator: Accelerator,
    *,
    batch_size: int = 16,
) -> EncodeStats:
    """Make sure every job's tokens [h*w, D] are in the cache; each missing image is encoded once.
    ``encoder``: an Encoder, or a LazyEncoder, loaded only by a process that has images to encode."""
    if batch_size < 1:
        raise LowMetricError(f"batch size must be >= 1, got {batch_size}")
    unique = {feature_key(encoder.protocol, j): j for j in jobs}
    todo = [(k, j) for k, j in unique.items() if not cache.verify(k)]  # corrupt = missing
    accelerator.wait_for_everyone()  # every process has listed the cache before anyone writes
    mine = todo[accelerator.process_index :: accelerator.num_processes]
    if mine and hasattr(encoder, "load"):
        encoder = encoder.load()
    by_mode = [[(k, j) for k, j in mine if j.square == square] for square in (False, True)]
    batches = [part[s : s + batch_size] for part in by_mode for s in range(0, len(part), batch_size)]

    def prepare(batch: list[tuple[str, ImageJob]]):
        return encoder.preprocess([j.load() for _, j in batch], square=batch[0][1].square)

    # on an accelerator the next batch is decoded and preprocessed during this forward; on the CPU,
    # where the forward already takes every core, in turn (a thread beside it would slow it more)
    overlap = bool(batches) and encoder.device.type != "cpu"
    bar = tqdm(total=len(mine), unit="img", desc=f"encode {encoder.id}", disable=not accelerator.is_main_process or not mine)
    with bar, ThreadPoolExecutor(max_workers=1) as pool:  # the bar closed even when interrupted (before its message)
        pending = pool.submit(prepare, batches[0]) if overlap else None
        for i, batch in enumerate(batches):
            pixels = pending.result() if overlap else prepare(batch)
            if overlap and i + 1 < len(batches):
                pending = pool.submit(prepare, batches[i + 1])
            tokens = encoder.forward(pixels, normalize_parts=batch[0][1].square)
            check_tokens(tokens, encoder.id)
            cache.put([(k, t) for (k, _), t in zip(batch, tokens.float().cpu())])
            bar.update(len(batch))
    accelerator.wait_for_everyone()
    if accelerator.num_processes > 1:
        cache.refresh()  # the other processes' shards
    counts = gather_object([len(mine)])
    return EncodeStats([int(c) for c in counts], len(unique) - len(todo))


def check_tokens(tokens: torch.Tensor, encoder_id: str) -> None:
    """An encoder's output must be finite [B, T, D]."""
    if tokens.ndim != 3:
        raise LowMetricError(f"{encoder_id}: expected tokens [B, T, D], got shape {tuple(tokens.shape)}")
    if not torch.isfinite(tokens).all():
        raise LowMetricError(f"{encoder_id}: produced NaN or Inf features (try --dtype float32)")


def cached_tokens(encoder_protocol: dict, jobs: Sequence[ImageJob], cache: FeatureCache) -> torch.Tensor:
    """The cached tokens of the jobs, stacked [N, T, D]."""
    stacked = cache.get_stacked([feature_key(encoder_protocol, job) for job in jobs])
    if stacked is not None:
        return stacked
    out = []
    for job in jobs:
        tokens = cache.get(feature_key(encoder_protocol, job))
        if tokens is None:
            raise LowMetricError("feature cache lost an entry during the run (corrupt or deleted shard); run again to recompute it")
        out.append(tokens)
    return torch.stack(out)
