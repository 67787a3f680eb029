"""The diffusers pipelines low_metric scores (SPEC.md section 1, "Diffusion representations") and the
files of each that are fetched: ``model_index.json``, the scheduler's config, the VAE, the denoiser and
what gives the conditioning (text encoders and tokenizers, or the CLIP image encoder). Other parts of a
pipeline (safety checker, SD3's T5 encoder, fp16 variants) are never fetched.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from low_metric.core.errors import LowMetricError

MODEL_INDEX = "model_index.json"
# pipeline class -> (denoiser, conditioning parts); every kind also needs "vae" and "scheduler"
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "StableDiffusionPipeline": ("unet", ("text_encoder", "tokenizer")),  # SD1.5, SD2.1
    "StableDiffusionXLPipeline": ("unet", ("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
    "StableDiffusion3Pipeline": ("transformer", ("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
    "DiTPipeline": ("transformer", ()),
    "StableDiffusionImageVariationPipeline": ("unet", ("image_encoder", "feature_extractor")),  # SDim
}
DIFFUSERS_MODELS = ("vae", "unet", "transformer")  # weights named diffusion_pytorch_model*, else transformers'
_SHARD = "-" + "[0-9]" * 5 + "-of-" + "[0-9]" * 5


def parts(model_index: dict[str, Any], name: str) -> tuple[str, ...]:
    """The parts of the pipeline ``model_index`` describes that are loaded, after checking its kind."""
    kind = model_index.get("_class_name")
    if kind not in KINDS:
        raise LowMetricError(f"'{name}' is a {kind or 'unnamed'} pipeline: low_metric scores diffusers pipelines "
                             f"of the kinds {', '.join(KINDS)}")
    denoiser, conditioning = KINDS[kind]
    needed = ("vae", "scheduler", denoiser, *conditioning)
    for part in needed:
        entry = model_index.get(part)
        if not (isinstance(entry, list) and len(entry) == 2 and entry[0] in ("diffusers", "transformers")):
            raise LowMetricError(f"'{name}': its model_index.json gives no diffusers/transformers {part}")
    return needed


def part_files(part: str) -> tuple[list[str], list[str], list[str]]:
    """(configs, safetensors weights, pickled weights) patterns of one part."""
    if part.startswith("tokenizer"):
        return [f"{part}/*.json", f"{part}/*.txt"], [], []
    if part == "feature_extractor":
        return [f"{part}/preprocessor_config.json"], [], []
    if part == "scheduler":
        return [f"{part}/scheduler_config.json"], [], []
    safe, pickled = ("diffusion_pytorch_model", "diffusion_pytorch_model") if part in DIFFUSERS_MODELS \
        else ("model", "pytorch_model")
    return ([f"{part}/config.json"],
            [f"{part}/{safe}.safetensors", f"{part}/{safe}{_SHARD}.safetensors", f"{part}/{safe}.safetensors.index.json"],
            [f"{part}/{pickled}.bin", f"{part}/{pickled}{_SHARD}.bin", f"{part}/{pickled}.bin.index.json"])


def all_files() -> tuple[list[str], list[str], list[str]]:
    """The patterns of every part any kind loads (what the guard counts)."""
    every = sorted({p for denoiser, cond in KINDS.values() for p in ("vae", "scheduler", denoiser, *cond)})
    configs, safe, pickled = [MODEL_INDEX], [], []
    for part in every:
        c, s, p = part_files(part)
        configs, safe, pickled = configs + c, safe + s, pickled + p
    return configs, safe, pickled


def select(model_index: dict[str, Any], files: Sequence[str], allow_pickle: bool, name: str) -> list[str]:
    """Patterns of the files to fetch: each loaded part's configs and its safetensors weights (its
    pickles only with ``allow_pickle``); a part without weights is an error."""
    patterns = [MODEL_INDEX]
    for part in parts(model_index, name):
        configs, safe, pickled = part_files(part)

        def present(group: list[str]) -> bool:
            return any(fnmatch.fnmatch(f, p) for f in files for p in group if not p.endswith(".json"))

        if not safe or present(safe):
            patterns += configs + safe
        elif present(pickled) and allow_pickle:
            patterns += configs + pickled
        elif present(pickled):
            raise LowMetricError(f"'{name}' has only pickled weights for its {part}: pass --allow-pickle "
                                 "(allow_pickle=True) to load them weights-only, if you trust the repo")
        else:
            raise LowMetricError(f"'{name}' has no weights for its {part} ({safe[0]})")
    return patterns
