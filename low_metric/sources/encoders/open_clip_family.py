"""open_clip encoders: the visual tower of ``create_model`` (ViT blocks or a timm trunk) and its validation transform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from low_metric.core.errors import LowMetricError
from low_metric.sources.encoders.base import Encoder, check_layer
from low_metric.sources.encoders.timm_family import timm_features


def load(name: str, revision: str, folder: Path, *, layer: int, resolution: tuple[int, int] | None,
         dtype: str, device: str, trust_remote_code: bool, feature: int | str | None, weights: bool = True) -> Encoder:
    """The encoder; ``weights=False``: its skeleton on the meta device, enough for its protocol."""
    import open_clip
    from open_clip.timm_model import TimmModel
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from open_clip.transformer import VisionTransformer

    with torch.device("meta" if not weights else "cpu"):
        model = open_clip.create_model(f"local-dir:{folder}", load_weights=weights, pretrained_text=False,
                                       device="meta" if not weights else "cpu")
    config = open_clip.get_model_preprocess_cfg(model)
    preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
    size = config["size"] if isinstance(config["size"], (list, tuple)) else (config["size"],) * 2
    if resolution and tuple(resolution) != tuple(size):
        raise LowMetricError(f"'{name}': open_clip models run at their own resolution {tuple(size)}")
    visual = model.visual
    if isinstance(visual, VisionTransformer):
        index = check_layer(layer, len(visual.transformer.resblocks), name, "blocks")
        settings: dict[str, Any] = {"layer": layer}

        def grid(pixels: torch.Tensor) -> torch.Tensor:
            out = visual.forward_intermediates(pixels, indices=[index], intermediates_only=True, stop_early=True)
            return out["image_intermediates"][0]
    elif isinstance(visual, TimmModel):
        grid, settings = timm_features(visual.trunk, layer, feature, name)
    else:
        raise LowMetricError(f"'{name}': open_clip tower {type(visual).__name__} is not supported")

    def native(images: list[Image.Image]) -> torch.Tensor:
        return torch.stack([preprocess(im) for im in images])

    return Encoder(id=name, revision=revision, library="open_clip", model=visual, native=native, grid=grid,
                   mean=config["mean"], std=config["std"], interpolation=config.get("interpolation", "bicubic"),
                   dtype=dtype, device=device if weights else "meta", native_summary=config, resolution=resolution,
                   **settings)
