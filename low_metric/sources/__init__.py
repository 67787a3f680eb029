"""Sources of data for the scorer: vision encoders by name (and, beside them, image sets)."""

from low_metric.sources.encoders import ConcatEncoder, Encoder, load_encoder
from low_metric.sources.projector import load_projector

__all__ = ["ConcatEncoder", "Encoder", "load_encoder", "load_projector"]
