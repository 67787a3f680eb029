"""Vision encoders by name: one entry point, :func:`load_encoder`, in the style of open_clip's factory.

Names
-----
- ``org/name``: a Hub model repo. The library is read from the repo's files: a transformers
  ``config.json`` (with ``model_type``) -> transformers; a timm ``config.json`` (with
  ``architecture``) -> timm; else ``open_clip_config.json`` -> open_clip.
- ``hf-hub:org/name``: the timm / open_clip habit; open_clip when the repo holds
  ``open_clip_config.json``, otherwise as above.
- ``transformers:org/name``, ``timm:org/name``, ``open_clip:org/name`` (``hf-hub:`` may follow
  the prefix): force the library.
- ``timm:<architecture>[.<tag>]``: a timm architecture with its default pretrained weights, from
  the Hub repo timm's pretrained config names (e.g. ``timm/vit_small_patch14_dinov2.lvd142m``).
- a local folder: detected as above; its ``revision`` is ``sha256:`` + a hash of its files.
- ``name@revision`` pins one repo (same as ``revision=``); ``X+Y`` concatenates encoders
  (SPEC.md section 1), e.g. ``openai/clip-vit-large-patch14@<sha>+facebook/dinov2-base``.

A Hub repo is listed at the asked revision, the files its library needs are fetched with
huggingface_hub (configs and safetensors weights; pickles only with ``allow_pickle=True``) and
loaded from that snapshot by the library's own loader; the snapshot's commit hash is recorded as
``revision``. With ``HF_HUB_OFFLINE=1`` the cached snapshot is used. Tokens are passed on to
huggingface_hub, never kept. transformers, timm and open_clip are imported on first use (they
take seconds to import).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import inspect
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn
from torchvision.transforms.functional import normalize, to_tensor

from low_metric.errors import LowMetricError, network_failure
from low_metric.sources.projector import load_projector

LIBRARIES = ("transformers", "timm", "open_clip")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
OPEN_CLIP_CONFIG = "open_clip_config.json"
# (configs, safetensors weights, pickled weights) fetched per library
FILES = {
    "transformers": (["config.json", "preprocessor_config.json", "processor_config.json"],
                     ["model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json"],
                     ["pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json"]),
    "timm": (["config.json"], ["model.safetensors"], ["pytorch_model.bin"]),
    "open_clip": ([OPEN_CLIP_CONFIG], ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors"],
                  ["open_clip_pytorch_model.bin"]),
}
Batch = torch.Tensor | tuple[torch.Tensor, ...]


# ---------------------------------------------------------------------------------------- Encoder
class Encoder:
    """A vision encoder that turns images into an h x w grid of D-dim tokens.

    Attributes: ``id``, ``revision`` (commit hash), ``library``, ``image_size`` (H, W input),
    ``grid`` (h, w), ``dim``, ``protocol`` (JSON-able), ``images_encoded`` (forward counter),
    ``model`` (the torch module), ``device``.
    """

    def __init__(self, *, id: str, revision: str, library: str, model: nn.Module,
                 native: Callable[[list[Image.Image]], torch.Tensor], grid: Callable[[torch.Tensor], torch.Tensor],
                 mean: Sequence[float], std: Sequence[float], interpolation: str, dtype: str, device: str,
                 native_summary: dict[str, Any], **settings: Any):
        self.id, self.revision, self.library = id, revision, library
        self.model = model.eval().to(device=device, dtype=DTYPES[dtype])
        self.device = torch.device(device)
        self.dtype = DTYPES[dtype]
        self._native, self._grid = native, grid
        self.mean, self.std, self.interpolation = tuple(mean), tuple(std), interpolation
        self.images_encoded = 0
        self.image_size: tuple[int, int] = tuple(self._native([Image.new("RGB", (256, 256))]).shape[-2:])
        with torch.inference_mode():
            probe = self._features(torch.zeros(1, 3, *self.image_size))
        self.grid: tuple[int, int] = tuple(probe.shape[-2:])
        self.dim: int = probe.shape[1]
        self.protocol = _jsonable({
            "id": id, "revision": revision, "library": library, **settings, "dtype": dtype,
            "image_size": self.image_size, "grid": self.grid, "dim": self.dim,
            "preprocessing": {"native": native_summary, "square": {
                "resize": "fit inside image_size, zero-pad centred (no crop, no stretch)",
                "interpolation": interpolation, "mean": self.mean, "std": self.std}}})

    def preprocess(self, images: Sequence[Image.Image], *, square: bool = False) -> Batch:
        """A batch for :meth:`forward`: the library's own preprocessing, or (``square=True``, for
        the padded 840 frame) a resize to ``image_size`` without crop or stretch, then normalisation."""
        images = [im.convert("RGB") for im in images]
        if not square:
            return self._native(images)
        height, width = self.image_size
        resample = Image.Resampling[self.interpolation.upper()]
        return torch.stack([normalize(to_tensor(ImageOps.pad(im, (width, height), method=resample, color=0)),
                                      self.mean, self.std) for im in images])

    def forward(self, batch: Batch, *, normalize_parts: bool = False) -> torch.Tensor:
        """Tokens [B, h*w, D] in float32 (``normalize_parts`` only matters for concatenations)."""
        with torch.inference_mode():
            tokens = self._features(batch, normalize_parts=normalize_parts).flatten(2).transpose(1, 2).float()
        self.images_encoded += tokens.shape[0]
        return tokens.clone()  # an ordinary tensor, usable outside inference mode

    def encode(self, images: Sequence[Image.Image], *, square: bool = False) -> torch.Tensor:
        return self.forward(self.preprocess(images, square=square))

    def to(self, device: str | torch.device) -> Encoder:
        device = torch.device(device)
        _check_dtype_device(self.dtype, device)
        self.model.to(device)
        self.device = device
        return self

    def load_projector(self, source: str | Path, *, revision: str | None = None, token: str | None = None,
                       allow_pickle: bool = False) -> nn.Module:
        """This encoder's LLaVA stage-1 projector ([.., dim] -> [.., 4096]), on its device."""
        return load_projector(source, dim=self.dim, revision=revision, token=token,
                              allow_pickle=allow_pickle).to(self.device)

    def _features(self, batch: Batch, normalize_parts: bool = False) -> torch.Tensor:
        """Feature grid [B, D, h, w] of a preprocessed batch."""
        return self._grid(batch.to(self.device, self.dtype))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id}@{self.revision[:12]}, grid={self.grid}, dim={self.dim})"


