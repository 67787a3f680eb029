"""Publish the evaluate metric folder (low_metric/metric: ac_score.py, its card, app.py) as a Gradio Space.

  python hub_scripts/publish_metric.py --space-id org/ac_score
  python hub_scripts/publish_metric.py --space-id org/ac_score --create-pr --dry-run

Uses huggingface_hub directly (evaluate's push_to_hub cannot open pull requests and fails on
huggingface_hub 2.x): the Space is created if missing (sdk gradio), unchanged files are not re-sent.
"""

from __future__ import annotations

from pathlib import Path

from _common import parser, print_outcomes, run

import low_metric.metric
from low_metric.hub.publish import publish_folder
from low_metric.metric import SPACE_FILES as REQUIRED


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--space-id", required=True, help="the Space, e.g. org/ac_score")
    p.add_argument("--create-pr", action="store_true", help="open a pull request on an existing Space instead of committing")
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded; touch nothing")
    args = p.parse_args()
    folder = Path(low_metric.metric.__file__).parent
    print_outcomes([publish_folder(folder, args.space_id, required=REQUIRED, create_pr=args.create_pr,
                                   private=args.private, dry_run=args.dry_run, message="Update the ac_score metric")])
    return 0


if __name__ == "__main__":
    run(main)
