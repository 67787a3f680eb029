"""diffusers pipelines (SPEC.md section 1, "Diffusion representations"): the paper's SD1.5, SD2.1, SDXL,
SD3, DiT and SD image variations, and any pipeline of those kinds (:mod:`low_metric.sources.pipelines`).

The image, in [-1, 1], is encoded by the VAE (a posterior sample, seeded, as the paper's code samples
it), shifted and scaled into the denoiser's latent space (``(z - shift_factor) * scaling_factor``),
noised to timestep ``t`` with the pipeline's noise schedule (DDIM's ``add_noise`` over the pipeline's
betas; flow matching at sigma = t / N for SD3), in float32 whatever the model's dtype, and passed
once through the denoiser. A forward hook
takes the chosen block's output and stops the pass there. UNet blocks give a grid; transformer blocks
give tokens, laid on the latent patch grid, then folded 2x2 space-to-depth (channel order as the
official code: offset (dy, dx) of a 2x2 cell at channels [(2 dx + dy) D, (2 dx + dy + 1) D)).

Conditioning, computed once per encoder, as the official code does: the prompt (default empty) through
the pipeline's own ``encode_prompt``; SDXL's pooled-text and size conditioning not applied (its added
embedding is zeroed); SD3 without its T5 encoder (zeros in its place, of the CLIP tokenizer's length,
as in diffusers 0.30); DiT the null class; SD image variations the CLIP image embedding of the same
picture (resized to the image encoder's crop size, bicubic without antialiasing, as its model card says).

Noise: drawn on the CPU by ``torch.Generator().manual_seed(seed)`` in float32, first the VAE posterior's
standard normal, then the diffusion noise, each of one latent's shape and the same for every image, so
an image's tokens depend on neither its batch, its process nor the device.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from low_metric.core.errors import LowMetricError
from low_metric.sources.encoders.base import DTYPES, Encoder
from low_metric.sources.pipelines import DIFFUSERS_MODELS, KINDS, MODEL_INDEX, parts

SD, SDXL, SD3 = "StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusion3Pipeline"
DIT, SDIM = "DiTPipeline", "StableDiffusionImageVariationPipeline"
PROMPTLESS = {DIT: "DiT is class-conditioned (the null class)", SDIM: "SD image variations is conditioned on the image"}


def load(name: str, revision: str, folder: Path, *, layer: int, resolution: tuple[int, int] | None, dtype: str,
         device: str, trust_remote_code: bool, feature: int | str | None, timestep: int = 1,
         block: int | str | None = None, prompt: str = "", seed: int = 0) -> Encoder:
    """The pipeline in ``folder`` as an :class:`Encoder` (``layer`` and ``feature`` do not apply: ``block`` does)."""
    from diffusers.image_processor import VaeImageProcessor

    model_index = json.loads((folder / MODEL_INDEX).read_text())
    needed = parts(model_index, name)
    kind = model_index["_class_name"]
    if prompt and kind in PROMPTLESS:
        raise LowMetricError(f"'{name}': {PROMPTLESS[kind]}: it takes no prompt")
    pipe = _pipeline(folder, kind, model_index, needed, dtype)
    denoiser = getattr(pipe, KINDS[kind][0])
    block_name = _block_name(denoiser, block, name)
    vae_scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    size = resolution or _native_size(denoiser.config.sample_size, vae_scale)
    _check_size(size, denoiser, vae_scale, name)
    noising, schedule = _noising(pipe.scheduler, timestep, name)
    pipe.to(device)
    conditioning, described = _conditioning(pipe, kind, prompt, device)
    model = DiffusionFeatures(pipe.vae, denoiser, block_name, kind=kind, noising=noising, timestep=timestep, seed=seed,
                              conditioning=conditioning, image_encoder=getattr(pipe, "image_encoder", None),
                              feature_extractor=getattr(pipe, "feature_extractor", None))
    del pipe  # the text encoders go with it
    processor = VaeImageProcessor(vae_scale_factor=vae_scale)

    def native(images: list[Image.Image]) -> torch.Tensor:
        return processor.preprocess(images, height=size[0], width=size[1])

    vae_config = model.vae.config
    return Encoder(
        id=name, revision=revision, library="diffusers", model=model, native=native, grid=model, mean=(0.5,) * 3,
        std=(0.5,) * 3, interpolation="lanczos", dtype=dtype, device=device, resolution=resolution,
        native_summary={"processor": "VaeImageProcessor", "resize": "to image_size (stretched, as the pipeline does)",
                        "resample": "lanczos", "range": [-1, 1]},
        pipeline=kind, denoiser=type(denoiser).__name__, timestep=timestep, block=block_name, prompt=prompt,
        seed=seed, conditioning=described, schedule=schedule,
        latents={"posterior": "sample", "scaling_factor": vae_config.scaling_factor,
                 "shift_factor": getattr(vae_config, "shift_factor", None) or 0.0},
        noise="torch.Generator(cpu).manual_seed(seed), float32: posterior normal, then diffusion noise; one draw "
              "shared by every image",
        space_to_depth=2 if model.transformer else 1)


class DiffusionFeatures(nn.Module):
    """Pixels in [-1, 1] [B, 3, H, W] -> the chosen block's output as a grid [B, D, h, w]."""

    def __init__(self, vae: nn.Module, denoiser: nn.Module, block: str, *, kind: str,
                 noising: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], timestep: int,
                 seed: int, conditioning: dict[str, torch.Tensor], image_encoder: nn.Module | None,
                 feature_extractor: Any):
        super().__init__()
        vae.decoder = None  # only the encoder runs
        self.vae, self.denoiser, self.kind = vae, denoiser, kind
        self.block = denoiser.get_submodule(block)
        self.transformer = KINDS[kind][0] == "transformer"
        self.noising, self.timestep, self.seed = noising, timestep, seed
        self.names = list(conditioning)
        for key, value in conditioning.items():
            self.register_buffer(key, value, persistent=False)
        self.image_encoder = image_encoder if kind == SDIM else None
        if self.image_encoder is not None:
            crop = feature_extractor.crop_size
            self.clip_size = (crop["height"], crop["width"])
            self.register_buffer("clip_mean", torch.tensor(feature_extractor.image_mean).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("clip_std", torch.tensor(feature_extractor.image_std).view(1, 3, 1, 1), persistent=False)
        if kind == SDXL:  # the paper's code leaves out SDXL's added (pooled text + size) embedding
            denoiser.add_embedding.register_forward_hook(_zeros)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        posterior = self.vae.encode(pixels).latent_dist
        eps, noise = self.draws(posterior.mean.shape[1:], pixels.device)
        config = self.vae.config
        latents = (posterior.mean.float() + posterior.std.float() * eps
                   - (getattr(config, "shift_factor", None) or 0.0)) * config.scaling_factor
        batch = latents.shape[0]
        timesteps = torch.full((batch,), self.timestep, device=latents.device, dtype=torch.long)
        # in float32: in bfloat16 the schedule's 1 - alpha_bar near t = 0 rounds to 0 or to 2x its value
        noisy = self.noising(latents, noise.expand_as(latents), timesteps).to(pixels.dtype)
        output = self._block_output(noisy, timesteps, self._conditioning(pixels, batch))
        if not self.transformer:
            return output
        patch = self.denoiser.config.patch_size
        h, w = noisy.shape[-2] // patch, noisy.shape[-1] // patch
        grid = output.reshape(batch, h, w, -1).permute(0, 3, 1, 2)
        return space_to_depth(grid)

    def draws(self, shape: torch.Size, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The seeded posterior normal and diffusion noise, each [1, *shape], float32."""
        generator = torch.Generator().manual_seed(self.seed)
        eps, noise = (torch.randn((1, *shape), generator=generator) for _ in range(2))
        return eps.to(device), noise.to(device)

    def _conditioning(self, pixels: torch.Tensor, batch: int) -> dict[str, Any]:
        cond = {k: getattr(self, k).expand(batch, *getattr(self, k).shape[1:]) for k in self.names}
        if self.image_encoder is not None:
            clip = F.interpolate((pixels.float() + 1) / 2, size=self.clip_size, mode="bicubic", align_corners=False)
            clip = ((clip - self.clip_mean) / self.clip_std).to(pixels.dtype)
            cond["encoder_hidden_states"] = self.image_encoder(pixel_values=clip).image_embeds.unsqueeze(1)
        if self.kind == SDXL:
            h, w = pixels.shape[-2:]
            time_ids = torch.tensor([[h, w, 0, 0, h, w]], device=pixels.device, dtype=pixels.dtype).expand(batch, -1)
            cond["added_cond_kwargs"] = {"text_embeds": cond.pop("text_embeds"), "time_ids": time_ids}
        return cond

    def _block_output(self, noisy: torch.Tensor, timesteps: torch.Tensor, cond: dict[str, Any]) -> torch.Tensor:
        """The block's output (its image stream for SD3's joint blocks), the pass stopped right after it."""
        seen: list[Any] = []

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            seen.append(output)
            raise _Reached

        handle = self.block.register_forward_hook(hook)
        try:
            self.denoiser(noisy, timestep=timesteps, **cond)
        except _Reached:
            pass
        finally:
            handle.remove()
        output = seen[0]
        if isinstance(output, tuple):  # UNet down blocks: (hidden, residuals); SD3 blocks: (context, image)
            output = output[-1] if self.transformer else output[0]
        return output


def space_to_depth(grid: torch.Tensor) -> torch.Tensor:
    """[B, D, h, w] -> [B, 4D, h/2, w/2]: offset (dy, dx) of each 2x2 cell goes to channels (2 dx + dy) D + d."""
    b, d, h, w = grid.shape
    return grid.reshape(b, d, h // 2, 2, w // 2, 2).permute(0, 5, 3, 1, 2, 4).reshape(b, 4 * d, h // 2, w // 2)


class _Reached(Exception):
    """Raised by the block's hook: the rest of the denoiser is not needed."""


def _zeros(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(output)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """diffusers' and transformers' loading chatter (unused parts, disabled safety checker) off."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as hf_logging

    levels = diffusers_logging.get_verbosity(), hf_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(levels[0])
        hf_logging.set_verbosity(levels[1])


def _pipeline(folder: Path, kind: str, model_index: dict[str, Any], needed: tuple[str, ...], dtype: str) -> Any:
    """The pipeline with its needed parts loaded and every other part left out (None)."""
    import diffusers

    cls = getattr(diffusers, kind)
    unused: dict[str, Any] = {k: None for k, v in model_index.items()
                              if not k.startswith("_") and isinstance(v, list) and k not in needed}
    if "requires_safety_checker" in inspect.signature(cls.__init__).parameters:
        unused["requires_safety_checker"] = False
    weighted = [p for p in needed if p in DIFFUSERS_MODELS or "encoder" in p]
    safe = all(any((folder / p).glob("*.safetensors")) for p in weighted)  # else pickles the user allowed
    with _quiet():
        return cls.from_pretrained(folder, dtype=DTYPES[dtype], use_safetensors=True if safe else None, **unused)


def _block_name(denoiser: nn.Module, block: int | str | None, name: str) -> str:
    """``block`` as a module name: an int indexes the UNet's decoder blocks or the transformer's blocks."""
    unet = hasattr(denoiser, "up_blocks")
    default = "up_blocks" if unet else "transformer_blocks"
    if block is None:
        block = 0
    if isinstance(block, str) and re.fullmatch(r"\s*-?\d+\s*", block):
        block = int(block)
    if isinstance(block, int):
        count = len(getattr(denoiser, default))
        if not -count <= block < count:
            raise LowMetricError(f"block {block} is out of range for '{name}': its {default} has {count} blocks, "
                                 f"so block must be in [{-count}, {count - 1}]")
        return f"{default}.{block % count}"
    lists = ("down_blocks", "up_blocks") if unet else ("transformer_blocks",)
    choices = [f"{group}.{i}" for group in lists for i in range(len(getattr(denoiser, group)))]
    if unet and denoiser.mid_block is not None:
        choices.insert(len(denoiser.down_blocks), "mid_block")
    if block not in choices:
        raise LowMetricError(f"unknown block {block!r} for '{name}' ({type(denoiser).__name__}): use an index into "
                             f"{default} or one of {', '.join(choices)}")
    return block


def _native_size(sample_size: int | list[int] | tuple[int, int], vae_scale: int) -> tuple[int, int]:
    height, width = (sample_size, sample_size) if isinstance(sample_size, int) else sample_size
    return height * vae_scale, width * vae_scale


def _check_size(size: tuple[int, int], denoiser: nn.Module, vae_scale: int, name: str) -> None:
    """The input side must fall on whole latent cells of every UNet level, or of 2x2 patch groups."""
    if hasattr(denoiser, "up_blocks"):
        step, why = vae_scale * 2 ** sum(b.downsamplers is not None for b in denoiser.down_blocks), "UNet levels"
    else:
        step, why = vae_scale * denoiser.config.patch_size * 2, "2x2 groups of latent patches"
    if any(side % step for side in size):
        raise LowMetricError(f"resolution {size[0]}x{size[1]} does not fit '{name}': each side must be a multiple "
                             f"of {step} (VAE x{vae_scale} and its {why})")
    limit = getattr(denoiser.config, "pos_embed_max_size", None)
    if limit and max(size) // (vae_scale * denoiser.config.patch_size) > limit:
        raise LowMetricError(f"resolution {max(size)} is too large for '{name}': at most "
                             f"{limit * vae_scale * denoiser.config.patch_size} px a side")


def _noising(scheduler: Any, timestep: int, name: str) -> tuple[Callable[..., torch.Tensor], str]:
    """latents, noise, timesteps -> noised latents, by the pipeline's schedule; and its description."""
    from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler

    n = scheduler.config.num_train_timesteps
    flow = isinstance(scheduler, FlowMatchEulerDiscreteScheduler)
    top = n if flow else n - 1
    if not 0 <= timestep <= top:
        raise LowMetricError(f"timestep {timestep} is out of range for '{name}': its {type(scheduler).__name__} "
                             f"has timesteps 0..{top}")
    if flow:  # the forward process at sigma = t / N (the sampling schedule's shift does not enter it)
        flow_scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler.config, shift=1.0,
                                                                     use_dynamic_shifting=False)
        flow_scheduler.set_timesteps(sigmas=[timestep / n], timesteps=[float(timestep)])

        def flow_noising(latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
            return flow_scheduler.scale_noise(latents, timesteps, noise)

        return flow_noising, f"{type(scheduler).__name__}: flow matching, (1 - t/{n}) x + (t/{n}) noise"
    ddim = DDIMScheduler.from_config(scheduler.config)

    def ddpm_noising(latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return ddim.add_noise(latents, noise, timesteps)

    return ddpm_noising, f"{type(scheduler).__name__}: DDIMScheduler.add_noise over its betas"


def _conditioning(pipe: Any, kind: str, prompt: str, device: str) -> tuple[dict[str, torch.Tensor], str]:
    """The denoiser's conditioning inputs (batch 1), computed once, and what they are."""
    with torch.no_grad():
        if kind == SD:
            return {"encoder_hidden_states": pipe.encode_prompt(prompt, device, 1, False)[0]}, "prompt"
        if kind == SDXL:
            embeds, _, pooled, _ = pipe.encode_prompt(prompt, device=device, num_images_per_prompt=1,
                                                      do_classifier_free_guidance=False)
            return {"encoder_hidden_states": embeds, "text_embeds": pooled}, \
                "prompt (two text encoders); pooled-text and size embedding zeroed, as the paper"
        if kind == SD3:
            embeds, _, pooled, _ = pipe.encode_prompt(prompt, None, None, device=device, num_images_per_prompt=1,
                                                      do_classifier_free_guidance=False,
                                                      max_sequence_length=pipe.tokenizer_max_length)
            return {"encoder_hidden_states": embeds, "pooled_projections": pooled}, \
                "prompt (the two CLIP text encoders; zeros for T5)"
    if kind == DIT:
        null = pipe.transformer.config.num_embeds_ada_norm
        return {"class_labels": torch.tensor([null], device=device)}, f"null class ({null})"
    return {}, "the image's own CLIP image embedding"
