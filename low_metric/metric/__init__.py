"""The `evaluate` face of low_metric: the ``ac_score`` metric module, its card and its Space app.

The files here are resources as much as code: ``ac_score.py`` is copied into evaluate's modules
cache by :func:`low_metric.metric.install.install_metric` (so ``evaluate.load("ac_score")`` works
offline), and ``ac_score.py``, ``app.py`` and ``README.md`` (the metric card), with the library's
source and its requirements, form the metric's Hugging Face Space
(:func:`low_metric.hub.spaces.build_metric_space`). Nothing is imported here: loading evaluate or
gradio is slow.
"""

from importlib import resources
from pathlib import Path

METRIC_NAME = "ac_score"
SPACE_FILES = ("ac_score.py", "app.py", "README.md", "requirements.txt", "low_metric/__init__.py")


def metric_file() -> Path:
    """Path of ``ac_score.py`` as installed (``evaluate.load(str(metric_file()))`` loads it by path)."""
    return Path(str(resources.files(__name__).joinpath(f"{METRIC_NAME}.py")))
