"""low_metric: choose the vision encoder of a multimodal LLM from its A and C scores.

The math of the "Law of Vision Representation in MLLMs" (Yang et al., arXiv 2408.16357):
the A score (alignment with CLIP), the C score (SPair-style keypoint correspondence), the law
that predicts benchmark scores from them, and the AC policy; encoders by name and the scorer.

Layers, each a folder that imports only the ones before it: ``core`` (pure math), ``sources``
(encoders, data), ``scoring`` (cache, scorer, results), ``hub`` (cards, results dataset, guard);
the faces above them: ``cli``, ``metric`` (the evaluate module), the Space, ``hub_scripts``.
"""

from low_metric.scoring.results import VERSION as __version__

_LAZY = {  # name -> module: importing low_metric (and the CLI's --help) loads no torch until asked
    **dict.fromkeys(("a_score", "alignment_per_image", "ridge_a_score"), "low_metric.core.alignment"),
    **dict.fromkeys(("PckTable", "descriptor_grid", "match_keypoints", "pck"), "low_metric.core.correspondence"),
    **dict.fromkeys(("LowMetricError", "Refused"), "low_metric.core.errors"),
    **dict.fromkeys(("Law", "fit_law", "loo_errors"), "low_metric.core.law"),
    **dict.fromkeys(("recommend", "simulate"), "low_metric.core.policy"),
    **dict.fromkeys(("load_table", "paper_table"), "low_metric.sources.tables"),
    "load_encoder": "low_metric.sources.encoders",
    "load_projector": "low_metric.sources.projector",
    **dict.fromkeys(("ScoreConfig", "Scorer", "score_encoders"), "low_metric.scoring.scorer"),
}

__all__ = [
    "Law",
    "LowMetricError",
    "PckTable",
    "Refused",
    "ScoreConfig",
    "Scorer",
    "__version__",
    "a_score",
    "alignment_per_image",
    "descriptor_grid",
    "fit_law",
    "load_encoder",
    "load_projector",
    "load_table",
    "loo_errors",
    "match_keypoints",
    "paper_table",
    "pck",
    "recommend",
    "ridge_a_score",
    "score_encoders",
    "simulate",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'low_metric' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
