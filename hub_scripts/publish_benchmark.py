"""Publish the built-in mini benchmark (low_metric/data/mini) as a Hub dataset: the dataset that
model cards of encoders scored on it name.

  python hub_scripts/publish_benchmark.py --dataset-id low-metric/mini-benchmark
  python hub_scripts/publish_benchmark.py --local-dir build/mini-benchmark     # inspect it

The dataset keeps the SPair-71k layout (low-metric score --spair <download> gives the same data
hash), adds pairs.jsonl (one row per pair, for datasets.load_dataset and the Viewer) and a card
with the per-image licences (SOURCES.md). Publish to another id? Pass the same id to
`low-metric publish --mini-dataset ID` so cards name it.
"""

from __future__ import annotations

from pathlib import Path

from _common import add_folder_arguments, build_and_publish, parser, print_outcomes, run

from low_metric.hub.benchmark import PAIRS_FILE, build_benchmark_dataset
from low_metric.hub.card import HubIds


def main() -> int:
    p = parser(__doc__)
    add_folder_arguments(p, "dataset", f"{HubIds.mini} (the default)")
    args = p.parse_args()
    args.dataset_id = args.dataset_id or HubIds.mini

    def build(out: Path) -> Path:
        return build_benchmark_dataset(out, args.dataset_id)

    print_outcomes([build_and_publish(args, "dataset", build, repo_type="dataset",
                                      required=("README.md", PAIRS_FILE, "SOURCES.md"),
                                      message="Publish the low_metric mini benchmark")])
    return 0


if __name__ == "__main__":
    run(main)
