"""Vision encoders by name: one entry point, :func:`load_encoder`, in the style of open_clip's factory.

Names are parsed by :mod:`low_metric.sources.names`; the library comes from a ``library:`` prefix or
from the repo's files (a transformers ``config.json`` with ``model_type``, a timm ``config.json``
with ``architecture``, an ``open_clip_config.json``, a diffusers ``model_index.json``). One module
per family (``*_family``) turns a folder of files into an :class:`Encoder`; ``X+Y`` gives a
:class:`ConcatEncoder`. The libraries are imported on first use (they take seconds to import). :func:`describe_encoder` gives an
encoder's protocol without its weights, so a :class:`LazyEncoder` loads them only to encode.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections import Counter
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from low_metric.core.errors import LowMetricError, first_line
from low_metric.sources.encoders.base import (
    DTYPES,
    Encoder,
    check_dtype_device,
    input_size,
)
from low_metric.sources.encoders.concat import ConcatEncoder
from low_metric.sources.hub import resolve
from low_metric.sources.names import EncoderRef, parse_encoder_id
from low_metric.sources.statmemo import memoised

try:
    VERSION = version("low_metric")  # part of a remembered protocol's key
except PackageNotFoundError:
    VERSION = "0.0.0+unknown"

FAMILIES = {"transformers": "transformers_family", "timm": "timm_family", "open_clip": "open_clip_family",
            "diffusers": "diffusers_family"}

__all__ = ["ConcatEncoder", "Encoder", "LazyEncoder", "describe_encoder", "load_encoder"]


def load_encoder(name: str, *, layer: int = -2, resolution: int | tuple[int, int] | None = None,
                 dtype: str = "float32", revision: str | None = None, device: str = "cpu",
                 trust_remote_code: bool = False, token: str | None = None, feature: int | str | None = None,
                 allow_pickle: bool = False, timestep: int = 1, block: int | str | None = None, prompt: str = "",
                 seed: int = 0) -> Encoder:
    """Load a vision encoder by name (see :mod:`low_metric.sources.names` for the naming scheme).

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
        timestep, block, prompt, seed: for diffusers pipelines (SPEC.md section 1), the noise timestep,
            the denoiser block whose output is taken (a name such as ``up_blocks.0`` or
            ``transformer_blocks.0``, or an index into the UNet's decoder blocks / the transformer's
            blocks; default the first), the prompt (default empty) and the noise seed. Other families
            ignore them.
    """
    return _build(name, weights=True, layer=layer, resolution=resolution, dtype=dtype, revision=revision,
                  device=device, trust_remote_code=trust_remote_code, token=token, feature=feature,
                  allow_pickle=allow_pickle, timestep=timestep, block=block, prompt=prompt, seed=seed)


def describe_encoder(name: str, *, loaded: Callable[[], Encoder] | None = None, **options: Any) -> dict[str, Any] | None:
    """The ``protocol`` that ``load_encoder(name, **options)`` would give, from the repo's config
    files and commit alone: no weights are fetched or read. Each family builds its model's skeleton
    on PyTorch's meta device (no memory, no compute) to learn the grid and width; with a
    :mod:`~low_metric.sources.statmemo` active, a protocol described once is remembered by the
    commits it was described at (no library imported, nothing built). A family that cannot
    describe without loading (its ``load`` has no ``weights`` option, as diffusers) gives None, or,
    given ``loaded`` (the loaded encoder, on demand), that encoder's protocol, remembered alike: a
    later run finds it without loading."""
    checked = _options(**options)
    parts = _resolve_parts(name, weights=False, options=checked)
    commits = [commit for _, (_, commit, _) in parts]
    settings = {k: v for k, v in checked.items() if k not in ("device", "token")}
    key = json.dumps([VERSION, name, [ref.name for ref, _ in parts], commits, settings], sort_keys=True, default=str)
    revision = "+".join(commits)

    def describe() -> dict[str, Any] | None:
        encoder = _assemble(parts, weights=False, **checked)
        if encoder is None and loaded is not None:
            encoder = loaded()
        return None if encoder is None else encoder.protocol

    return memoised(f"protocol:{hashlib.sha256(key.encode()).hexdigest()}", [], describe,
                    valid=lambda p: isinstance(p, dict) and p.get("revision") == revision)


def _options(*, layer: int = -2, resolution: int | tuple[int, int] | None = None, dtype: str = "float32",
             revision: str | None = None, device: str = "cpu", trust_remote_code: bool = False,
             token: str | None = None, feature: int | str | None = None, allow_pickle: bool = False,
             timestep: int = 1, block: int | str | None = None, prompt: str = "", seed: int = 0) -> dict[str, Any]:
    """``load_encoder``'s options, checked, as the families take them (with token and revision)."""
    if dtype not in DTYPES:
        raise LowMetricError(f"bad dtype '{dtype}': use one of {', '.join(DTYPES)}")
    check_dtype_device(DTYPES[dtype], torch.device(device))
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise LowMetricError(f"layer must be an int, got {layer!r}")
    for key, value in (("timestep", timestep), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise LowMetricError(f"{key} must be an int, got {value!r}")
    if not isinstance(prompt, str):
        raise LowMetricError(f"prompt must be a string, got {prompt!r}")
    if block is not None and (isinstance(block, bool) or not isinstance(block, (int, str))):
        raise LowMetricError(f"block must be a block name or an int index, got {block!r}")
    return dict(layer=layer, resolution=input_size(resolution), dtype=dtype, device=device,
                trust_remote_code=trust_remote_code, feature=feature, token=token, revision=revision,
                allow_pickle=allow_pickle, diffusion=dict(timestep=timestep, block=block, prompt=prompt, seed=seed))


def _resolve_parts(name: str, *, weights: bool, options: dict[str, Any]) -> list[tuple[EncoderRef, tuple[Path, str, str]]]:
    """Each part of ``name`` with its (folder, commit, library), for checked ``options``
    (:func:`_options`): configs only unless ``weights``."""
    refs = [on_hub(ref) for ref in parse_encoder_id(name, revision=options["revision"])]
    return [(ref, resolve(ref, token=options["token"], allow_pickle=options["allow_pickle"],
                          trust_remote_code=options["trust_remote_code"], weights=weights)) for ref in refs]


def _build(name: str, *, weights: bool, **options: Any) -> Encoder | None:
    checked = _options(**options)
    return _assemble(_resolve_parts(name, weights=weights, options=checked), weights=weights, **checked)


def _assemble(parts: list[tuple[EncoderRef, tuple[Path, str, str]]], *, weights: bool, token: Any, revision: Any,
              allow_pickle: Any, **options: Any) -> Encoder | None:
    encoders = [_load_one(ref, *resolved, weights=weights, **options) for ref, resolved in parts]
    if any(e is None for e in encoders):
        return None
    return encoders[0] if len(encoders) == 1 else ConcatEncoder(encoders)


class LazyEncoder:
    """An encoder by name and load options whose ``protocol`` (and so its cache keys, ``grid`` and
    ``dim``) is known from :func:`describe_encoder` before, and often instead of, loading it (for a
    family that cannot describe, it is loaded once to learn it, and the protocol is remembered by
    commit for later runs): the weights are loaded on the first :meth:`load`, once, and dropped by
    :meth:`release`."""

    def __init__(self, name: str, **options: Any) -> None:
        self.name, self.options = name, options
        self.keep = False
        self._encoder: Encoder | None = None
        self._described: dict[str, Any] | None = None
        self._described = describe_encoder(name, loaded=self.load, **options)  # loads when it cannot describe
        self.protocol: dict[str, Any] = self._described

    id = property(lambda self: self.protocol["id"])
    grid = property(lambda self: tuple(self.protocol["grid"]))
    dim = property(lambda self: self.protocol["dim"])

    def load(self) -> Encoder:
        """The loaded encoder (loaded now if it was not), with the protocol described before."""
        if self._encoder is None:
            encoder = load_encoder(self.name, **self.options)
            if self._described not in (None, encoder.protocol):
                raise LowMetricError(f"'{self.name}': the protocol its configs describe differs from the loaded "
                                     "model's (did the repo change during the run?): run again")
            self._encoder = encoder
        return self._encoder

    def release(self) -> None:
        """Drop the loaded model (the protocol stays), unless it is to be ``kept`` (a service's references)."""
        if not self.keep:
            self._encoder = None


def on_hub(ref: EncoderRef) -> EncoderRef:
    """``ref`` with a bare timm architecture (``timm:vit_small_patch14_dinov2``) replaced by its Hub repo."""
    if ref.library != "timm" or ref.repo_id is not None or ref.local:
        return ref
    from low_metric.sources.encoders.timm_family import hub_id

    return EncoderRef(ref.library, ref.hf_hub, hub_id(ref.target), ref.revision)


LOADS = Counter()  # id -> how many times this process loaded that encoder's weights


def _load_one(ref: EncoderRef, folder: Path, commit: str, library: str, *, trust_remote_code: bool, weights: bool,
              diffusion: dict[str, object], **options: object) -> Encoder | None:
    name = str(Path(ref.target).resolve()) if ref.local else ref.target  # one id however the path is spelled
    load = family(library)
    if library == "diffusers":
        options = {**options, **diffusion}
    if not weights:
        if "weights" not in inspect.signature(load).parameters:
            return None
        options = {**options, "weights": False}
    try:
        encoder = load(name, commit, folder, trust_remote_code=trust_remote_code, **options)
    except LowMetricError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError, SafetensorError) as exc:  # damaged files
        detail = first_line(exc, type(exc).__name__)
        raise LowMetricError(f"'{ref.target}': its {library} files do not load ({type(exc).__name__}: "
                             f"{detail[:200]})") from None
    if weights:
        LOADS[name] += 1
    return encoder


def family(library: str) -> Callable[..., Encoder]:
    """The ``load(name, revision, folder, **options)`` of a library's family module."""
    return import_module(f"{__name__}.{FAMILIES[library]}").load
