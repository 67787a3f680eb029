"""Deploy the Gradio Space (the space/ folder: app, card, requirements) to the Hub.

  python hub_scripts/deploy_space.py --space-id org/low-metric
  python hub_scripts/deploy_space.py --space-id org/low-metric --folder space --dry-run

The Space is created if missing (sdk gradio); unchanged files are not re-sent.
"""

from __future__ import annotations

from pathlib import Path

from _common import parser, print_outcomes, run

from low_metric.hub.publish import publish_folder

REQUIRED = ("README.md", "app.py", "requirements.txt")
DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "space"


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--space-id", required=True, help="the Space, e.g. org/low-metric")
    p.add_argument("--folder", default=str(DEFAULT_FOLDER), help="the Space folder (default: the repo's space/)")
    p.add_argument("--create-pr", action="store_true", help="open a pull request on an existing Space instead of committing")
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded; touch nothing")
    args = p.parse_args()
    print_outcomes([publish_folder(args.folder, args.space_id, required=REQUIRED, create_pr=args.create_pr,
                                   private=args.private, dry_run=args.dry_run, message="Deploy the low_metric Space")])
    return 0


if __name__ == "__main__":
    run(main)
