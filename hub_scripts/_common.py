"""Glue shared by the hub scripts: publishing options, outcome lines, one-line errors (exit 2).

The logic lives in ``low_metric.hub``; the token comes from ``HF_TOKEN`` or the huggingface_hub
login, never from the command line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from low_metric import LowMetricError
from low_metric.cli import add_publish_arguments, publish_options  # noqa: F401  (the scripts' shared options)
from low_metric.hub.publish import PublishOutcome, folder_files, publish_folder

TOKEN_NOTE = ("The Hub token is read from HF_TOKEN or the huggingface_hub login (`hf auth login`), never from the "
              "command line, and is never printed or stored. HF_ENDPOINT selects another Hub.")
REPO_ROOT = Path(__file__).resolve().parent.parent


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose description is the script's docstring, with the token note as epilog."""
    return argparse.ArgumentParser(description=doc, epilog=TOKEN_NOTE, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_folder_arguments(p: argparse.ArgumentParser, repo: str, example: str) -> None:
    """The options of a script that builds one repo's folder and uploads it (a Space, a dataset)."""
    p.add_argument(f"--{repo}-id", metavar="ID", help=f"the {repo}, e.g. {example} (needed unless --local-dir)")
    p.add_argument("--create-pr", action="store_true", help=f"open a pull request on an existing {repo} instead of committing")
    p.add_argument("--private", action="store_true", help=f"create the {repo} private")
    p.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded; touch nothing")
    p.add_argument("--local-dir", metavar="DIR", help=f"write the {repo}'s files into DIR (a new or empty folder) "
                   "instead; touch no Hub")


def build_and_publish(args: argparse.Namespace, repo: str, build: Callable[[Path], Path], *, repo_type: str,
                      required: Sequence[str], message: str) -> PublishOutcome:
    """Build the folder into ``--local-dir`` (nothing else), or into a temporary folder that is uploaded."""
    repo_id = getattr(args, f"{repo}_id")
    if args.local_dir:
        if args.dry_run or args.create_pr:
            raise LowMetricError("--local-dir writes no Hub: it excludes --dry-run and --create-pr")
        folder = build(Path(args.local_dir))
        return PublishOutcome(repo_id or str(folder), repo_type, True, {p: "written" for p in folder_files(folder, required)},
                              local_dir=str(folder))
    if not repo_id:
        raise LowMetricError(f"give --{repo}-id ID (or --local-dir DIR)")
    with tempfile.TemporaryDirectory(prefix="low_metric_build_") as tmp:
        return publish_folder(build(Path(tmp) / repo), repo_id, repo_type=repo_type,
                              space_sdk="gradio" if repo_type == "space" else None, required=required,
                              create_pr=args.create_pr, private=args.private, dry_run=args.dry_run, message=message,
                              prune=("low_metric/",) if repo_type == "space" else ())


def print_outcomes(outcomes: Sequence[PublishOutcome]) -> None:
    for outcome in outcomes:
        print(outcome.report())


def run(main: Callable[[], int]) -> None:
    """Run a script's main; a LowMetricError is one line on stderr and exit status 2."""
    try:
        code = main()
    except LowMetricError as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        code = 2
    sys.exit(code)
