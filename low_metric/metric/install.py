"""Install the ``ac_score`` evaluate module into evaluate's modules cache, so that
``evaluate.load("ac_score")`` works offline from any working directory.

evaluate 0.4.6 resolves a bare name ``ac_score`` by trying the Hub (``evaluate-metric/ac_score``)
and, when that fails or ``HF_EVALUATE_OFFLINE=1`` forbids it, by importing the newest cached copy:

    $HF_MODULES_CACHE/evaluate_modules/metrics/evaluate-metric--ac_score/<64-char folder>/ac_score.py

with an ``__init__.py`` at every folder level (it imports ``evaluate_modules.metrics.
evaluate-metric--ac_score.<folder>.ac_score`` with ``$HF_MODULES_CACHE`` on ``sys.path``).
``HF_MODULES_CACHE`` defaults to ``$HF_HOME/modules`` (``~/.cache/huggingface/modules``); evaluate
reads both once, when it is imported. The folder name here is the SHA-256 of the module's bytes, so
reinstalling the same version does nothing and a new version replaces the old one.

This module does not import evaluate (slow to import); it mirrors evaluate's cache-path defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from importlib import resources
from pathlib import Path

from low_metric.core.errors import LowMetricError
from low_metric.metric import METRIC_NAME

NAMESPACE = "evaluate-metric"  # evaluate's canonical metrics: evaluate.load("ac_score") looks here


def default_modules_cache() -> Path:
    """evaluate's HF_MODULES_CACHE as evaluate would compute it from the current environment."""
    if os.environ.get("HF_MODULES_CACHE"):
        return Path(os.environ["HF_MODULES_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    hf_home = os.path.expanduser(os.environ.get("HF_HOME", os.path.join(xdg, "huggingface")))
    return Path(hf_home) / "modules"


def metric_dir(cache_dir: str | Path | None = None) -> Path:
    """The folder that holds the versions of the installed module."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_modules_cache()
    return root / "evaluate_modules" / "metrics" / f"{NAMESPACE}--{METRIC_NAME}"


def _is_version_folder(path: Path) -> bool:
    return path.is_dir() and len(path.name) == 64 and all(ch in "0123456789abcdef" for ch in path.name)


def install_metric(cache_dir: str | Path | None = None) -> Path:
    """Copy ``ac_score.py`` into evaluate's modules cache; return the installed file's path.

    ``cache_dir`` is the modules cache root (evaluate's ``HF_MODULES_CACHE``); by default the one
    evaluate would use in this environment. Idempotent; other installed versions are removed.
    """
    source = resources.files("low_metric.metric").joinpath(f"{METRIC_NAME}.py").read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_modules_cache()
    target_parent = metric_dir(root)
    try:
        target_parent.mkdir(parents=True, exist_ok=True)
        for folder in (root, root / "evaluate_modules", root / "evaluate_modules" / "metrics", target_parent):
            (folder / "__init__.py").touch(exist_ok=True)
        target = target_parent / digest
        installed = target / f"{METRIC_NAME}.py"
        if not (installed.is_file() and installed.read_bytes() == source and (target / "__init__.py").is_file()):
            staging = target_parent / f".staging-{uuid.uuid4().hex}"
            staging.mkdir()
            try:
                (staging / "__init__.py").touch()
                (staging / f"{METRIC_NAME}.py").write_bytes(source)
                meta = {"original file path": f"low_metric/metric/{METRIC_NAME}.py", "local file path": str(installed)}
                (staging / f"{METRIC_NAME}.json").write_text(json.dumps(meta))
                if target.exists():
                    shutil.rmtree(target)
                try:
                    staging.rename(target)
                except OSError:
                    if not installed.is_file():  # not a concurrent install of the same version
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        for other in target_parent.iterdir():
            if other != target and _is_version_folder(other):
                shutil.rmtree(other, ignore_errors=True)
    except OSError as exc:
        raise LowMetricError(f"cannot install the ac_score metric into {target_parent}: {exc}") from None
    return installed


def main(argv: list[str] | None = None) -> int:
    """``python -m low_metric.metric.install [MODULES_CACHE]``: install and print the path."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        print(install_metric(args[0] if args else None))
    except LowMetricError as exc:
        print(f"low-metric: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
