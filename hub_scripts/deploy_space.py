"""Deploy the encoder-scoring Space (space/app.py) to the Hub, as a folder that builds on its own.

  python hub_scripts/deploy_space.py --space-id org/low-metric --results-dataset org/encoder-results
  python hub_scripts/deploy_space.py --local-dir build/space          # inspect it (or run it: python app.py)

The Space gets app.py, its card (python_version, models, datasets, preload_from_hub for the CLIP
references), requirements.txt (the library's dependencies) and the library's source (low_metric/).
It is created if missing (sdk gradio); unchanged files are not re-sent, files the library no longer
has are deleted.
"""

from __future__ import annotations

from pathlib import Path

from _common import (
    REPO_ROOT,
    add_folder_arguments,
    build_and_publish,
    parser,
    print_outcomes,
    run,
)

from low_metric.hub.card import HubIds
from low_metric.hub.spaces import build_app_space
from low_metric.scoring.scorer import DEFAULT_REFERENCES

REQUIRED = ("README.md", "app.py", "requirements.txt", "low_metric/__init__.py")


def main() -> int:
    p = parser(__doc__)
    add_folder_arguments(p, "space", "org/low-metric")
    p.add_argument("--folder", default=str(REPO_ROOT / "space"), help="the Space's page and card (default: the repo's space/)")
    p.add_argument("--results-dataset", metavar="ID", help="the results dataset its leaderboard reads (listed in the card; "
                   "set LOW_METRIC_RESULTS_DATASET in the Space's variables too)")
    p.add_argument("--mini-dataset", metavar="ID", default=HubIds.mini, help=f"the mini benchmark's Hub id (default {HubIds.mini})")
    p.add_argument("--spair-dataset", metavar="ID", help="the Hub copy of SPair-71k, if the Space scores on it")
    args = p.parse_args()
    ids = HubIds(mini=args.mini_dataset, spair=args.spair_dataset)

    def build(out: Path) -> Path:
        return build_app_space(out, references=DEFAULT_REFERENCES, ids=ids, results_dataset=args.results_dataset,
                               template=Path(args.folder))

    print_outcomes([build_and_publish(args, "space", build, repo_type="space", required=REQUIRED,
                                      message="Deploy the low_metric Space")])
    return 0


if __name__ == "__main__":
    run(main)
