"""low_metric: choose the vision encoder of a multimodal LLM from its A and C scores.

The math of the "Law of Vision Representation in MLLMs" (Yang et al., arXiv 2408.16357):
the A score (alignment with CLIP), the C score (SPair-style keypoint correspondence), the law
that predicts benchmark scores from them, and the AC policy.
"""

from importlib.metadata import PackageNotFoundError, version

from .alignment import a_score, alignment_per_image, ridge_a_score
from .correspondence import PckTable, descriptor_grid, match_keypoints, pck
from .errors import LowMetricError
from .law import Law, fit_law, loo_errors
from .policy import recommend, simulate
from .tables import load_table, paper_table

try:
    __version__ = version("low_metric")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Law",
    "LowMetricError",
    "PckTable",
    "__version__",
    "a_score",
    "alignment_per_image",
    "descriptor_grid",
    "fit_law",
    "load_table",
    "loo_errors",
    "match_keypoints",
    "paper_table",
    "pck",
    "recommend",
    "ridge_a_score",
    "simulate",
]
