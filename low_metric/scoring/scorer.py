"""The scorer: runs encoders over the data and gives each its A and C scores with the full protocol.

Works in one process or under ``accelerate launch`` (the encoding is split across processes, the
math runs on the main process, which alone returns records). Features go through the
content-addressed :class:`~low_metric.scoring.cache.FeatureCache`, so a rerun encodes only what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from low_metric.core.alignment import a_score, ridge_a_score
from low_metric.core.checks import positive, whole_number
from low_metric.core.correspondence import ALPHAS, PckTable, match_image_pairs, pad_keypoints
from low_metric.core.errors import LowMetricError
from low_metric.core.frame import FRAME_SIZE
from low_metric.scoring.cache import STAT_MEMO, FeatureCache
from low_metric.scoring.features import ImageJob, cached_tokens, encode_into_cache
from low_metric.scoring.results import VERSION, environment, protocol_hash
from low_metric.sources.encoders import LazyEncoder
from low_metric.sources.images import ImageSet, load_image, pad_to_frame
from low_metric.sources.mini import load_mini
from low_metric.sources.paper import BenchmarkImages
from low_metric.sources.projector import load_projector
from low_metric.sources.spair import SpairPair, SpairSet, load_spair
from low_metric.sources.statmemo import StatMemo

DEFAULT_REFERENCES = ("openai/clip-vit-large-patch14", "openai/clip-vit-large-patch14-336")


def default_cache_dir() -> Path:
    base = os.environ.get("LOW_METRIC_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "low_metric"
    return Path(base) / "features"


@dataclass(frozen=True)
class ScoreConfig:
    """Everything that decides a score. Data defaults to the built-in mini benchmark."""

    spair: str | None = None  # SPair-71k root; None: the built-in mini benchmark
    split: str = "test"
    categories: tuple[str, ...] | None = None
    limit: int | None = None  # pairs per category
    images: str | None = None  # folder of images for A; None: the SPair images
    dataset: str | None = None  # a `datasets` id or path for A, instead of a folder
    dataset_split: str = "train"
    image_column: str = "image"
    count: int | None = None
    image_seed: int = 0
    benchmark_images: tuple[BenchmarkImages, ...] = ()  # one A image set per benchmark (the paper's protocol)
    preset: str | None = None  # "paper": the paper's protocol (set by ``paper_protocol``), recorded
    references: tuple[str, ...] = DEFAULT_REFERENCES
    mode: str = "ridge"  # or "projector"
    projectors: dict[str, str] = field(default_factory=dict)  # encoder id -> projector repo or file
    calibration: float = 0.5
    ridge: float = 1e-3
    ridge_seed: int = 0
    patch: int = 16  # P
    window: int = 5
    temperature: float = 0.02
    alphas: tuple[float, ...] = ALPHAS
    layer: int = -2
    resolution: int | None = None
    dtype: str = "float32"
    batch_size: int = 16
    alignment: bool = True
    correspondence: bool = True
    revision: str | None = None  # pins the scored encoders (not the references)
    trust_remote_code: bool = False
    allow_pickle: bool = False  # weights-only pickles, for the scored encoders and projectors
    cache_dir: str | None = None
    # diffusers pipelines among the scored encoders (SPEC.md section 1); other families ignore them
    timestep: int = 1
    block: int | str | None = None  # None: the first decoder / transformer block
    prompt: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        """Every setting checked before any data or model is loaded (one line naming it)."""
        if self.mode not in ("ridge", "projector"):
            raise LowMetricError(f"unknown A mode {self.mode!r}: use 'ridge' or 'projector'")
        if not (self.alignment or self.correspondence):
            raise LowMetricError("nothing to score: both alignment and correspondence are off")
        if self.alignment and not self.references:
            raise LowMetricError("the A score needs at least one reference encoder")
        whole_number(self.patch, "P (--patch)", 1, 1024)
        whole_number(self.window, "window (--window)", 0, 1024)
        whole_number(self.batch_size, "batch size (--batch-size)", 1, 1 << 16)
        whole_number(self.layer, "layer (--layer)", -1024, 1023)
        whole_number(self.image_seed, "image seed (--image-seed)", 0, 2**63 - 1)
        whole_number(self.ridge_seed, "ridge seed (--ridge-seed)", 0, 2**63 - 1)
        for name, value in (("limit (--limit)", self.limit), ("count (--count)", self.count),
                            ("resolution (--resolution)", self.resolution)):
            if value is not None:
                whole_number(value, name, 1, 1 << 30)
        positive(self.temperature, "temperature (--temperature)")
        positive(self.ridge, "ridge strength (--ridge)", allow_zero=True)
        if not (isinstance(self.calibration, (int, float)) and 0 < self.calibration < 1):
            raise LowMetricError(f"calibration fraction (--calibration-fraction) must be in (0, 1), got {self.calibration!r}")
        if not self.alphas:
            raise LowMetricError("alphas (--alpha): give at least one")
        for alpha in self.alphas:
            if not 0 < positive(alpha, "alpha (--alpha)") < 1:
                raise LowMetricError(f"alpha (--alpha) is a fraction of the box size in (0, 1), got {alpha!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise LowMetricError(f"bad dtype {self.dtype!r}: use float32, bfloat16 or float16")


@dataclass
class Data:
    """The loaded data of a run: the SPair-format pairs (for C) and the A image sets: one (key "")
    or one per benchmark."""

    spair: SpairSet | None
    image_sets: dict[str, ImageSet]
    protocol: dict[str, Any]


def _set_protocol(image_set: ImageSet) -> dict[str, Any]:
    return {"loaded": image_set.loaded, "skipped": len(image_set.skipped), "hash": image_set.set_hash}


def load_data(config: ScoreConfig) -> Data:
    """Load and hash the data once; the protocol records where it came from and its hashes."""
    per_benchmark = bool(config.benchmark_images)
    needs_spair = config.correspondence or (config.alignment and not (config.images or config.dataset or per_benchmark))
    spair = None
    protocol: dict[str, Any] = {}
    if needs_spair:
        if config.spair:
            spair = load_spair(config.spair, split=config.split, categories=config.categories, limit=config.limit)
        else:
            spair = load_mini(split=config.split, categories=config.categories, limit=config.limit)
        protocol["pairs"] = {
            "source": "spair" if config.spair else "built-in mini benchmark",
            "split": config.split,
            "categories": list(spair.categories),
            "limit": config.limit,
            "pairs": len(spair.pairs),
            "images": len(spair.images),
            "hash": spair.hash,
        }
    image_sets: dict[str, ImageSet] = {}
    if config.alignment and per_benchmark:
        for b in config.benchmark_images:
            image_sets[b.benchmark] = ImageSet.from_dataset(b.dataset, split=b.split, image_column=b.column,
                                                            config=b.config, first=b.count)
        protocol["benchmark_images"] = {b.benchmark: {**b.protocol(), **_set_protocol(image_sets[b.benchmark])}
                                        for b in config.benchmark_images}
    elif config.alignment:
        if config.dataset:
            image_set = ImageSet.from_dataset(config.dataset, split=config.dataset_split, image_column=config.image_column, count=config.count, seed=config.image_seed)
        elif config.images:
            image_set = ImageSet.from_folder(config.images, count=config.count, seed=config.image_seed)
        else:
            image_set = ImageSet.from_files(spair.images, count=config.count, seed=config.image_seed)
        image_sets[""] = image_set
        protocol["images"] = {
            "source": config.dataset or ("folder" if config.images else "the pairs' images"),
            "count": config.count,
            "seed": config.image_seed,
            **_set_protocol(image_set),
        }
    return Data(spair, image_sets, protocol)


def _alignment_jobs(image_set: ImageSet) -> list[ImageJob]:
    return [ImageJob(h, (lambda i=i: image_set.image(i)), square=False) for i, h in enumerate(image_set.hashes)]


def _pair_jobs(data: Data) -> dict[Path, ImageJob]:
    return {p: ImageJob(h, (lambda p=p: pad_to_frame(load_image(p))), square=True) for p, h in data.spair.image_hashes.items()}


class Scorer:
    """Scores encoders under one config; references and data are loaded once and reused."""

    def __init__(self, config: ScoreConfig, accelerator: Accelerator | None = None, token: str | None = None) -> None:
        self.config = config
        self.accelerator = accelerator or Accelerator()
        self.token = token
        self.cache = FeatureCache(config.cache_dir or default_cache_dir())
        self.memo = StatMemo(self.cache.root / STAT_MEMO)  # image and model-folder hashes across runs
        with self.memo.active():
            self.data = load_data(config)
        self._references: dict[str, tuple[tuple[int, int], dict]] | None = None
        self._reference_tokens: dict[str, dict[str, tuple[torch.Tensor, tuple[int, int]]]] = {}
        self._projectors: dict[tuple[str, int], torch.nn.Module] = {}
        self._encoders: dict[str, LazyEncoder] = {}

    def _lazy(self, name: str, **options: Any) -> LazyEncoder:
        """The encoder of ``name`` and options, described once per Scorer; weights load only to encode."""
        key = repr((name, sorted(options.items(), key=lambda kv: kv[0])))
        if key not in self._encoders:
            self._encoders[key] = LazyEncoder(name, **options)
        return self._encoders[key]

    def _load(self, name: str, *, scored: bool) -> LazyEncoder:
        """A scored encoder gets the run's layer, resolution, revision and diffusion options; a reference its defaults."""
        c = self.config
        return self._lazy(
            name,
            layer=c.layer if scored else -2,
            resolution=c.resolution if scored else None,
            revision=c.revision if scored else None,
            dtype=c.dtype,
            device=self.accelerator.device,
            trust_remote_code=c.trust_remote_code and scored,
            allow_pickle=c.allow_pickle and scored,
            token=self.token,
            **(dict(timestep=c.timestep, block=c.block, prompt=c.prompt, seed=c.seed) if scored else {}),
        )

    def _projected(self, name: str, tokens: torch.Tensor, encoder_id: str | None = None) -> tuple[torch.Tensor, str]:
        """Tokens through the projector given for ``name`` (as typed) or its resolved ``encoder_id``."""
        source = self.config.projectors.get(name) or self.config.projectors.get(encoder_id or name)
        if source is None:
            raise LowMetricError(f"projector mode: no projector given for {name} (--projector {name}=REPO)")
        if (source, tokens.shape[-1]) not in self._projectors:  # one load per projector, whatever the image sets
            self._projectors[source, tokens.shape[-1]] = load_projector(
                source, dim=tokens.shape[-1], token=self.token, allow_pickle=self.config.allow_pickle)
        projector = self._projectors[source, tokens.shape[-1]]
        with torch.inference_mode():
            return projector(tokens.float()), source

    def _alignment_jobs(self) -> dict[str, list[ImageJob]]:
        return {key: _alignment_jobs(image_set) for key, image_set in self.data.image_sets.items()}

    def references(self) -> dict[str, tuple[tuple[int, int], dict]]:
        """The reference encoders, run once over every A image set into the cache: id -> (grid, protocol)."""
        if self._references is None:
            every = [job for jobs in self._alignment_jobs().values() for job in jobs]
            refs = {}
            for ref_id in self.config.references:
                with self.memo.active():
                    encoder = self._load(ref_id, scored=False)
                    encode_into_cache(encoder, every, self.cache, self.accelerator, batch_size=self.config.batch_size)
                encoder.release()
                refs[ref_id] = (encoder.grid, encoder.protocol)
            self._references = refs
        return self._references

    def reference_tokens(self, key: str) -> dict[str, tuple[torch.Tensor, tuple[int, int]]]:
        """The references' tokens on one A image set (projected in projector mode): id -> (tokens, grid).

        With one image set they are kept for every scored encoder; per benchmark they are read back
        from the cache each time, so memory holds one set's (CLIP@336 projected: ~1 GB for 100
        images) rather than eight."""
        if key in self._reference_tokens:
            return self._reference_tokens[key]
        jobs = self._alignment_jobs()[key]
        out = {}
        for ref_id, (grid, protocol) in self.references().items():
            tokens = cached_tokens(protocol, jobs, self.cache)
            if self.config.mode == "projector":  # into the LLM's token space
                tokens = self._projected(ref_id, tokens)[0]
            out[ref_id] = (tokens, grid)
        if len(self.data.image_sets) == 1:
            self._reference_tokens[key] = out
        return out

    def protocol(self) -> dict[str, Any]:
        """What every encoder scored by this run shares: data, references, settings, version."""
        c = self.config
        protocol: dict[str, Any] = {"low_metric": VERSION, "data": self.data.protocol}
        if c.preset:
            protocol["preset"] = c.preset
        if c.alignment:
            protocol["alignment"] = {
                "mode": c.mode,
                "references": [p for _, p in self.references().values()],
                **({"calibration": c.calibration, "ridge": c.ridge, "seed": c.ridge_seed} if c.mode == "ridge" else {}),
                **({"reference_projectors": {r: c.projectors.get(r) for r in c.references}} if c.mode == "projector" else {}),
            }
        if c.correspondence:
            protocol["correspondence"] = {
                "frame": FRAME_SIZE,
                "P": c.patch,
                "matching": "window soft-argmax" if c.window else "nearest neighbour",
                "window": c.window,
                "temperature": c.temperature,
                "alphas": list(c.alphas),
                "threshold": "max side of the target bounding box",
                "aggregation": "per image (C) and per keypoint",
            }
        return protocol

    def score(self, name: str) -> dict[str, Any] | None:
        """One encoder's record (on the main process; None elsewhere)."""
        c = self.config
        with self.memo.active():
            encoder = self._load(name, scored=True)
        record: dict[str, Any] = {"encoder": name, "encoder_protocol": encoder.protocol}
        jobs: list[ImageJob] = []
        if c.alignment:
            jobs += [job for set_jobs in self._alignment_jobs().values() for job in set_jobs]
        pair_jobs = _pair_jobs(self.data) if c.correspondence else {}
        jobs += list(pair_jobs.values())
        with self.memo.active():
            stats = encode_into_cache(encoder, jobs, self.cache, self.accelerator, batch_size=c.batch_size)
        encoder.release()
        counts = {"encoded": stats.encoded, "encoded_per_process": stats.encoded_per_process, "from_cache": stats.from_cache}
        if c.alignment:
            self.references()
        protocol = self.protocol()
        if not self.accelerator.is_main_process:
            return None
        if c.alignment:
            record["A"] = self._alignment(name, encoder)
        if c.correspondence:
            record["C"] = self._correspondence(encoder, pair_jobs)
        record.update(protocol=protocol, protocol_hash=protocol_hash(protocol), counts=counts, **environment())
        record["result_hash"] = protocol_hash({"protocol": protocol, "encoder": encoder.protocol})
        return record

    def _alignment(self, name: str, encoder) -> dict[str, Any]:
        """A on the one image set, or per benchmark (then ``A`` is their mean and ``per_benchmark`` each)."""
        scores = {key: self._alignment_on(name, encoder, jobs, self.reference_tokens(key))
                  for key, jobs in self._alignment_jobs().items()}
        if "" in scores:
            return scores[""]
        per_benchmark = {b: {k: v for k, v in r.items() if k in ("A", "per_reference", "images", "calibration_images")}
                         for b, r in scores.items()}
        first = next(iter(scores.values()))
        return {"A": sum(r["A"] for r in per_benchmark.values()) / len(per_benchmark), "per_benchmark": per_benchmark,
                **{k: v for k, v in first.items() if k in ("mode", "projector")}}

    def _alignment_on(self, name: str, encoder, jobs: list[ImageJob],
                      references: dict[str, tuple[torch.Tensor, tuple[int, int]]]) -> dict[str, Any]:
        c = self.config
        target = cached_tokens(encoder.protocol, jobs, self.cache)
        if c.mode == "ridge":
            result = ridge_a_score(
                target, encoder.grid, references,
                calibration=c.calibration, strength=c.ridge, seed=c.ridge_seed, device=self.accelerator.device,
            )
            return {"A": result.a, "per_reference": result.per_reference, "mode": "ridge", "images": len(result.held_out), "calibration_images": len(result.calibration)}
        projected, source = self._projected(name, target, encoder.id)
        per_ref = {r: a_score(projected, t, device=self.accelerator.device) for r, (t, _) in references.items()}
        return {"A": sum(per_ref.values()) / len(per_ref), "per_reference": per_ref, "mode": "projector", "projector": source, "images": len(jobs)}

    def _correspondence(self, encoder, pair_jobs: dict[Path, ImageJob]) -> dict[str, Any]:
        c = self.config
        return correspondence_table(
            self.data.spair.pairs, lambda paths: cached_tokens(encoder.protocol, [pair_jobs[p] for p in paths], self.cache),
            encoder.grid, patch=c.patch, window=c.window, temperature=c.temperature, alphas=c.alphas,
            device=self.accelerator.device)


