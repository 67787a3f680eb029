"""The ``low-metric`` command line: thin faces over the library."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LowMetricError
from .law import KINDS, fit_law, loo_errors
from .policy import recommend, simulate
from .tables import load_table

Command = Callable[[argparse.Namespace], int]


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def _rows(path: str) -> list[dict[str, Any]]:
    """Records from a CSV file or a JSON list of objects (or a JSON object of name -> value)."""
    p = Path(path)
    if not p.is_file():
        raise LowMetricError(f"{path}: no such file")
    text = p.read_text()
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LowMetricError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if isinstance(data, dict):
            return [{"name": k, "value": v} for k, v in data.items()]
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return data
        raise LowMetricError(f"{path}: expected a JSON list of objects or an object of name -> value")
    return list(csv.DictReader(text.splitlines()))


def _field(row: dict[str, Any], names: Sequence[str], path: str) -> Any:
    for n in names:
        if n in row and row[n] not in (None, ""):
            return row[n]
    raise LowMetricError(f"{path}: a row lacks a {'/'.join(names)} field: {row}")


def _number(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise LowMetricError(f"{what}: {value!r} is not a number") from None
    if not np.isfinite(v):
        raise LowMetricError(f"{what}: {value!r} is not finite")
    return v


def cmd_law(args: argparse.Namespace) -> int:
    table = load_table(args.table)
    benchmarks = args.benchmark or table.benchmarks
    report: dict[str, dict[str, Any]] = {}
    for bench in benchmarks:
        a, c, y = table.benchmark(bench)
        law = fit_law(a, c, y, benchmark=bench, names=table.names)
        loo = loo_errors(a, c, y)
        report[bench] = {
            "r2": law.r2,
            **{f"r2_{k}": fit_law(a, c, y, kind=k).r2 for k in KINDS if k != "ac2"},
            "loo_rmse": float(np.sqrt(np.mean(loo**2))),
            "loo_mae": float(np.mean(np.abs(loo))),
            "n": law.n,
            "weights": law.weights,
        }
        if args.save_dir:
            Path(args.save_dir).mkdir(parents=True, exist_ok=True)
            law.save(Path(args.save_dir) / f"law_{bench}.json")
    if args.json:
        _print_json(report)
        return 0
    print(f"{'benchmark':<16}{'n':>3}{'R2 AC':>9}{'R2 A':>8}{'R2 C':>8}{'R2 lin':>8}{'LOO RMSE':>11}")
    for bench, r in report.items():
        print(f"{bench:<16}{r['n']:>3}{r['r2']:>9.4f}{r['r2_a']:>8.3f}{r['r2_c']:>8.3f}{r['r2_linear']:>8.3f}{r['loo_rmse']:>11.3f}")
    print("R2: in-sample, normalised scores (AC: the paper's degree-2 law). LOO RMSE: benchmark units.")
    return 0


def _policy_simulation(args: argparse.Namespace) -> int:
    table = load_table(args.table)
    benchmarks = table.benchmarks if args.benchmark in (None, "all") else [args.benchmark]
    curves = {}
    for bench in benchmarks:
        a, c, y = table.benchmark(bench)
        curves[bench] = simulate(a, c, y, budget=args.budget, trials=args.trials, k=args.k, seed=args.seed)
    ac = np.mean([r.ac for r in curves.values()], axis=0)
    rnd = np.mean([r.random for r in curves.values()], axis=0)
    if args.json:
        _print_json(
            {
                "k": args.k,
                "trials": args.trials,
                "seed": args.seed,
                "benchmarks": {b: {"ac": r.ac.tolist(), "random": r.random.tolist()} for b, r in curves.items()},
                "mean": {"ac": ac.tolist(), "random": rnd.tolist()},
            }
        )
        return 0
    label = benchmarks[0] if len(benchmarks) == 1 else f"mean over {len(benchmarks)} benchmarks"
    print(f"Recall@{args.k} ({label}, {args.trials} trials, seed {args.seed})")
    print(f"{'fine-tunes':>10}{'AC policy':>11}{'random':>9}")
    for n, (x, r) in enumerate(zip(ac, rnd), start=1):
        print(f"{n:>10}{x:>11.3f}{r:>9.3f}")
    return 0


def _policy_recommend(args: argparse.Namespace) -> int:
    cands = _rows(args.candidates)
    names = [str(_field(r, ("name", "representation", "encoder"), args.candidates)) for r in cands]
    a = [_number(_field(r, ("A", "a"), args.candidates), f"A of {n}") for r, n in zip(cands, names)]
    c = [_number(_field(r, ("C", "c"), args.candidates), f"C of {n}") for r, n in zip(cands, names)]
    observed = {}
    if args.observed:
        for r in _rows(args.observed):
            name = str(_field(r, ("name", "representation", "encoder"), args.observed))
            observed[name] = _number(_field(r, ("score", "value", "y"), args.observed), f"score of {name}")
    rec = recommend(names, np.array(a), np.array(c), observed, k=args.k, seed=args.seed)
    if args.json:
        _print_json(asdict(rec))
        return 0
    print(f"next to fine-tune: {rec.next or '(all candidates are fine-tuned)'}")
    if rec.predicted is None:
        print("predicted best: needs at least 2 observed scores")
    else:
        print(f"predicted best (top {args.k}):")
        for name in rec.top:
            tag = "observed" if name in observed else "predicted"
            value = observed.get(name, rec.predicted[name])
            print(f"  {name:<30}{value:>10.3f}  ({tag})")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    if args.candidates:
        return _policy_recommend(args)
    if args.observed:
        raise LowMetricError("--observed needs --candidates")
    return _policy_simulation(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="low-metric", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("law", help="fit the law of vision representation per benchmark")
    p.add_argument("--table", default="paper", help="'paper' (the 13 representations of the paper) or a CSV path")
    p.add_argument("--benchmark", action="append", help="benchmark(s) to fit (default: all in the table)")
    p.add_argument("--save-dir", help="write each fitted law as law_<benchmark>.json here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_law)

    p = sub.add_parser("policy", help="AC policy: simulate Recall@k, or recommend what to fine-tune next")
    p.add_argument("--table", default="paper", help="table for the simulation: 'paper' or a CSV path")
    p.add_argument("--benchmark", help="benchmark to simulate, or 'all' for the mean over the table's (default)")
    p.add_argument("--budget", type=int, default=5, help="number of fine-tunes to simulate (default 5)")
    p.add_argument("--trials", type=int, default=1000, help="random trials (default 1000)")
    p.add_argument("--candidates", help="CSV/JSON of candidates with name, A, C: recommend instead of simulating")
    p.add_argument("--observed", help="CSV/JSON of fine-tuned candidates with name, score")
    p.add_argument("--k", type=int, default=3, help="recommend the top k (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_policy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LowMetricError as exc:
        print(f"low-metric: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
