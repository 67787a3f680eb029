"""``X+Y``: concatenated encoders (SPEC.md section 1)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from low_metric.sources.encoders.base import Batch, Encoder


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
