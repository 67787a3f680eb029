"""Publish the evaluate metric (low_metric/metric: ac_score.py, its card, app.py) as a Gradio Space.

  python hub_scripts/publish_metric.py --space-id org/ac_score
  python hub_scripts/publish_metric.py --local-dir build/ac_score      # inspect it (or run it: python app.py)

The Space builds on its own: the module, the card, the app, requirements.txt (the library's
dependencies) and the library's source (low_metric/), which ac_score.py imports. Then
evaluate.load("org/ac_score") works wherever low_metric is installed. Uses huggingface_hub directly
(evaluate's push_to_hub cannot open pull requests and fails on huggingface_hub 2.x); the Space is
created if missing (sdk gradio), unchanged files are not re-sent.
"""

from __future__ import annotations

from _common import add_folder_arguments, build_and_publish, parser, print_outcomes, run

from low_metric.hub.spaces import build_metric_space
from low_metric.metric import SPACE_FILES as REQUIRED


def main() -> int:
    p = parser(__doc__)
    add_folder_arguments(p, "space", "org/ac_score")
    args = p.parse_args()
    print_outcomes([build_and_publish(args, "space", build_metric_space, repo_type="space", required=REQUIRED,
                                      message="Update the ac_score metric")])
    return 0


if __name__ == "__main__":
    run(main)
