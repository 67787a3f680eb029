"""Publish a results file of `low-metric score` to the encoders' model cards and/or a results dataset.

  python hub_scripts/publish_results.py results.json --card --dataset org/encoder-results   # a PR per card
  python hub_scripts/publish_results.py results.json --dataset org/encoder-results
  python hub_scripts/publish_results.py results.json --card --dataset org/encoder-results --dry-run
  python hub_scripts/publish_results.py results.json --card --dataset org/encoder-results --local-dir out

Everything is checked (token, repos, rights, merged cards, the Hub's validate-yaml) before the first write;
--local-dir writes the files into a folder instead and touches no Hub.
"""

from __future__ import annotations

from _common import add_publish_arguments, parser, run

from low_metric.cli import cmd_publish


def main() -> int:
    p = parser(__doc__)
    p.add_argument("results", help="results JSON of `low-metric score`")
    p.add_argument("--encoder", action="append", help="publish only this encoder (repeatable; default: all)")
    p.add_argument("--repo-id", help="the card to publish to, for a file with one encoder that is no Hub repo (X+Y, a folder)")
    add_publish_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (what each publish did) on stdout")
    return cmd_publish(p.parse_args())


if __name__ == "__main__":
    run(main)