class ConcatEncoder(Encoder):
    """``X+Y``: each part's grid resampled bilinearly onto the largest grid, tokens concatenated on
    channels; with ``normalize_parts=True`` each part is L2-normalised first (for correspondence)."""

    def __init__(self, parts: Sequence[Encoder]):
        self.parts = list(parts)
        self.id = "+".join(p.id for p in parts)
        self.revision = "+".join(p.revision for p in parts)
        self.library = "concat"
        target = max(parts, key=lambda p: p.grid[0] * p.grid[1])
        self.image_size, self.grid = target.image_size, target.grid
        self.dim = sum(p.dim for p in parts)
        self.images_encoded = 0
        self.protocol = {"id": self.id, "revision": self.revision, "library": self.library, "grid": list(self.grid),
                         "dim": self.dim, "image_size": list(self.image_size), "resample": "bilinear",
                         "parts": [p.protocol for p in parts]}

    @property
    def device(self) -> torch.device:
        return self.parts[0].device

    def preprocess(self, images: Sequence[Image.Image], *, square: bool = False) -> tuple[torch.Tensor, ...]:
        return tuple(p.preprocess(images, square=square) for p in self.parts)

    def to(self, device: str | torch.device) -> ConcatEncoder:
        for part in self.parts:
            part.to(device)
        return self

    def _features(self, batch: Batch, normalize_parts: bool = False) -> torch.Tensor:
        grids = []
        for part, pixels in zip(self.parts, batch, strict=True):
            grid = part._features(pixels).float().to(self.device)
            if tuple(grid.shape[-2:]) != self.grid:
                grid = F.interpolate(grid, size=self.grid, mode="bilinear", align_corners=False)
            grids.append(F.normalize(grid, dim=1) if normalize_parts else grid)
        return torch.cat(grids, dim=1)


