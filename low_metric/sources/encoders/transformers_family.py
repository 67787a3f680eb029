"""transformers encoders: any Auto vision model (CLIP and SigLIP checkpoints give their vision tower);
tokens are ``hidden_states[layer]`` with the prefix tokens (CLS, registers) dropped."""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from low_metric.core.errors import LowMetricError
from low_metric.sources.encoders.base import DTYPES, Encoder, check_layer, pil_name


def load(name: str, revision: str, folder: Path, *, layer: int, resolution: tuple[int, int] | None,
         dtype: str, device: str, trust_remote_code: bool, feature: Any, weights: bool = True) -> Encoder:
    """The encoder; ``weights=False``: its skeleton on the meta device (no weights read, no memory),
    enough for its protocol. The model keeps only the blocks up to ``layer`` (checked on a probe)."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModel
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    if not trust_remote_code and _asks_remote_code(folder / "config.json"):
        raise LowMetricError(f"'{name}' needs its own Python code (auto_map in config.json): pass "
                             "--trust-remote-code (trust_remote_code=True) if you trust it")
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
    model = _model(name, folder, model_class, tower, dtype, trust_remote_code) if weights else _skeleton(model_class, tower, dtype)
    if getattr(model, "main_input_name", None) != "pixel_values":
        raise LowMetricError(f"'{name}' ({config.model_type}) has no vision tower")
    processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=trust_remote_code)
    kwargs = _processor_size(processor, resolution) if resolution else {}
    forward_kwargs = {"output_hidden_states": True}
    if resolution and "interpolate_pos_encoding" in inspect.signature(model.forward).parameters:
        forward_kwargs["interpolate_pos_encoding"] = True
    patch = getattr(tower, "patch_size", None)

    def native(images: list[Image.Image]) -> torch.Tensor:
        return processor(images=images, return_tensors="pt", **kwargs)["pixel_values"]

    def states(pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = model(pixel_values=pixels, **forward_kwargs)
        return getattr(output, "reshaped_hidden_states", None) or output.hidden_states

    probe_device = "meta" if not weights else device
    probe = torch.randn(1, 3, *native([Image.new("RGB", (256, 256))]).shape[-2:], generator=torch.Generator().manual_seed(0))
    probe = probe.to(probe_device, DTYPES[dtype])
    model.eval().to(probe_device)
    with torch.inference_mode():
        full = states(probe)
    index = check_layer(layer, len(full), name, "hidden states (embeddings included)")
    if weights:
        _stop_after(model, index, len(full) - 1, lambda: states(probe)[index], full[index])

    def grid(pixels: torch.Tensor) -> torch.Tensor:
        tokens = states(pixels)[index]
        if tokens.ndim == 4:
            return tokens
        return _tokens_to_grid(tokens, pixels.shape[-2:], patch, name)

    resample = getattr(processor, "resample", 3)
    summary = {"processor": type(processor).__name__, "resample": pil_name(resample), **{k: getattr(processor, k, None)
               for k in ("size", "crop_size", "do_center_crop", "image_mean", "image_std")}, **kwargs}
    probed = full[index].shape if full[index].ndim == 4 else _tokens_to_grid(full[index], probe.shape[-2:], patch, name).shape
    return Encoder(id=name, revision=revision, library="transformers", model=model, native=native, grid=grid,
                   mean=processor.image_mean, std=processor.image_std, interpolation=pil_name(resample), dtype=dtype,
                   device=device if weights else "meta", native_summary=summary, probed=probed, layer=layer,
                   resolution=resolution, model_class=type(model).__name__)


def _model(name: str, folder: Path, model_class: Any, tower: Any, dtype: str, trust_remote_code: bool) -> Any:
    """The vision tower with its weights (every one present in the checkpoint)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a full CLIP/SigLIP checkpoint's text tower is unused: no load report
    try:
        model, info = model_class.from_pretrained(folder, config=tower, dtype=DTYPES[dtype], output_loading_info=True,
                                                  use_safetensors=any(folder.glob("*.safetensors")),
                                                  trust_remote_code=trust_remote_code)
    finally:
        hf_logging.set_verbosity(verbosity)
    if info["missing_keys"]:
        raise LowMetricError(f"'{name}' lacks {len(info['missing_keys'])} weights of {type(model).__name__} "
                             f"(e.g. {sorted(info['missing_keys'])[0]})")
    return model


def _skeleton(model_class: Any, tower: Any, dtype: str) -> Any:
    """The vision tower's modules on the meta device: shapes without weights or memory."""
    with torch.device("meta"):
        return model_class._from_config(tower, dtype=DTYPES[dtype])


def _stop_after(model: Any, blocks: int, total: int, run: Any, expected: Any) -> None:
    """Drop the blocks after the first ``blocks`` of the model's block list (the one ModuleList of
    ``total`` modules): hidden state ``blocks`` no longer computes blocks it throws away. Kept only
    if ``run()`` then gives exactly ``expected`` (the full model's hidden state), else undone."""
    from torch import nn

    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == total]
    if len(lists) != 1 or blocks >= total:
        return
    (layers,) = lists
    dropped = list(layers[blocks:])
    del layers[blocks:]
    with torch.inference_mode():
        same = torch.equal(run(), expected)
    if not same:
        layers.extend(dropped)


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


def _asks_remote_code(config: Path) -> bool:
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise LowMetricError(f"{config}: not a readable JSON config") from None
    return isinstance(data, dict) and "auto_map" in data
