"""The 840 pad-resize frame of the SPair-71k protocol (SPEC.md section 3).

An image of size (width, height) is resized, keeping its aspect ratio, so that its longer side is
``size`` pixels, then zero-padded, centred, to ``size`` x ``size``. Keypoints and boxes move with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_SIZE = 840


@dataclass(frozen=True)
class Frame:
    """How one image maps into the square frame: ``frame = original * scale + (pad_x, pad_y)``."""

    width: int
    height: int
    size: int = FRAME_SIZE

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def scale(self) -> float:
        return self.size / max(self.width, self.height)

    @property
    def resized(self) -> tuple[int, int]:
        """(width, height) of the image after the aspect-preserving resize."""
        return (
            max(1, min(self.size, round(self.width * self.scale))),
            max(1, min(self.size, round(self.height * self.scale))),
        )

    @property
    def offset(self) -> tuple[int, int]:
        """(pad_x, pad_y): where the resized image's top-left corner lands in the frame."""
        new_w, new_h = self.resized
        return (self.size - new_w) // 2, (self.size - new_h) // 2

    def points(self, xy: np.ndarray) -> np.ndarray:
        """Map [K, 2] (x, y) pixel coordinates of the original image into the frame."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        sx = self.resized[0] / self.width
        sy = self.resized[1] / self.height
        return xy * np.array([sx, sy]) + np.array(self.offset, dtype=np.float64)

    def box(self, xyxy: np.ndarray) -> np.ndarray:
        """Map an [x1, y1, x2, y2] box (or [N, 4] boxes) of the original image into the frame."""
        xyxy = np.asarray(xyxy, dtype=np.float64)
        return self.points(xyxy.reshape(-1, 2)).reshape(xyxy.shape)


def box_threshold(xyxy: np.ndarray) -> np.ndarray:
    """max(height, width) of [x1, y1, x2, y2] boxes: the PCK threshold before alpha."""
    xyxy = np.asarray(xyxy, dtype=np.float64)
    return np.maximum(xyxy[..., 2] - xyxy[..., 0], xyxy[..., 3] - xyxy[..., 1])