# ---------------------------------------------------------------------------------------- factory
def load_encoder(name: str, *, layer: int = -2, resolution: int | tuple[int, int] | None = None,
                 dtype: str = "float32", revision: str | None = None, device: str = "cpu",
                 trust_remote_code: bool = False, token: str | None = None, feature: int | str | None = None,
                 allow_pickle: bool = False) -> Encoder:
    """Load a vision encoder by name (see the module docstring for the naming scheme).

    Args:
        layer: hidden-state index of ViT-like encoders (-2: LLaVA's select layer); prefix tokens
            (CLS, registers) are dropped. For transformers it indexes ``hidden_states``
            (embeddings included), for timm / open_clip the blocks.
        resolution: input size (int or (H, W)) instead of the processor's own.
        dtype: ``float32``, ``bfloat16`` or ``float16`` (GPU only).
        revision: branch, tag or commit of a single Hub repo; the resolved commit is recorded.
        feature: for CNNs, which feature map (index into timm's ``feature_info`` or module name);
            default the last one of stride 14-16.
        allow_pickle: accept repos whose weights exist only as pickles (loaded weights-only).
    """
    if dtype not in DTYPES:
        raise LowMetricError(f"bad dtype '{dtype}': use one of {', '.join(DTYPES)}")
    _check_dtype_device(DTYPES[dtype], torch.device(device))
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise LowMetricError(f"layer must be an int, got {layer!r}")
    names = name.split("+")
    if len(names) > 1 and revision is not None:
        raise LowMetricError("give each part of a concatenation its revision as name@revision, not revision=")
    options = dict(layer=layer, resolution=_size(resolution), dtype=dtype, device=device,
                   trust_remote_code=trust_remote_code, token=token, feature=feature, allow_pickle=allow_pickle)
    parts = [_load_one(part.strip(), revision=revision, **options) for part in names]
    return parts[0] if len(parts) == 1 else ConcatEncoder(parts)


def _load_one(name: str, *, revision: str | None, token: str | None, allow_pickle: bool,
              trust_remote_code: bool, **options: Any) -> Encoder:
    library, hf_hub, target = _split_name(name)
    if "@" in target:
        target, revision = target.split("@", 1)
    local = Path(target).is_dir()
    if library == "timm" and "/" not in target and not local:
        target = _timm_hub_id(target)
    if local and revision is not None:
        raise LowMetricError(f"revision applies to Hub repos, not to the local folder {target}")
    if local or _offline():
        folder = Path(target) if local else _cached_snapshot(target, revision)
        commit = _content_hash(folder) if local else folder.name
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        library = library or _detect(files, hf_hub, lambda f: folder / f, target)
        _select_files(library, files, allow_pickle, target)
    else:
        folder, commit, library = _snapshot(target, revision, token, library, hf_hub, allow_pickle, trust_remote_code)
    loader = {"transformers": _transformers_encoder, "timm": _timm_encoder, "open_clip": _open_clip_encoder}[library]
    return loader(target, commit, folder, trust_remote_code=trust_remote_code, **options)


