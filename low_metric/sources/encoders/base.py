"""The :class:`Encoder` every family returns, and the checks the families share."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageOps
from torch import nn

from low_metric.core.errors import LowMetricError
from low_metric.sources.projector import load_projector

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
Batch = torch.Tensor | tuple[torch.Tensor, ...]


class Encoder:
    """A vision encoder that turns images into an h x w grid of D-dim tokens.

    Attributes: ``id``, ``revision`` (commit hash), ``library``, ``image_size`` (H, W input),
    ``grid`` (h, w), ``dim``, ``protocol`` (JSON-able), ``images_encoded`` (forward counter),
    ``model`` (the torch module), ``device``.
    """

    def __init__(self, *, id: str, revision: str, library: str, model: nn.Module,
                 native: Callable[[list[Image.Image]], torch.Tensor], grid: Callable[[torch.Tensor], torch.Tensor],
                 mean: Sequence[float], std: Sequence[float], interpolation: str, dtype: str, device: str,
                 native_summary: dict[str, Any], probed: torch.Size | None = None, **settings: Any):
        self.id, self.revision, self.library = id, revision, library
        self.model = model.eval().to(device=device, dtype=DTYPES[dtype])
        self.device = torch.device(device)
        self.dtype = DTYPES[dtype]
        self._native, self._grid = native, grid
        self.mean, self.std, self.interpolation = tuple(mean), tuple(std), interpolation
        self.images_encoded = 0
        self.image_size: tuple[int, int] = tuple(self._native([Image.new("RGB", (256, 256))]).shape[-2:])
        if probed is None:  # the shape [1, D, h, w] of the grid of an image_size input, unless the family knows it
            with torch.inference_mode():
                probed = self._features(torch.zeros(1, 3, *self.image_size)).shape
        self.grid: tuple[int, int] = tuple(probed[-2:])
        self.dim: int = probed[1]
        self.protocol = jsonable({
            "id": id, "revision": revision, "library": library, **settings, "dtype": dtype,
            "image_size": self.image_size, "grid": self.grid, "dim": self.dim,
            "preprocessing": {"native": native_summary, "square": {
                "resize": "fit inside image_size, zero-pad centred (no crop, no stretch)",
                "interpolation": interpolation, "mean": self.mean, "std": self.std}}})

    def preprocess(self, images: Sequence[Image.Image], *, square: bool = False) -> Batch:
        """A batch for :meth:`forward`: the library's own preprocessing, or (``square=True``, for
        the padded 840 frame) a resize to ``image_size`` without crop or stretch, then normalisation."""
        images = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        if not square:
            return self._native(images)
        height, width = self.image_size
        resample = Image.Resampling[self.interpolation.upper()]
        from torchvision.transforms.functional import normalize, to_tensor  # seconds to import: only to encode

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
        check_dtype_device(self.dtype, device)
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


def check_layer(layer: int, count: int, name: str, what: str) -> int:
    if not -count <= layer < count:
        raise LowMetricError(f"layer {layer} is out of range for '{name}': it has {count} {what}, "
                             f"so layer must be in [{-count}, {count - 1}]")
    return layer % count


def check_dtype_device(dtype: torch.dtype, device: torch.device) -> None:
    if dtype == torch.float16 and device.type == "cpu":
        raise LowMetricError("dtype float16 needs a GPU: use bfloat16 or float32 on the CPU")


def input_size(resolution: int | Sequence[int] | None) -> tuple[int, int] | None:
    if resolution is None:
        return None
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if len(size) != 2 or min(size) <= 0:
        raise LowMetricError(f"resolution must be a positive int or (height, width), got {resolution!r}")
    return size


def pil_name(resample: Any) -> str:
    return Image.Resampling(int(resample)).name.lower() if resample is not None else "bicubic"


def jsonable(value: Any) -> Any:
    """A JSON round trip; dataclasses (transformers' SizeDict) become their non-None fields."""
    def default(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {k: x for k, x in vars(v).items() if x is not None}
        return dict(v) if hasattr(v, "keys") else str(v)

    return json.loads(json.dumps(value, default=default))
