"""timm encoders: block ``layer`` of a ViT (``forward_intermediates``) or a stride 14-16 feature map of a CNN."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from low_metric.core.errors import LowMetricError
from low_metric.sources.encoders.base import Encoder, check_layer


def hub_id(architecture: str) -> str:
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(architecture)
    except RuntimeError as e:  # a known architecture with an unknown tag
        raise LowMetricError(f"timm: {e}") from None
    if cfg is None or not cfg.hf_hub_id:
        raise LowMetricError(f"timm has no Hub weights for '{architecture}'")
    return cfg.hf_hub_id


def load(name: str, revision: str, folder: Path, *, layer: int, resolution: tuple[int, int] | None,
         dtype: str, device: str, trust_remote_code: bool, feature: int | str | None, weights: bool = True) -> Encoder:
    """The encoder; ``weights=False``: its skeleton on the meta device, enough for its protocol."""
    import timm

    with torch.device("meta" if not weights else "cpu"):
        model = timm.create_model(f"local-dir:{folder}", pretrained=weights)
    if resolution and hasattr(model, "set_input_size"):
        model.set_input_size(img_size=resolution)
    config = timm.data.resolve_model_data_config(model)
    if resolution:
        config["input_size"] = (3, *resolution)
    transform = timm.data.create_transform(**config, is_training=False)
    grid, settings = timm_features(model, layer, feature, name)

    def native(images: list[Image.Image]) -> torch.Tensor:
        return torch.stack([transform(im) for im in images])

    return Encoder(id=name, revision=revision, library="timm", model=model, native=native, grid=grid,
                   mean=config["mean"], std=config["std"], interpolation=config["interpolation"], dtype=dtype,
                   device=device if weights else "meta", native_summary=config, resolution=resolution,
                   architecture=model.pretrained_cfg.get("architecture"), **settings)


def timm_features(model: nn.Module, layer: int, feature: int | str | None,
                   name: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """Grid function of a timm model: block ``layer`` of a ViT, or a stride 14-16 feature map of a CNN."""
    if not hasattr(model, "forward_intermediates"):
        raise LowMetricError(f"'{name}' ({type(model).__name__}) has no forward_intermediates in timm")
    if hasattr(model, "blocks") and hasattr(model, "patch_embed"):
        index = check_layer(layer, len(model.blocks), name, "blocks")
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