def _split_name(name: str) -> tuple[str | None, bool, str]:
    library = None
    prefix, sep, rest = name.partition(":")
    if sep and prefix in LIBRARIES:
        library, name = prefix, rest
    hf_hub = name.startswith("hf-hub:")
    name = name.removeprefix("hf-hub:")
    if ":" in name and not Path(name).exists():
        raise LowMetricError(f"unknown library prefix '{name.split(':')[0]}:' in '{name}': use one of "
                             f"{', '.join(p + ':' for p in LIBRARIES)} or hf-hub:")
    return library, hf_hub, name


def _timm_hub_id(architecture: str) -> str:
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(architecture)
    except RuntimeError as e:  # a known architecture with an unknown tag
        raise LowMetricError(f"timm: {e}") from None
    if cfg is None or not cfg.hf_hub_id:
        raise LowMetricError(f"timm has no Hub weights for '{architecture}'")
    return cfg.hf_hub_id


@contextlib.contextmanager
def hub_errors(repo_id: str, revision: str | None) -> Iterator[None]:
    """Turn huggingface_hub's errors for ``repo_id`` into one-line LowMetricErrors (no token in them)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    try:
        yield
    except GatedRepoError:
        raise LowMetricError(f"'{repo_id}' is a gated repo: request access on the Hub, then pass token= "
                             "(or log in) with a token that has it") from None
    except RepositoryNotFoundError:
        raise LowMetricError(f"repo '{repo_id}' not found on the Hub (or private: pass a token that can read it)") from None
    except RevisionNotFoundError:
        raise LowMetricError(f"revision '{revision}' not found in '{repo_id}'") from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        hint = ": check the token" if status in (401, 403) else ""
        raise LowMetricError(f"the Hub refused '{repo_id}' (HTTP {status}){hint}") from None
    except LocalEntryNotFoundError:
        raise LowMetricError(f"'{repo_id}' is not in the local cache and the Hub is unreachable (offline)") from None
    except Exception as e:
        failure = network_failure(e)
        if failure is None:
            raise
        detail = "did not answer in time" if failure == "timeout" else "is unreachable"
        raise LowMetricError(f"the Hub at {constants.ENDPOINT} {detail} (loading '{repo_id}')") from None


def _snapshot(repo_id: str, revision: str | None, token: str | None, library: str | None, hf_hub: bool,
              allow_pickle: bool, trust_remote_code: bool) -> tuple[Path, str, str]:
    """List the repo at ``revision``, detect the library, fetch the needed files; returns (folder, commit, library)."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    with hub_errors(repo_id, revision):
        info = HfApi().model_info(repo_id, revision=revision, token=token)
        files = [s.rfilename for s in info.siblings or ()]

        def fetch(filename: str) -> Path:
            return Path(hf_hub_download(repo_id, filename, revision=info.sha, token=token))

        library = library or _detect(files, hf_hub, fetch, repo_id)
        patterns = _select_files(library, files, allow_pickle, repo_id) + (["*.py"] if trust_remote_code else [])
        # by the name asked for, so the cache records the branch (for HF_HUB_OFFLINE) too
        folder = Path(snapshot_download(repo_id, revision=revision, token=token, allow_patterns=patterns))
    return folder, folder.name, library  # a snapshot folder is named after its commit


def _offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def _cached_snapshot(repo_id: str, revision: str | None) -> Path:
    """The cached snapshot of ``repo_id`` at ``revision`` (HF_HUB_OFFLINE=1); its folder name is the commit."""
    from huggingface_hub import scan_cache_dir

    revision = revision or "main"
    for repo in scan_cache_dir().repos:
        if repo.repo_id == repo_id and repo.repo_type == "model":
            for cached in repo.revisions:
                if revision in cached.refs or cached.commit_hash.startswith(revision):
                    return cached.snapshot_path
    raise LowMetricError(f"'{repo_id}' at '{revision}' is not in the local Hub cache and HF_HUB_OFFLINE is set")


