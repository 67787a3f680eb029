"""Score a list of Hub encoders in one batch, then optionally publish the results.

  python hub_scripts/score_batch.py facebook/dinov2-small google/siglip-base-patch16-224 --dataset org/encoder-results
  python hub_scripts/score_batch.py --file encoders.txt --num-processes 8 --card --dataset org/encoder-results \
      --spair-dataset org/spair-71k -- --spair SPair-71k --dtype bfloat16
  python hub_scripts/score_batch.py facebook/dinov2-small --card --dataset org/encoder-results --local-dir out

Runs `low-metric score` (plain Python for one process, `accelerate launch` for several; --cpu for
gloo processes on the CPU); options after `--` go to `low-metric score` unchanged. Publishing
rights are checked before scoring; nothing is published when scoring fails. --local-dir writes
what would be published into a folder instead (no token, no Hub).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from _common import add_publish_arguments, parser, print_outcomes, publish_options, run

from low_metric import LowMetricError
from low_metric.hub.publish import (
    check_dataset_access,
    publish_records,
    read_encoder_list,
    resolve_token,
    score_command,
)
from low_metric.scoring.results import check_writable, read_results


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    p = parser(__doc__)
    p.add_argument("encoders", nargs="*", metavar="ENCODER", help="Hub encoder ids (as for `low-metric score`)")
    p.add_argument("--file", help="more encoders, one per line (# comments)")
    p.add_argument("--output", default="low_metric_results.json", help="results JSON (default low_metric_results.json)")
    p.add_argument("--num-processes", type=int, default=1, help="processes (GPUs) for accelerate launch (default 1)")
    p.add_argument("--cpu", action="store_true", help="several processes on the CPU (ACCELERATE_USE_CPU=1)")
    add_publish_arguments(p)
    args = p.parse_args(argv[:split])
    encoders = args.encoders + (read_encoder_list(args.file) if args.file else [])
    command, env = score_command(encoders, output=args.output, num_processes=args.num_processes, cpu=args.cpu,
                                 extra=argv[split + 1:])
    publishing = args.card or args.dataset
    if args.dry_run:
        print("would run: " + shlex.join([*(f"{k}={v}" for k, v in env.items()), *command]))
        if publishing:
            print("then publish to: " + ", ".join((["the encoders' model cards"] if args.card else [])
                                                + ([f"dataset {args.dataset}"] if args.dataset else [])))
        return 0
    options = publish_options(args)
    check_writable(args.output)
    if publishing and not args.local_dir:  # rights are checked before the long work
        resolve_token()
        if args.dataset:
            check_dataset_access(args.dataset)
    code = subprocess.run(command, env=os.environ | env, check=False).returncode
    if code != 0:
        raise LowMetricError(f"scoring failed (exit {code}); nothing published")
    if publishing:
        print_outcomes(publish_records(read_results(args.output), **options))
    return 0


if __name__ == "__main__":
    run(main)
