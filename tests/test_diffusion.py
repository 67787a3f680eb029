"""Diffusion representations (SPEC.md section 1): tiny random diffusers pipelines of the paper's six
kinds, served by the Hub double under the paper's ids, loaded by id and checked against the
pipelines' own modules run by hand (diffusers' and transformers' own downloads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data

from low_metric.cli import main
from low_metric.core.errors import LowMetricError
from low_metric.hub.guard import repo_weight_bytes
from low_metric.sources.encoders import LOADS, load_encoder
from low_metric.sources.mini import load_mini
from low_metric.sources.names import EncoderRef, parse_encoder_id
from tests.conftest import ModelRepos
from tests.hub_double import HubDouble

KINDS = ("sd15", "sd21", "sdxl", "sd3", "dit", "sdim")
# (image side, grid, dim) at the tiny pipelines' native 128 px: UNet decoder block 0 of 16 channels on an
# 8 x 8 grid; transformer block 0 of 16 channels on 8 x 8 patches, 2x2 space-to-depth -> 64 x 4 x 4
SHAPES = {"sd15": (8, 16), "sd21": (8, 16), "sdxl": (8, 16), "sdim": (8, 16), "sd3": (4, 64), "dit": (4, 64)}


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    """Real photographs of different sizes and aspect ratios (scikit-image, public domain / CC0)."""
    return [Image.fromarray(data.astronaut()), Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())]


@pytest.fixture(scope="module")
def encoders(model_repos: ModelRepos) -> dict[str, object]:
    return {kind: load_encoder(getattr(model_repos, kind)) for kind in KINDS}


# ------------------------------------------------------------------------------- the reference, by hand
def draws(seed: int, shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((1, *shape), generator=generator), torch.randn((1, *shape), generator=generator)


def noised_latents(repo: str, pixels: torch.Tensor, timestep: int, seed: int, flow: bool,
                   factors: bool = True) -> torch.Tensor:
    """VAE posterior sample, shifted and scaled (unless not ``factors``), noised by the schedule written
    out from its config."""
    from diffusers import AutoencoderKL
    from huggingface_hub import hf_hub_download

    vae = AutoencoderKL.from_pretrained(repo, subfolder="vae").eval()
    posterior = vae.encode(pixels).latent_dist
    eps, noise = draws(seed, posterior.mean.shape[1:])
    latents = posterior.mean + posterior.std * eps
    if factors:
        latents = (latents - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor
    config = json.loads(Path(hf_hub_download(repo, "scheduler/scheduler_config.json")).read_text())
    n = config["num_train_timesteps"]
    if flow:  # x_t = (1 - sigma) x_0 + sigma noise, sigma = t / N
        return (1 - timestep / n) * latents + timestep / n * noise
    if config["beta_schedule"] == "scaled_linear":
        betas = np.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, n, dtype=np.float64) ** 2
    else:
        betas = np.linspace(config["beta_start"], config["beta_end"], n, dtype=np.float64)
    alpha_bar = float(np.cumprod(1 - betas)[timestep])
    return alpha_bar ** 0.5 * latents + (1 - alpha_bar) ** 0.5 * noise


def prompt_states(repo: str, part: str, prompt: str, layer: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A text encoder's hidden states for the prompt (last normed output, or ``hidden_states[layer]``) and its
    projected pooled embedding (None without projection)."""
    from huggingface_hub import hf_hub_download
    from transformers import AutoModel, CLIPTextModelWithProjection, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(repo, subfolder=part.replace("text_encoder", "tokenizer"))
    ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    config = json.loads(Path(hf_hub_download(repo, f"{part}/config.json")).read_text())
    cls = CLIPTextModelWithProjection if "WithProjection" in config["architectures"][0] else AutoModel
    model = cls.from_pretrained(repo, subfolder=part).eval()
    out = model(ids, output_hidden_states=True)
    states = out.last_hidden_state if layer is None else out.hidden_states[layer]
    return states, getattr(out, "text_embeds", None)