def _detect(files: Sequence[str], hf_hub: bool, fetch: Callable[[str], Path], name: str) -> str:
    if hf_hub and OPEN_CLIP_CONFIG in files:
        return "open_clip"
    if "config.json" in files:
        config = json.loads(fetch("config.json").read_text())
        if "architecture" in config:
            return "timm"
        if "model_type" in config or "architectures" in config:
            return "transformers"
    if OPEN_CLIP_CONFIG in files:
        return "open_clip"
    raise LowMetricError(f"'{name}' holds no model config (transformers/timm config.json or {OPEN_CLIP_CONFIG})")


def _select_files(library: str, files: Sequence[str], allow_pickle: bool, name: str) -> list[str]:
    """Patterns of the files to fetch: configs and safetensors weights, pickles only if allowed."""
    configs, safe, pickled = FILES[library]

    def weights(patterns: list[str]) -> bool:
        return any(fnmatch.fnmatch(f, p) for f in files for p in patterns if not p.endswith(".json"))

    if weights(safe):
        return configs + safe
    if weights(pickled) and allow_pickle:
        return configs + pickled
    if weights(pickled):
        raise LowMetricError(f"'{name}' has only pickled weights: pass allow_pickle=True to load them (weights-only)")
    raise LowMetricError(f"'{name}' has no {library} weights file ({', '.join(safe)})")


def _content_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


# ---------------------------------------------------------------------------------------- backends
def _transformers_encoder(name: str, revision: str, folder: Path, *, layer: int, resolution: tuple[int, int] | None,
                          dtype: str, device: str, trust_remote_code: bool, feature: Any) -> Encoder:
    from transformers import AutoConfig, AutoImageProcessor, AutoModel
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except ValueError as e:
        raise LowMetricError(f"'{name}' is not a transformers model: {str(e).splitlines()[0]}") from None
    tower = getattr(config, "vision_config", None) or config
    model_class = MODEL_MAPPING[type(tower)] if type(tower) in MODEL_MAPPING else AutoModel
    if getattr(model_class, "main_input_name", "pixel_values") != "pixel_values":
        raise LowMetricError(f"'{name}' ({config.model_type}) has no vision tower")
    if not any(folder.glob("*processor_config.json")):
        raise LowMetricError(f"'{name}' has no preprocessor_config.json")
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a full CLIP/SigLIP checkpoint's text tower is unused: no load report
    try:
        model, info = model_class.from_pretrained(folder, config=tower, dtype=DTYPES[dtype], output_loading_info=True,
                                                  use_safetensors=any(folder.glob("*.safetensors")),
                                                  trust_remote_code=trust_remote_code)
    finally:
        hf_logging.set_verbosity(verbosity)
    if getattr(model, "main_input_name", None) != "pixel_values":
        raise LowMetricError(f"'{name}' ({config.model_type}) has no vision tower")
    if info["missing_keys"]:
        raise LowMetricError(f"'{name}' lacks {len(info['missing_keys'])} weights of {type(model).__name__} "
                             f"(e.g. {sorted(info['missing_keys'])[0]})")
    processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=trust_remote_code)
    kwargs = _processor_size(processor, resolution) if resolution else {}
    forward_kwargs = {"output_hidden_states": True}
    if resolution and "interpolate_pos_encoding" in inspect.signature(model.forward).parameters:
        forward_kwargs["interpolate_pos_encoding"] = True
    patch = getattr(tower, "patch_size", None)

    def native(images: list[Image.Image]) -> torch.Tensor:
        return processor(images=images, return_tensors="pt", **kwargs)["pixel_values"]

    def grid(pixels: torch.Tensor) -> torch.Tensor:
        output = model(pixel_values=pixels, **forward_kwargs)
        states = getattr(output, "reshaped_hidden_states", None) or output.hidden_states
        tokens = states[_check_layer(layer, len(states), name, "hidden states (embeddings included)")]
        if tokens.ndim == 4:
            return tokens
        return _tokens_to_grid(tokens, pixels.shape[-2:], patch, name)

    resample = getattr(processor, "resample", 3)
    summary = {"processor": type(processor).__name__, "resample": _pil_name(resample), **{k: getattr(processor, k, None)
               for k in ("size", "crop_size", "do_center_crop", "image_mean", "image_std")}, **kwargs}
    return Encoder(id=name, revision=revision, library="transformers", model=model, native=native, grid=grid,
                   mean=processor.image_mean, std=processor.image_std, interpolation=_pil_name(resample), dtype=dtype,
                   device=device, native_summary=summary, layer=layer, resolution=resolution,
                   model_class=type(model).__name__)


