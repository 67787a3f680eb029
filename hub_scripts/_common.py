"""Glue shared by the hub scripts: publishing options, outcome lines, one-line errors (exit 2).

The logic lives in ``low_metric.hub.publish``; the token comes from ``HF_TOKEN`` or the huggingface_hub
login, never from the command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from low_metric import LowMetricError
from low_metric.cli import add_publish_arguments, publish_options  # noqa: F401  (the scripts' shared options)
from low_metric.hub.publish import PublishOutcome

TOKEN_NOTE = ("The Hub token is read from HF_TOKEN or the huggingface_hub login (`hf auth login`), never from the "
              "command line, and is never printed or stored. HF_ENDPOINT selects another Hub.")


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose description is the script's docstring, with the token note as epilog."""
    return argparse.ArgumentParser(description=doc, epilog=TOKEN_NOTE, formatter_class=argparse.RawDescriptionHelpFormatter)


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
