"""LLaVA stage-1 projectors (SPEC.md section 2, ``projector`` mode).

A LLaVA-1.5 stage-1 checkpoint on the Hub holds the ``mm_projector`` weights alone: for
``mlp2x_gelu``, ``model.mm_projector.0.{weight,bias}`` (Linear D -> 4096) and
``model.mm_projector.2.{weight,bias}`` (Linear 4096 -> 4096), with a GELU between.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from low_metric.core.errors import LowMetricError

SAFE_NAME = "mm_projector.safetensors"
PICKLED_NAME = "mm_projector.bin"
_KEY = re.compile(r"(?:^|\.)mm_projector\.(?:(\d+)\.)?(weight|bias)$")


def load_projector(source: str | Path, *, dim: int | None = None, revision: str | None = None,
                   token: str | None = None, allow_pickle: bool = False) -> nn.Module:
    """Load an ``mlpNx_gelu`` projector ([.., D] -> [.., 4096]) from a Hub repo id or a local file.

    ``mm_projector.safetensors`` is preferred; a pickled ``mm_projector.bin`` (or a local
    ``.bin``/``.pt``) loads only with ``allow_pickle=True``, then through
    ``torch.load(weights_only=True)``. ``dim``, when given, must match the projector's input size.
    """
    path = Path(source)
    if not path.is_file():
        path = _download(str(source), revision=revision, token=token, allow_pickle=allow_pickle)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(path)
    elif allow_pickle:
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        raise LowMetricError(f"projector {path.name} is a pickle: pass allow_pickle=True to load it (weights_only; "
                             "CLI --allow-pickle)")
    projector = _build(state, str(source))
    in_dim = projector[0].in_features
    if dim is not None and in_dim != dim:
        raise LowMetricError(f"projector {source} takes {in_dim}-dim tokens but the encoder gives {dim}")
    return projector.eval().requires_grad_(False)


def _download(repo_id: str, *, revision: str | None, token: str | None, allow_pickle: bool) -> Path:
    from huggingface_hub import HfApi, hf_hub_download

    from low_metric.sources.hub import hub_errors

    with hub_errors(repo_id, revision):
        info = HfApi().model_info(repo_id, revision=revision, token=token)
        files = {s.rfilename for s in info.siblings or ()}
        if SAFE_NAME in files:
            name = SAFE_NAME
        elif PICKLED_NAME in files and allow_pickle:
            name = PICKLED_NAME
        elif PICKLED_NAME in files:
            raise LowMetricError(f"'{repo_id}' holds only {PICKLED_NAME} (a pickle): pass allow_pickle=True to load it "
                                 "(weights only; CLI --allow-pickle)")
        else:
            raise LowMetricError(f"'{repo_id}' holds no {SAFE_NAME} or {PICKLED_NAME}")
        return Path(hf_hub_download(repo_id, name, revision=info.sha, token=token))


def _build(state: dict[str, torch.Tensor], source: str) -> nn.Sequential:
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if match := _KEY.search(key):
            layers.setdefault(int(match[1] or 0), {})[match[2]] = value.float()
    if sorted(layers) != list(range(0, 2 * len(layers), 2)) or any("weight" not in p for p in layers.values()):
        raise LowMetricError(f"{source} holds no mm_projector weights of LLaVA's linear or mlpNx_gelu layout")
    modules: list[nn.Module] = []
    for index in sorted(layers):
        weight = layers[index]["weight"]
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in layers[index])
        linear.load_state_dict(layers[index])
        modules += [nn.GELU(), linear] if modules else [linear]
    return nn.Sequential(*modules)