def _processor_size(processor: Any, resolution: tuple[int, int]) -> dict[str, Any]:
    """Processor call arguments that make its output ``resolution`` (H, W), keeping its resize/crop ratio."""
    height, width = resolution
    size = dict(processor.size)  # transformers' SizeDict iterates over its set fields
    if getattr(processor, "do_center_crop", False) and getattr(processor, "crop_size", None):
        crop = dict(processor.crop_size)
        if size.get("shortest_edge"):
            return {"size": {"shortest_edge": round(size["shortest_edge"] * max(height, width) / crop["height"])},
                    "crop_size": {"height": height, "width": width}}
        return {"size": {"height": height, "width": width}, "crop_size": {"height": height, "width": width}}
    return {"size": {"height": height, "width": width}}


def _tokens_to_grid(tokens: torch.Tensor, image_size: Sequence[int], patch: Any, name: str) -> torch.Tensor:
    """[B, prefix + h*w, D] -> [B, D, h, w], dropping the prefix tokens (CLS, registers)."""
    if patch is None:
        raise LowMetricError(f"'{name}' gives tokens but no patch_size to lay them on a grid")
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    h, w = image_size[0] // ph, image_size[1] // pw
    if tokens.shape[1] < h * w:
        raise LowMetricError(f"'{name}' gives {tokens.shape[1]} tokens, fewer than its {h}x{w} grid")
    return tokens[:, tokens.shape[1] - h * w:].transpose(1, 2).reshape(tokens.shape[0], -1, h, w)


def _timm_encoder(name: str, revision: str, folder: Path, *, layer: int, resolution: tuple[int, int] | None,
                  dtype: str, device: str, trust_remote_code: bool, feature: int | str | None) -> Encoder:
    import timm

    model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    if resolution and hasattr(model, "set_input_size"):
        model.set_input_size(img_size=resolution)
    config = timm.data.resolve_model_data_config(model)
    if resolution:
        config["input_size"] = (3, *resolution)
    transform = timm.data.create_transform(**config, is_training=False)
    grid, settings = _timm_features(model, layer, feature, name)

    def native(images: list[Image.Image]) -> torch.Tensor:
        return torch.stack([transform(im) for im in images])

    return Encoder(id=name, revision=revision, library="timm", model=model, native=native, grid=grid,
                   mean=config["mean"], std=config["std"], interpolation=config["interpolation"], dtype=dtype,
                   device=device, native_summary=config, resolution=resolution,
                   architecture=model.pretrained_cfg.get("architecture"), **settings)


