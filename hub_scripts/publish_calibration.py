"""Publish a calibration (`low-metric calibrate`'s file) to a Hub dataset repo, for `--calibration hub:ORG/NAME`.

  python hub_scripts/publish_calibration.py calibration.json --repo-id org/low-metric-calibration
  python hub_scripts/publish_calibration.py calibration.json --repo-id org/low-metric-calibration --dry-run
  python hub_scripts/publish_calibration.py calibration.json --repo-id org/low-metric-calibration --local-dir out/

The file is checked (every field, both hashes) before anything is sent; the repo gets calibration.json
and a README.md card; it is created if missing, unchanged files are not re-sent. --local-dir writes
exactly those files into a folder and touches no Hub.
"""

from __future__ import annotations

from _common import parser, print_outcomes, run

from low_metric.hub.calibration import publish_calibration, write_calibration_files
from low_metric.scoring.calibration import load_calibration


def main() -> int:
    p = parser(__doc__)
    p.add_argument("calibration", help="calibration JSON of `low-metric calibrate`")
    p.add_argument("--repo-id", required=True, help="the dataset repo, e.g. org/low-metric-calibration")
    p.add_argument("--create-pr", action="store_true", help="open a pull request on an existing repo instead of committing")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded; touch nothing")
    p.add_argument("--local-dir", metavar="DIR", help="write the files it would commit into DIR; touch no Hub")
    args = p.parse_args()
    calibration = load_calibration(args.calibration)
    if args.local_dir:
        for path in write_calibration_files(calibration, args.repo_id, args.local_dir):
            print(f"wrote {path}")
        return 0
    print_outcomes([publish_calibration(calibration, args.repo_id, create_pr=args.create_pr, private=args.private,
                                        dry_run=args.dry_run)])
    return 0


if __name__ == "__main__":
    run(main)
