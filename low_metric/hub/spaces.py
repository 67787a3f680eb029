"""Space folders that build from their own files: the app, its card, requirements and the library.

A Space installs ``requirements.txt`` before the rest of its files are in place, and ``low_metric``
is on no package index, so the library's source travels inside the Space, next to ``app.py``
(``python app.py`` imports it from there), and ``requirements.txt`` lists the library's own
dependencies. The card's front matter gets what the Hub reads from it: ``python_version`` (ZeroGPU
runs 3.10 or 3.12 only), the ``models`` and ``datasets`` the Space uses, and ``preload_from_hub``
(the references' files fetched at build time, so start-up reads them from disk).
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from low_metric.core.errors import LowMetricError
from low_metric.hub.card import HubIds
from low_metric.scoring.results import VERSION

PYTHON_VERSION = "3.12"  # ZeroGPU runs Python 3.10.13 or 3.12.12 only (hub-docs spaces-zerogpu.md)
ZEROGPU_TORCH = ("2.1.0", "2.1.1", "2.1.2", "2.2.0", "2.2.2", "2.4.0", "2.5.1", "2.6.0", "2.7.1", "2.8.0")  # and newer
PACKAGE = Path(__file__).resolve().parents[1]  # the low_metric package
SPACE_TEMPLATE = PACKAGE.parent / "space"  # the app's page and card in a source checkout
METRIC_FOLDER = PACKAGE / "metric"
VERSION_STAMP = "VERSION"  # a copy's version, read by low_metric.scoring.results off an install
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
_REFERENCE_FILES = ["config.json", "preprocessor_config.json", "model.safetensors"]  # of a transformers CLIP reference
_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


def library_requirements() -> list[str]:
    """The library's runtime requirements: ``pyproject.toml`` in a source checkout, else the installed metadata."""
    pyproject = PACKAGE.parent / "pyproject.toml"
    if pyproject.is_file() and sys.version_info >= (3, 11):
        import tomllib

        return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    return [r for r in metadata.requires("low_metric") or [] if "extra ==" not in r]


def requirements_text() -> str:
    """``requirements.txt`` of a Space: the library's dependencies, whose torch floor must be a release ZeroGPU runs."""
    requirements = library_requirements()
    torch = next((r for r in requirements if re.match(r"torch\s*[<>=!~]", r)), "")
    floor = re.search(r">=\s*([\d.]+)", torch)
    if floor is None or not any(f"{v}.".startswith(f"{floor[1]}.") for v in ZEROGPU_TORCH):
        raise LowMetricError(f"the library's torch requirement {torch!r} has no floor among the releases ZeroGPU "
                             f"runs ({', '.join(ZEROGPU_TORCH)})")
    lines = ["# low_metric's dependencies (the library itself is this Space's low_metric/ folder)", *requirements]
    return "\n".join(lines) + "\n"


def copy_library(target: Path) -> Path:
    """The package's source (no caches, no tests) as ``target/low_metric``, stamped with its version."""
    dest = target / "low_metric"
    shutil.copytree(PACKAGE, dest, ignore=_IGNORED)
    (dest / VERSION_STAMP).write_text(VERSION + "\n")
    return dest


def _card(template: Path, updates: dict[str, Any]) -> str:
    text = template.read_text(encoding="utf-8")
    match = _FRONT.match(text)
    if match is None:
        raise LowMetricError(f"{template}: no YAML front matter")
    front = yaml.safe_load(match[1]) | {k: v for k, v in updates.items() if v}
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=10_000) + "---\n" + text[match.end():]


def empty_folder(out: str | Path) -> Path:
    """``out``, created, once it is known to be a new or empty folder (a build never mixes with old files)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LowMetricError(f"{out} is not an empty folder: write into a new one")
    out.mkdir(parents=True, exist_ok=True)
    return out


def build_app_space(out: str | Path, *, references: Sequence[str], ids: HubIds = HubIds(),
                    results_dataset: str | None = None, template: Path = SPACE_TEMPLATE) -> Path:
    """The encoder-scoring Space (``space/``) as a folder that builds on its own; returns it."""
    if not (template / "app.py").is_file():
        raise LowMetricError(f"{template}: no app.py (the Space's page lives in a source checkout's space/ folder)")
    out = empty_folder(out)
    shutil.copy2(template / "app.py", out / "app.py")
    copy_library(out)
    files = ",".join(_REFERENCE_FILES)
    (out / "README.md").write_text(_card(template / "README.md", {
        "python_version": PYTHON_VERSION,
        "models": list(references),
        "datasets": [ids.mini, *([ids.spair] if ids.spair else []), *([results_dataset] if results_dataset else [])],
        "preload_from_hub": [f"{ref} {files}" for ref in references],
    }), encoding="utf-8")
    (out / "requirements.txt").write_text(requirements_text(), encoding="utf-8")
    return out


def build_metric_space(out: str | Path) -> Path:
    """The ``ac_score`` evaluate module's Space (``low_metric/metric/``) as a folder that builds on its own."""
    out = empty_folder(out)
    for name in ("ac_score.py", "app.py"):
        shutil.copy2(METRIC_FOLDER / name, out / name)
    copy_library(out)
    (out / "README.md").write_text(_card(METRIC_FOLDER / "README.md", {"python_version": PYTHON_VERSION}),
                                   encoding="utf-8")
    (out / "requirements.txt").write_text(requirements_text(), encoding="utf-8")
    return out