def _timm_features(model: nn.Module, layer: int, feature: int | str | None,
                   name: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """Grid function of a timm model: block ``layer`` of a ViT, or a stride 14-16 feature map of a CNN."""
    if not hasattr(model, "forward_intermediates"):
        raise LowMetricError(f"'{name}' ({type(model).__name__}) has no forward_intermediates in timm")
    if hasattr(model, "blocks") and hasattr(model, "patch_embed"):
        index = _check_layer(layer, len(model.blocks), name, "blocks")
        settings: dict[str, Any] = {"layer": layer, "prefix_tokens": getattr(model, "num_prefix_tokens", 0)}
    else:
        infos = list(model.feature_info)
        index = _feature_index(infos, feature, name)
        settings = {"layer": None, "feature": {"index": index, **infos[index]}}

    def grid(pixels: torch.Tensor) -> torch.Tensor:
        return model.forward_intermediates(pixels, indices=[index], intermediates_only=True, stop_early=True)[0]

    return grid, settings


def _feature_index(infos: list[dict[str, Any]], feature: int | str | None, name: str) -> int:
    if feature is None:
        strided = [i for i, info in enumerate(infos) if 14 <= info["reduction"] <= 16]
        return strided[-1] if strided else min(range(len(infos)), key=lambda i: abs(infos[i]["reduction"] - 16))
    modules = [info["module"] for info in infos]
    if isinstance(feature, str) and feature in modules:
        return modules.index(feature)
    if isinstance(feature, int) and -len(infos) <= feature < len(infos):
        return feature % len(infos)
    raise LowMetricError(f"feature {feature!r} not in '{name}': use an index < {len(infos)} or one of {modules}")


def _open_clip_encoder(name: str, revision: str, folder: Path, *, layer: int, resolution: tuple[int, int] | None,
                       dtype: str, device: str, trust_remote_code: bool, feature: int | str | None) -> Encoder:
    import open_clip
    from open_clip.timm_model import TimmModel
    from open_clip.transformer import VisionTransformer

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    config = open_clip.get_model_preprocess_cfg(model)
    size = config["size"] if isinstance(config["size"], (list, tuple)) else (config["size"],) * 2
    if resolution and tuple(resolution) != tuple(size):
        raise LowMetricError(f"'{name}': open_clip models run at their own resolution {tuple(size)}")
    visual = model.visual
    if isinstance(visual, VisionTransformer):
        index = _check_layer(layer, len(visual.transformer.resblocks), name, "blocks")
        settings: dict[str, Any] = {"layer": layer}

        def grid(pixels: torch.Tensor) -> torch.Tensor:
            out = visual.forward_intermediates(pixels, indices=[index], intermediates_only=True, stop_early=True)
            return out["image_intermediates"][0]
    elif isinstance(visual, TimmModel):
        grid, settings = _timm_features(visual.trunk, layer, feature, name)
    else:
        raise LowMetricError(f"'{name}': open_clip tower {type(visual).__name__} is not supported")

    def native(images: list[Image.Image]) -> torch.Tensor:
        return torch.stack([preprocess(im) for im in images])

    return Encoder(id=name, revision=revision, library="open_clip", model=visual, native=native, grid=grid,
                   mean=config["mean"], std=config["std"], interpolation=config.get("interpolation", "bicubic"),
                   dtype=dtype, device=device, native_summary=config, resolution=resolution, **settings)


# ---------------------------------------------------------------------------------------- helpers
def _check_layer(layer: int, count: int, name: str, what: str) -> int:
    if not -count <= layer < count:
        raise LowMetricError(f"layer {layer} is out of range for '{name}': it has {count} {what}, "
                             f"so layer must be in [{-count}, {count - 1}]")
    return layer % count


def _check_dtype_device(dtype: torch.dtype, device: torch.device) -> None:
    if dtype == torch.float16 and device.type == "cpu":
        raise LowMetricError("dtype float16 needs a GPU: use bfloat16 or float32 on the CPU")


def _size(resolution: int | Sequence[int] | None) -> tuple[int, int] | None:
    if resolution is None:
        return None
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if len(size) != 2 or min(size) <= 0:
        raise LowMetricError(f"resolution must be a positive int or (height, width), got {resolution!r}")
    return size


def _pil_name(resample: Any) -> str:
    return Image.Resampling(int(resample)).name.lower() if resample is not None else "bicubic"


def _jsonable(value: Any) -> Any:
    """A JSON round trip; dataclasses (transformers' SizeDict) become their non-None fields."""
    def default(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {k: x for k, x in vars(v).items() if x is not None}
        return dict(v) if hasattr(v, "keys") else str(v)

    return json.loads(json.dumps(value, default=default))
