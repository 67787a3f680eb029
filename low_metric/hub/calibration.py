"""A calibration on the Hub: the files of a calibration dataset repo, and publishing them.

The repo (a dataset) holds ``calibration.json`` (the checked calibration file, as `low-metric
calibrate` wrote it) and a ``README.md`` card saying what it maps and how to use it:
``--calibration hub:ORG/NAME`` on the command line, ``LOW_METRIC_CALIBRATION=hub:ORG/NAME`` in the Space.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from low_metric.hub.publish import PublishOutcome, publish_folder
from low_metric.scoring.calibration import CALIBRATION_FILE, check_calibration
from low_metric.scoring.results import VERSION, write_text_atomic

CARD_FILE = "README.md"


def calibration_card(calibration: dict[str, Any], repo_id: str) -> str:
    """The dataset card of a published calibration."""
    anchors = ", ".join(calibration["representations"]) or "none (the paper's own protocol)"
    rows = "\n".join(f"| {b} | {calibration['transfer_rmse'][b]:.3f} | {calibration['law_rmse'][b]:.3f} |"
                     for b in calibration["benchmarks"])
    return (
        "---\ntags:\n- low_metric\n- vision-encoders\nviewer: false\n---\n"
        f"# {repo_id}\n\n"
        "A low_metric calibration: it maps A and C scores measured under one protocol onto the scale of "
        "\"Law of Vision Representation in MLLMs\" (arXiv 2408.16357), where the law fitted on the paper's 13 "
        "representations predicts each benchmark score, with an interval.\n\n"
        f"- method: `{calibration['method']}`\n"
        f"- anchors: {anchors}\n"
        f"- protocol hash: `{calibration['protocol_hash']}` (only results of this hash are placed)\n"
        f"- calibration hash: `{calibration['calibration_hash']}`\n"
        f"- written by low_metric {calibration['low_metric']}; published with low_metric {VERSION}\n\n"
        "| benchmark | transfer RMSE | law LOO RMSE |\n|---|---|---|\n" + rows + "\n\n"
        f"```bash\nlow-metric score ENCODER --calibration hub:{repo_id}      # same settings as the anchors\n"
        f"low-metric predict results.json --calibration hub:{repo_id}\n```\n\n"
        f"In the low_metric Space: `LOW_METRIC_CALIBRATION=hub:{repo_id}`.\n"
    )


def calibration_files(calibration: dict[str, Any], repo_id: str) -> dict[str, str]:
    """Exactly the files a publish commits: the calibration and its card."""
    calibration = check_calibration(calibration)
    return {CALIBRATION_FILE: json.dumps(calibration, indent=2) + "\n", CARD_FILE: calibration_card(calibration, repo_id)}


def write_calibration_files(calibration: dict[str, Any], repo_id: str, folder: str | Path) -> list[Path]:
    """Write the files a publish would commit into ``folder`` (created if missing); no Hub involved."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    return [write_text_atomic(root / name, text) for name, text in calibration_files(calibration, repo_id).items()]


def publish_calibration(calibration: dict[str, Any], repo_id: str, *, create_pr: bool = False, private: bool = False,
                        token: str | None = None, dry_run: bool = False) -> PublishOutcome:
    """Put a calibration into the dataset repo ``repo_id`` (created if missing); unchanged files are not re-sent."""
    with tempfile.TemporaryDirectory(prefix="low_metric_calibration_") as folder:
        write_calibration_files(calibration, repo_id, folder)
        return publish_folder(folder, repo_id, repo_type="dataset", space_sdk=None,
                              required=(CALIBRATION_FILE, CARD_FILE), create_pr=create_pr, private=private,
                              token=token, dry_run=dry_run,
                              message=f"low_metric calibration ({calibration['method']}, protocol "
                                      f"{calibration['protocol_hash'][:12]})")