def unet_to_decoder_block_0(repo: str, noisy: torch.Tensor, timestep: int, context: torch.Tensor) -> torch.Tensor:
    """UNet2DConditionModel up to the output of up_blocks[0], without the added (SDXL) embedding."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(repo, subfolder="unet").eval()
    t = torch.full((noisy.shape[0],), timestep, dtype=torch.long)
    emb = unet.time_embedding(unet.time_proj(t))
    x = unet.conv_in(noisy)
    residuals = (x,)
    for down in unet.down_blocks:
        if getattr(down, "has_cross_attention", False):
            x, res = down(hidden_states=x, temb=emb, encoder_hidden_states=context)
        else:
            x, res = down(hidden_states=x, temb=emb)
        residuals += res
    x = unet.mid_block(x, emb, encoder_hidden_states=context)
    up = unet.up_blocks[0]
    res = residuals[-len(up.resnets):]
    if getattr(up, "has_cross_attention", False):
        return up(hidden_states=x, temb=emb, res_hidden_states_tuple=res, encoder_hidden_states=context)
    return up(hidden_states=x, temb=emb, res_hidden_states_tuple=res)


def unfold_2x2(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The official code's space-to-depth of [B, h*w, D] tokens: unfold columns, then rows."""
    b = tokens.shape[0]
    grid = tokens.transpose(2, 1).reshape(b, -1, h, w)
    grid = grid.unfold(3, 2, 2).unfold(2, 2, 2)
    return grid.reshape(b, -1, h // 2, w // 2, 4).permute(0, 4, 1, 2, 3).reshape(b, -1, h // 2, w // 2)


def reference(kind: str, repo: str, pixels: torch.Tensor, timestep: int = 1, seed: int = 0) -> torch.Tensor:
    """The chosen block's output [B, D, h, w], from the pipeline's modules run by hand."""
    noisy = noised_latents(repo, pixels, timestep, seed, flow=kind == "sd3")
    b = noisy.shape[0]
    if kind in ("sd15", "sd21"):
        context = prompt_states(repo, "text_encoder", "", None)[0]
        return unet_to_decoder_block_0(repo, noisy, timestep, context.expand(b, -1, -1))
    if kind == "sdxl":  # penultimate states of both encoders, side by side
        one, two = prompt_states(repo, "text_encoder", "", -2)[0], prompt_states(repo, "text_encoder_2", "", -2)[0]
        return unet_to_decoder_block_0(repo, noisy, timestep, torch.cat([one, two], -1).expand(b, -1, -1))
    if kind == "sdim":
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        crop = CLIPImageProcessor.from_pretrained(repo, subfolder="feature_extractor")
        clip = F.interpolate((pixels + 1) / 2, size=(crop.crop_size["height"], crop.crop_size["width"]), mode="bicubic")
        clip = (clip - torch.tensor(crop.image_mean).view(1, 3, 1, 1)) / torch.tensor(crop.image_std).view(1, 3, 1, 1)
        embeds = CLIPVisionModelWithProjection.from_pretrained(repo, subfolder="image_encoder").eval()(clip).image_embeds
        return unet_to_decoder_block_0(repo, noisy, timestep, embeds[:, None])
    t = torch.full((b,), timestep, dtype=torch.long)
    h, w = noisy.shape[-2] // 2, noisy.shape[-1] // 2
    if kind == "dit":
        from diffusers import DiTTransformer2DModel

        dit = DiTTransformer2DModel.from_pretrained(repo, subfolder="transformer").eval()
        null = torch.full((b,), dit.config.num_embeds_ada_norm, dtype=torch.long)
        tokens = dit.transformer_blocks[0](dit.pos_embed(noisy), timestep=t, class_labels=null)
        return unfold_2x2(tokens, h, w)
    from diffusers import SD3Transformer2DModel

    mmdit = SD3Transformer2DModel.from_pretrained(repo, subfolder="transformer").eval()
    (one, pooled_one), (two, pooled_two) = (prompt_states(repo, p, "", -2) for p in ("text_encoder", "text_encoder_2"))
    clip = torch.cat([one, two], -1)
    joint = mmdit.config.joint_attention_dim
    context = torch.cat([F.pad(clip, (0, joint - clip.shape[-1])), torch.zeros(1, clip.shape[1], joint)], 1)
    temb = mmdit.time_text_embed(t, torch.cat([pooled_one, pooled_two], -1).expand(b, -1))
    _, tokens = mmdit.transformer_blocks[0](hidden_states=mmdit.pos_embed(noisy),
                                            encoder_hidden_states=mmdit.context_embedder(context.expand(b, -1, -1)),
                                            temb=temb)
    return unfold_2x2(tokens, h, w)


# ------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("kind", KINDS)
def test_block_output_equals_the_denoiser_run_by_hand(kind, encoders, model_repos, images):
    encoder = encoders[kind]
    side, dim = SHAPES[kind]
    assert (encoder.library, encoder.image_size, encoder.grid, encoder.dim) == ("diffusers", (128, 128), (side, side), dim)
    pixels = encoder.preprocess(images)
    assert pixels.shape == (3, 3, 128, 128) and pixels.min() >= -1 and pixels.max() <= 1
    tokens = encoder.forward(pixels)
    assert tokens.shape == (3, side * side, dim) and tokens.dtype == torch.float32
    with torch.no_grad():
        expected = reference(kind, getattr(model_repos, kind), pixels)
    torch.testing.assert_close(tokens, expected.flatten(2).transpose(1, 2), rtol=1e-4, atol=1e-4)
    p = encoder.protocol
    assert (p["timestep"], p["prompt"], p["seed"]) == (1, "", 0)
    assert p["block"] == ("transformer_blocks.0" if kind in ("sd3", "dit") else "up_blocks.0")
    assert p["space_to_depth"] == (2 if kind in ("sd3", "dit") else 1)
    assert len(p["revision"]) == 40


def test_the_vae_scaling_and_shift_factors_reach_the_denoiser(encoders, model_repos, images):
    """The denoiser's input is the noised (z - shift) * scale; without them it would differ."""
    encoder = encoders["sd3"]  # scaling 1.5, shift 0.1
    seen = []
    handle = encoder.model.denoiser.register_forward_pre_hook(lambda module, args, kwargs: seen.append(args[0]),
                                                               with_kwargs=True)
    try:
        encoder.encode(images[:1])
    finally:
        handle.remove()
    pixels = encoder.preprocess(images[:1])
    with torch.no_grad():
        expected = noised_latents(model_repos.sd3, pixels, 1, 0, flow=True)
        unscaled = noised_latents(model_repos.sd3, pixels, 1, 0, flow=True, factors=False)
    torch.testing.assert_close(seen[0], expected, rtol=1e-5, atol=1e-5)
    assert (seen[0] - unscaled).abs().max() > 0.1
    assert encoder.protocol["latents"] == {"posterior": "sample", "scaling_factor": 1.5, "shift_factor": 0.1}


def test_same_seed_same_tokens_other_seed_or_timestep_other_tokens(encoders, model_repos, images):
    first = encoders["sd15"].encode(images)
    again = load_encoder(model_repos.sd15).encode(images)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    alone = encoders["sd15"].encode(images[1:2])  # an image's tokens do not depend on its batch
    torch.testing.assert_close(first[1:2], alone, rtol=1e-5, atol=1e-5)
    other_seed = load_encoder(model_repos.sd15, seed=1)
    later = load_encoder(model_repos.sd15, timestep=500)
    assert other_seed.protocol["seed"] == 1 and later.protocol["timestep"] == 500
    for other in (other_seed, later):
        assert (other.encode(images) - first).abs().max() > 1e-3
    with torch.no_grad():
        expected = reference("sd15", model_repos.sd15, later.preprocess(images), timestep=500)
    torch.testing.assert_close(later.encode(images), expected.flatten(2).transpose(1, 2), rtol=1e-4, atol=1e-4)


def test_blocks_by_name_or_index_and_a_prompt(encoders, model_repos, images):
    by_index = load_encoder(model_repos.sd15, block=-1)
    assert by_index.protocol["block"] == "up_blocks.2" and by_index.grid == (16, 16)  # the last decoder block
    mid = load_encoder(model_repos.sd15, block="mid_block")
    assert mid.protocol["block"] == "mid_block" and mid.grid == (4, 4) and mid.dim == 16
    down = load_encoder(model_repos.sd15, block="down_blocks.0")  # (hidden, residuals): the hidden states
    assert down.grid == (8, 8) and down.dim == 8
    second = load_encoder(model_repos.dit, block="1")
    assert second.protocol["block"] == "transformer_blocks.1" and second.grid == (4, 4)
    cat = load_encoder(model_repos.sd15, prompt="a cat")
    assert cat.protocol["prompt"] == "a cat"
    assert (cat.encode(images[:1]) - encoders["sd15"].encode(images[:1])).abs().max() > 1e-4


@pytest.mark.parametrize(("kind", "side", "grid"), [("dit", 192, 6), ("sd15", 192, 12)])
def test_another_resolution(kind, side, grid, model_repos, images):
    encoder = load_encoder(getattr(model_repos, kind), resolution=side)
    assert encoder.image_size == (side, side) and encoder.grid == (grid, grid)
    assert encoder.protocol["resolution"] == [side, side]
    pixels = encoder.preprocess(images[:2])
    with torch.no_grad():
        expected = reference(kind, getattr(model_repos, kind), pixels)
    torch.testing.assert_close(encoder.forward(pixels), expected.flatten(2).transpose(1, 2), rtol=1e-4, atol=1e-4)


def test_the_840_frame_is_padded_not_stretched(encoders, images):
    encoder = encoders["dit"]
    square = encoder.preprocess([images[2]], square=True)  # coffee: 400 x 600, wider than tall
    assert square.shape == (1, 3, 128, 128)
    top, bottom = square[0, :, :20], square[0, :, -20:]
    assert torch.all(top == -1) and torch.all(bottom == -1) and square[0, :, 50:78].std() > 0.1
    native = encoder.preprocess([images[2]])
    assert native.shape == (1, 3, 128, 128) and native[0, :, :20].std() > 0.1  # the pipeline's resize fills it


def test_only_the_parts_needed_are_fetched(hub: HubDouble, encoders, model_repos):
    from huggingface_hub import scan_cache_dir

    def fetched(kind: str) -> set[str]:
        (repo,) = [r for r in scan_cache_dir().repos if r.repo_id == getattr(model_repos, kind)]
        (revision,) = [r for r in repo.revisions if r.commit_hash == encoders[kind].revision]
        return {f.file_path.relative_to(revision.snapshot_path).as_posix() for f in revision.files}

    sd3 = fetched("sd3")
    assert "transformer/diffusion_pytorch_model.safetensors" in sd3 and "text_encoder_2/model.safetensors" in sd3
    assert not any(f.startswith("text_encoder_3/") for f in sd3) and "text_encoder_3/model.safetensors" in hub.files(model_repos.sd3)
    sd15 = fetched("sd15")
    assert {"unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
            "text_encoder/model.safetensors", "tokenizer/tokenizer.json", "model_index.json"} <= sd15
    assert not any(f.startswith("safety_checker/") or ".fp16." in f for f in sd15)
    # the guard counts the same parts, before any download
    for kind, files in (("sd3", sd3), ("sd15", sd15)):
        ref = EncoderRef(None, False, getattr(model_repos, kind), None)
        expected = sum(len(hub.read(ref.target, f)) for f in files if f.endswith(".safetensors"))
        assert repo_weight_bytes(ref) == expected


def test_pickle_only_weights_load_only_when_allowed(encoders, model_repos, images):
    with pytest.raises(LowMetricError, match="only pickled weights for its") as info:
        load_encoder(model_repos.sd_pickle_only)
    assert "\n" not in str(info.value)
    pickled = load_encoder(model_repos.sd_pickle_only, allow_pickle=True)  # the same weights as sd15
    torch.testing.assert_close(pickled.encode(images[:1]), encoders["sd15"].encode(images[:1]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("repo", "kwargs", "message"), [
    ("sd15", {"block": "up_blocks.9"}, "unknown block 'up_blocks.9'"),
    ("sd15", {"block": "conv_in"}, "use an index into up_blocks or one of down_blocks.0"),
    ("dit", {"block": 2}, "block 2 is out of range"),
    ("sd15", {"timestep": 1000}, "timestep 1000 is out of range"),
    ("sd3", {"timestep": -1}, "has timesteps 0..1000"),
    ("ddpm", {}, "is a DDPMPipeline pipeline: low_metric scores diffusers pipelines of the kinds"),
    ("dit", {"prompt": "a cat"}, "it takes no prompt"),
    ("sd15", {"resolution": 100}, "each side must be a multiple of 32"),
    ("sd15", {"timestep": 1.5}, "timestep must be an int"),
])
def test_bad_input_is_one_line(repo, kwargs, message, model_repos):
    with pytest.raises(LowMetricError) as info:
        load_encoder(getattr(model_repos, repo), **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_library_prefix_and_concatenation(encoders, model_repos, images):
    assert parse_encoder_id(f"diffusers:{model_repos.dit}") == [EncoderRef("diffusers", False, model_repos.dit, None)]
    assert load_encoder(f"diffusers:{model_repos.dit}").protocol == encoders["dit"].protocol
    with pytest.raises(LowMetricError, match="has no model_index.json"):
        load_encoder(f"diffusers:{model_repos.clip224}")
    both = load_encoder(f"{model_repos.clip224}+{model_repos.sd15}")
    assert both.grid == (16, 16) and both.dim == 32 + 16
    tokens = both.encode(images)
    sd = encoders["sd15"].encode(images).transpose(1, 2).reshape(3, 16, 8, 8)
    resampled = F.interpolate(sd, size=(16, 16), mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(tokens[..., 32:], resampled, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["sdxl", "dit"])
def test_bfloat16_stays_close_to_float32(kind, encoders, model_repos, images):
    """The noising runs in float32 (in bfloat16, 1 - alpha_bar at t = 1 rounds off: cosine 0.8 here)."""
    half = load_encoder(getattr(model_repos, kind), dtype="bfloat16")
    assert half.protocol["dtype"] == "bfloat16" and half.model.vae.dtype == torch.bfloat16
    full = encoders[kind].encode(images[:2])
    assert F.cosine_similarity(full, half.encode(images[:2]), dim=-1).min() > 0.99


def test_the_scorer_gives_a_and_c_through_the_cache(model_repos, tmp_path):
    out, cache = tmp_path / "results.json", tmp_path / "cache"
    encoder = f"{model_repos.clip224}+{model_repos.dit}"
    args = ["score", encoder, model_repos.sd15, "--reference", model_repos.clip224, "--timestep", "5",
            "--block", "up_blocks.1", "--seed", "3", "--prompt", "a photo", "--limit", "3", "--cache-dir", str(cache),
            "--output", str(out)]
    assert main(args) == 2  # DiT takes no prompt: refused, nothing written
    assert not out.exists()
    args[args.index("--prompt"):args.index("--prompt") + 2] = []
    args[args.index("--block") + 1] = "1"
    assert main(args) == 0
    records = {r["encoder"]: r for r in json.loads(out.read_text())["results"]}
    mini = load_mini(limit=3)
    n = len(mini.images)
    for record in records.values():
        assert np.isfinite(record["A"]["A"]) and 0 < record["A"]["A"] <= 1 + 1e-6
        assert 0 <= record["C"]["C"] <= 100 and record["C"]["pairs"] == len(mini.pairs)
        assert record["counts"]["encoded"] == 2 * n
    sd = records[model_repos.sd15]["encoder_protocol"]
    assert (sd["timestep"], sd["block"], sd["seed"], sd["prompt"]) == (5, "up_blocks.1", 3, "")
    dit = records[encoder]["encoder_protocol"]["parts"][1]
    assert (dit["timestep"], dit["block"], dit["seed"]) == (5, "transformer_blocks.1", 3)
    loads = dict(LOADS)
    assert main(args) == 0
    again = {r["encoder"]: r for r in json.loads(out.read_text())["results"]}
    for name, record in again.items():
        assert record["counts"]["encoded"] == 0 and record["counts"]["from_cache"] == 2 * n
        assert record["A"] == records[name]["A"] and record["C"] == records[name]["C"]
        assert record["encoder_protocol"] == records[name]["encoder_protocol"]
    # the pipelines cannot be described without their weights: the first run's loaded protocols
    # were remembered by commit, so the warm rerun built none of them (nor the reference)
    assert dict(LOADS) == loads
    args[args.index("--limit") + 1] = "4"  # one more image to encode: loaded, and its protocol is the remembered one
    assert main(args) == 0
    assert LOADS[model_repos.sd15] == loads[model_repos.sd15] + 1


def test_two_processes_give_the_numbers_of_one(model_repos, tmp_path):
    args = ["score", model_repos.sd3, "--no-alignment", "--seed", "7", "--limit", "4"]
    one = tmp_path / "one.json"
    assert main([*args, "--output", str(one), "--cache-dir", str(tmp_path / "c1")]) == 0
    two = tmp_path / "two.json"
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "low_metric.cli"]
    proc = subprocess.run([*launch, *args, "--output", str(two), "--cache-dir", str(tmp_path / "c2")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (r1,), (r2,) = (json.loads(p.read_text())["results"] for p in (one, two))
    assert min(r2["counts"]["encoded_per_process"]) > 0
    assert r1["C"]["C"] == pytest.approx(r2["C"]["C"], abs=1e-5)
    for cat, row in r1["C"]["per_category"].items():
        assert row["pck@0.1"] == pytest.approx(r2["C"]["per_category"][cat]["pck@0.1"], abs=1e-5)
