"""The declared dependency floors of low_metric, as an overlay environment (used by scripts/check_floors.sh).

``--pins``: the pip specs to install into the overlay: the floor (``>=X`` in pyproject.toml) of each
library whose API low_metric calls, plus the companions those floors need (packages they pin that the
main environment has at a version they refuse). Without arguments: check the overlay (on PYTHONPATH) is
what Python imports, and that every distribution visible (the overlay's, and the main environment's
not shadowed by it) has its requirements met. Exit 1 naming each problem.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = Path(os.environ.get("LOW_METRIC_FLOORS", ROOT / ".venv-floors")).resolve()
FLOORED = {"transformers": "transformers", "timm": "timm", "open_clip_torch": "open_clip", "diffusers": "diffusers",
           "huggingface_hub": "huggingface_hub", "evaluate": "evaluate", "datasets": "datasets", "gradio": "gradio",
           "accelerate": "accelerate"}
COMPANIONS = {  # what the floors pin that the main environment (newest releases) does not meet
    "tokenizers": "0.22.2",  # transformers 5.6: tokenizers<=0.23.0 (0.23.0 itself was never released)
    "gradio_client": "2.4.0",  # gradio 6.11: gradio-client==2.4.0
    "fsspec": "2026.4.0",  # datasets 5.0: fsspec<=2026.4.0
    "aiofiles": "24.1.0",  # gradio 6.11: aiofiles<25.0 (newer gradio dropped it)
    "ffmpy": "1.0.0",  # gradio 6.11 (newer gradio dropped it)
    "tomlkit": "0.13.3",  # gradio 6.11: tomlkit<0.14.0
}
UNCHECKED = {  # requirements of the floors that the tests' code paths never import
    "typer-slim": "the `hf` and `transformers` command lines only; it would shadow the `typer` gradio imports",
}


def floors() -> dict[str, str]:
    """``{distribution: floor}`` of the floored libraries, from pyproject.toml's dependencies."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    found = {}
    for dep in map(Requirement, deps):
        name = canonicalize_name(dep.name)
        if name in {canonicalize_name(n) for n in FLOORED}:
            lows = [s.version for s in dep.specifier if s.operator == ">="]
            if len(lows) != 1:
                raise SystemExit(f"pyproject.toml: {dep} needs one >= floor")
            found[name] = lows[0]
    missing = {canonicalize_name(n) for n in FLOORED} - set(found)
    if missing:
        raise SystemExit(f"pyproject.toml declares no floor for {', '.join(sorted(missing))}")
    return found


def direct_dependencies() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {canonicalize_name(Requirement(d).name) for d in deps}


def pins() -> list[str]:
    return [f"{name}=={version}" for name, version in {**floors(), **COMPANIONS}.items()]


def visible() -> dict[str, metadata.Distribution]:
    """The distribution Python imports for each name: the first on sys.path (the overlay wins)."""
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        found.setdefault(name, dist)
    return found


def check() -> list[str]:
    problems = []
    dists = visible()
    wanted = {**floors(), **{canonicalize_name(k): v for k, v in COMPANIONS.items()}}
    for name, version in wanted.items():
        if name not in dists or Version(dists[name].version) != Version(version):
            problems.append(f"{name}: {dists[name].version if name in dists else 'missing'} visible, {version} wanted")
    requirers = set(wanted) | direct_dependencies()  # the floors, and what else low_metric itself depends on
    for name in sorted(requirers & set(dists)):
        dist = dists[name]
        for text in dist.requires or []:
            req = Requirement(text)
            if (req.marker is not None and not req.marker.evaluate({"extra": ""})) or req.name in UNCHECKED:
                continue
            target = dists.get(canonicalize_name(req.name))
            if target is None or not req.specifier.contains(Version(target.version), prereleases=True):
                have = target.version if target else "missing"
                problems.append(f"{name} {dist.version} requires {req}, has {have}")
    for module in FLOORED.values():
        try:
            file = Path(importlib.import_module(module).__file__).resolve()
        except ImportError as exc:
            problems.append(f"{module} does not import: {exc}")
            continue
        if OVERLAY not in file.parents:
            problems.append(f"{module} is imported from {file}, not from the overlay {OVERLAY}")
    return problems


if __name__ == "__main__":
    if sys.argv[1:] == ["--pins"]:
        print(" ".join(pins()))
        raise SystemExit(0)
    issues = check()
    for issue in issues:
        print(f"check_floors: {issue}", file=sys.stderr)
    print("floors: " + ", ".join(f"{name} {dist.version}" for name, dist in sorted(visible().items())
                                 if name in floors() or name in map(canonicalize_name, COMPANIONS)))
    raise SystemExit(1 if issues else 0)
