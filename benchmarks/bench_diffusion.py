"""What the block hook's early stop saves, on Stable Diffusion 1.5's architecture (random weights).

In one run, on the same seeded image: (1) the diffusers family's features (VAE encoder, noising, the
UNet up to the output of ``up_blocks.0``, where the hook stops the pass); (2) the same VAE encoding
followed by the whole UNet forward (what a plain forward hook, without the stop, would cost). Prints
seconds per image of both and their ratio. SD1.5's UNet (860M parameters) and VAE are built from
their published configurations with random weights: nothing is downloaded.

    python benchmarks/bench_diffusion.py [--size 512] [--repeats 1] [--dtype float32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from low_metric.sources.encoders.base import DTYPES  # noqa: E402
from low_metric.sources.encoders.diffusers_family import SD, DiffusionFeatures, _noising  # noqa: E402


def sd15(dtype: torch.dtype) -> DiffusionFeatures:
    """SD1.5's VAE and UNet (their Hub configurations), randomly initialised, conditioned on zeros."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2,
                        sample_size=512)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    noising, _ = _noising(scheduler, 1, "SD1.5")
    model = DiffusionFeatures(vae, unet, "up_blocks.0", kind=SD, noising=noising, timestep=1, seed=0,
                              conditioning={"encoder_hidden_states": torch.zeros(1, 77, 768)}, image_encoder=None,
                              feature_extractor=None)
    return model.eval().to(dtype)


def timed(fn, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    args = parser.parse_args()
    model = sd15(DTYPES[args.dtype])
    pixels = (torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(
        DTYPES[args.dtype])
    timesteps = torch.ones(1, dtype=torch.long)
    context = model.encoder_hidden_states

    def stopped() -> None:
        with torch.inference_mode():
            model(pixels)

    def whole() -> None:
        with torch.inference_mode():
            posterior = model.vae.encode(pixels).latent_dist
            eps, noise = model.draws(posterior.mean.shape[1:], pixels.device)
            latents = (posterior.mean.float() + posterior.std.float() * eps) * model.vae.config.scaling_factor
            model.denoiser(model.noising(latents, noise, timesteps).to(pixels.dtype), timesteps,
                           encoder_hidden_states=context)

    with torch.inference_mode():
        grid = model(pixels)  # also the warm-up
    t_stop, t_whole = timed(stopped, args.repeats), timed(whole, args.repeats)
    print(f"SD1.5 architecture, {args.size} px, {args.dtype}, {torch.get_num_threads()} threads; "
          f"features {tuple(grid.shape[1:])}")
    print(f"VAE + UNet to up_blocks.0 (hook stops): {t_stop:.2f} s/image")
    print(f"VAE + whole UNet:                      {t_whole:.2f} s/image")
    print(f"ratio stopped / whole: {t_stop / t_whole:.2f}")


if __name__ == "__main__":
    main()