def correspondence_table(pairs: Sequence[SpairPair], tokens_of: Callable[[list[Path]], torch.Tensor],
                         grid: tuple[int, int], *, patch: int, window: int, temperature: float,
                         alphas: Sequence[float], device: torch.device | str) -> dict[str, Any]:
    """C of the pairs (SPEC 3), one category at a time: its images' tokens (``tokens_of`` their
    paths) go to ``device`` and every target image meets the keypoints of all its pairs in one
    product (:func:`match_image_pairs`; a few target images at a time on the CPU, where small
    blocks stay in cache, many on an accelerator)."""
    budget = 16 * 2**20 if torch.device(device).type == "cpu" else 512 * 2**20
    table = PckTable(alphas=alphas)
    by_category: dict[str, list[SpairPair]] = {}
    for pair in pairs:
        by_category.setdefault(pair.category, []).append(pair)
    for category, group in by_category.items():
        paths = sorted({p.src_path for p in group} | {p.trg_path for p in group})
        index = {path: i for i, path in enumerate(paths)}
        pred = match_image_pairs(tokens_of(paths).to(device), grid, [index[p.src_path] for p in group],
                                 [index[p.trg_path] for p in group], pad_keypoints([p.src_kps_frame for p in group]),
                                 size=patch, window=window, temperature=temperature, budget_bytes=budget)
        table.add_batch([category] * len(group), pred, pad_keypoints([p.trg_kps_frame for p in group]),
                        [p.threshold for p in group])
    return table.summary()


def score_encoders(names: list[str], config: ScoreConfig, accelerator: Accelerator | None = None, token: str | None = None) -> list[dict[str, Any]]:
    """Score several encoders under one config; returns the records on the main process ([] elsewhere)."""
    if not names:
        raise LowMetricError("no encoder to score")
    scorer = Scorer(config, accelerator, token)
    records = [scorer.score(n) for n in names]
    return [r for r in records if r is not None]

