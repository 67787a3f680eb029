"""Placing encoders on the paper's scale (SPEC.md 4b): calibration files, built from anchors scored
under the current protocol (or measured elsewhere, a CSV), read back checked, applied to results.

A calibration file is one JSON object: ``format``, ``low_metric``, ``method`` (``transfer``, the
default; ``refit``; ``identity`` for the paper's own protocol), ``protocol`` and ``protocol_hash``
(the anchors' protocol: only results of that hash are placed), ``paper_table_sha256``,
``representations`` (the anchors: each one's own A and C), the fitted :class:`~low_metric.core.transfer.Calibration` fields (maps,
laws, ranges, error sizes) and ``calibration_hash`` (SHA-256 of all the rest). Every file read back
is checked field by field and both hashes are recomputed.
"""

from __future__ import annotations

import csv
import hashlib
import io
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from low_metric.core.checks import finite_number
from low_metric.core.errors import LowMetricError
from low_metric.core.transfer import (
    Calibration,
    fit_refit,
    fit_transfer,
    identity_calibration,
)
from low_metric.scoring.results import (
    CALIBRATION_FORMAT,
    VERSION,
    protocol_hash,
    read_json,
)
from low_metric.sources.paper import PAPER_STAGE1_PROJECTORS
from low_metric.sources.tables import Table, paper_table

# The paper's representations and their Hub ids (LLaVA vision towers; diffusers pipelines).
PAPER_ENCODERS = {
    "CLIP224": "openai/clip-vit-large-patch14",
    "CLIP336": "openai/clip-vit-large-patch14-336",
    "OpenCLIP": "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
    "DINOv2": "facebook/dinov2-large",
    "SigLIP": "google/siglip-base-patch16-224",
    "CLIP224+DINOv2": "openai/clip-vit-large-patch14+facebook/dinov2-large",
    "CLIP336+DINOv2": "openai/clip-vit-large-patch14-336+facebook/dinov2-large",
    "SDim": "lambdalabs/sd-image-variations-diffusers",
    "SD1.5": "runwayml/stable-diffusion-v1-5",
    "SD2.1": "stabilityai/stable-diffusion-2-1",
    "SDXL": "stabilityai/stable-diffusion-xl-base-1.0",
    "DiT": "facebook/DiT-XL-2-512",
    "SD3": "stabilityai/stable-diffusion-3-medium-diffusers",
}
CALIBRATION_FILE = "calibration.json"
PAPER_PROTOCOL = {"preset": "paper"}  # what the identity calibration applies to
HUB_PREFIX = "hub:"


def paper_projectors() -> dict[str, str]:
    """Encoder id -> its released stage-1 projector repo, for the paper's representations loadable here."""
    return {PAPER_ENCODERS[n]: repo for n, repo in PAPER_STAGE1_PROJECTORS.items() if n in PAPER_ENCODERS}


def paper_table_sha256() -> str:
    return hashlib.sha256(resources.files("low_metric").joinpath("data/paper_table.csv").read_bytes()).hexdigest()


def _content_hash(data: dict[str, Any]) -> str:
    return protocol_hash({k: v for k, v in data.items() if k != "calibration_hash"})


def own_values(record: dict[str, Any]) -> tuple[float | dict[str, float], float]:
    """A record's own A (one value, or {benchmark: value} when scored per benchmark) and C."""
    name = record.get("encoder")
    if "A" not in record or "C" not in record:
        raise LowMetricError(f"{name}: the law needs both A and C; score with alignment and correspondence on")
    a = record["A"]
    if isinstance(a, dict) and "per_benchmark" in a:
        own_a: float | dict[str, float] = {b: finite_number(v.get("A"), f"{name}: A ({b})") for b, v in a["per_benchmark"].items()}
    else:
        own_a = finite_number(a.get("A") if isinstance(a, dict) else None, f"{name}: A")
    c = record["C"]
    return own_a, finite_number(c.get("C") if isinstance(c, dict) else None, f"{name}: C")


# ------------------------------------------------------------------------------------- building
def _released(table: Table) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    return {b: table.a[b] for b in table.benchmarks}, table.c, {b: table.scores[b] for b in table.benchmarks}


def build_calibration(anchors: dict[str, dict[str, Any]], *, method: str = "transfer", protocol: dict[str, Any],
                      table: Table | None = None) -> dict[str, Any]:
    """A calibration file from anchors {paper name: {"A": value or {benchmark: value}, "C": value, ...}}."""
    table = table or paper_table()
    if method not in ("transfer", "refit"):
        raise LowMetricError(f"unknown calibration method {method!r}: use 'transfer' (the default) or 'refit'")
    unknown = sorted(set(anchors) - set(table.names))
    if unknown:
        raise LowMetricError(f"not in the paper's table: {', '.join(unknown)} (its representations: {', '.join(table.names)})")
    names = [n for n in table.names if n in anchors]  # the table's order
    per = {isinstance(anchors[n]["A"], dict) for n in names}
    if len(per) > 1:
        raise LowMetricError("anchors: give every anchor one A, or every anchor one A per benchmark, not a mix")
    own_c = [finite_number(anchors[n]["C"], f"anchor {n}: C") for n in names]
    if per == {True}:
        own_a: Any = {b: [finite_number(anchors[n]["A"].get(b), f"anchor {n}: A_{b}") for n in names] for b in table.benchmarks}
    else:
        own_a = [finite_number(anchors[n]["A"], f"anchor {n}: A") for n in names]
    rows = [table.names.index(n) for n in names]
    paper_a, paper_c, paper_y = _released(table)
    if method == "transfer":
        cal = fit_transfer(own_a, own_c, rows, paper_a, paper_c, paper_y, names=table.names)
    else:
        cal = fit_refit(own_a, own_c, rows, paper_y, names=names)
    data = {
        "format": CALIBRATION_FORMAT,
        "low_metric": VERSION,
        "protocol": protocol,
        "protocol_hash": protocol_hash(protocol),
        "paper_table_sha256": paper_table_sha256(),
        "representations": {n: {k: anchors[n][k] for k in ("A", "C", "encoder") if k in anchors[n]} for n in names},
        **cal.to_dict(),
    }
    data["calibration_hash"] = _content_hash(data)
    return data


def calibrate(records: dict[str, dict[str, Any]], table: Table | None = None, method: str = "transfer") -> dict[str, Any]:
    """A calibration from the paper's representations scored under one protocol: {paper name: record}."""
    hashes = {r.get("protocol_hash") for r in records.values()}
    if len(hashes) != 1:
        raise LowMetricError("calibration records were scored under different protocols")
    for name, r in records.items():
        _check_record_hash(r, f"anchor {name}")
    anchors = {}
    for name, record in records.items():
        a, c = own_values(record)
        anchors[name] = {"A": a, "C": c, "encoder": record["encoder"]}
    return build_calibration(anchors, method=method, protocol=next(iter(records.values()))["protocol"], table=table)


def read_anchors(path: str | Path, table: Table | None = None) -> dict[str, dict[str, Any]]:
    """Anchors from a CSV: ``representation`` (the paper's name), ``C``, and ``A`` or ``A_<benchmark>`` per benchmark."""
    table = table or paper_table()
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise LowMetricError(f"{path}: cannot read ({exc.strerror or exc})") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise LowMetricError(f"{path}: no anchors")
    columns = set(rows[0])
    per_benchmark = [f"A_{b}" for b in table.benchmarks]
    if not {"representation", "C"} <= columns:
        raise LowMetricError(f"{path}: needs the columns representation, C, and A or A_<benchmark>")
    if "A" in columns and columns & set(per_benchmark):
        raise LowMetricError(f"{path}: give either an A column or A_<benchmark> columns, not both")
    if "A" not in columns and not set(per_benchmark) <= columns:
        missing = sorted(set(per_benchmark) - columns)
        raise LowMetricError(f"{path}: no A column and missing {', '.join(missing)}")
    anchors: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(rows, start=2):
        name = (row.get("representation") or "").strip()
        if not name:
            raise LowMetricError(f"{path}, line {i}: no representation name")
        if name in anchors:
            raise LowMetricError(f"{path}: {name} appears twice")
        if "A" in columns:
            a: Any = finite_number(row["A"], f"{path}, line {i}: A")
        else:
            a = {b: finite_number(row[f"A_{b}"], f"{path}, line {i}: A_{b}") for b in table.benchmarks}
        anchors[name] = {"A": a, "C": finite_number(row["C"], f"{path}, line {i}: C")}
    return anchors


def calibrate_anchors(path: str | Path, *, method: str = "transfer", protocol: dict[str, Any] | None = None,
                      table: Table | None = None) -> dict[str, Any]:
    """A calibration from measurements made elsewhere. Its protocol: ``protocol`` (that of results
    scored the same way) or, by default, the anchors file itself (name and SHA-256)."""
    anchors = read_anchors(path, table)
    if protocol is None:
        protocol = {"anchors": Path(path).name, "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}
    return build_calibration(anchors, method=method, protocol=protocol, table=table)


def paper_calibration(table: Table | None = None) -> dict[str, Any]:
    """The identity calibration: values measured under the paper's protocol go straight into the released law."""
    table = table or paper_table()
    cal = identity_calibration(*_released(table), names=table.names)
    data = {"format": CALIBRATION_FORMAT, "low_metric": VERSION, "protocol": dict(PAPER_PROTOCOL),
            "protocol_hash": protocol_hash(PAPER_PROTOCOL), "paper_table_sha256": paper_table_sha256(), "representations": {},
            **cal.to_dict()}
    data["calibration_hash"] = _content_hash(data)
    return data


# ------------------------------------------------------------------------------------- reading back
def check_calibration(data: Any, source: str = "calibration") -> dict[str, Any]:
    """``data`` if it is a sound calibration (every field checked, both hashes recomputed), else one line why not."""
    if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
        raise LowMetricError(f"{source}: not a {CALIBRATION_FORMAT} file")
    for key in ("low_metric", "protocol_hash", "calibration_hash", "paper_table_sha256"):
        if not isinstance(data.get(key), str):
            raise LowMetricError(f"{source}: missing or malformed {key!r}")
    if not isinstance(data.get("protocol"), dict):
        raise LowMetricError(f"{source}: missing its protocol")
    if protocol_hash(data["protocol"]) != data["protocol_hash"]:
        raise LowMetricError(f"{source}: its protocol_hash does not match its protocol (the file was altered)")
    if _content_hash(data) != data["calibration_hash"]:
        raise LowMetricError(f"{source}: its calibration_hash does not match its content (the file was altered or damaged)")
    if data["paper_table_sha256"] != paper_table_sha256():
        raise LowMetricError(f"{source}: fitted on another version of the paper's table")
    try:
        cal = Calibration.from_dict(data)
    except LowMetricError as exc:
        raise LowMetricError(f"{source}: {exc}") from None
    anchors = data.get("representations")
    if not isinstance(anchors, dict):
        raise LowMetricError(f"{source}: missing its anchors (representations)")
    for name, anchor in anchors.items():
        if not isinstance(anchor, dict) or "C" not in anchor or "A" not in anchor:
            raise LowMetricError(f"{source}: anchor {name!r} lacks A or C")
        a = anchor["A"]
        for b, v in (a.items() if isinstance(a, dict) else [("", a)]):
            finite_number(v, f"{source}: anchor {name} A{'_' + b if b else ''}")
        finite_number(anchor["C"], f"{source}: anchor {name} C")
    first = cal.benchmarks[0]
    expected = {"identity": 0, "refit": cal.laws[first].n, "transfer": len(cal.anchor_errors[first])}[cal.method]
    if len(anchors) != expected or len({len(e) for e in cal.anchor_errors.values()}) != 1:
        raise LowMetricError(f"{source}: {len(anchors)} anchors listed, but its fit used {expected}")
    return data


def _hub_file(spec: str, token: str | bool | None) -> Path:
    """``hub:ORG/NAME[@REVISION]``: the calibration file of a Hub dataset repo (published with
    ``hub_scripts/publish_calibration.py``)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    from low_metric.sources.hub import hub_errors

    repo_id, _, revision = spec[len(HUB_PREFIX):].partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise LowMetricError(f"{spec!r}: expected hub:ORG/NAME[@REVISION]")
    with hub_errors(repo_id, revision or None):
        try:
            return Path(hf_hub_download(repo_id, CALIBRATION_FILE, repo_type="dataset", revision=revision or None,
                                        token=token))
        except EntryNotFoundError:
            raise LowMetricError(f"dataset '{repo_id}' holds no {CALIBRATION_FILE}") from None


def load_calibration(source: str | Path, token: str | bool | None = None) -> dict[str, Any]:
    """A checked calibration: a file path, ``hub:ORG/NAME[@REVISION]`` (a Hub dataset repo), or
    ``paper`` (the identity calibration of the paper's own protocol)."""
    source = str(source)
    if source == "paper":
        return paper_calibration()
    path = _hub_file(source, token) if source.startswith(HUB_PREFIX) else Path(source)
    return check_calibration(read_json(path, CALIBRATION_FORMAT), source)


# ------------------------------------------------------------------------------------- applying
def place(calibration: dict[str, Any], a: Any, c: Any) -> dict[str, Any]:
    """Predicted benchmark scores (with intervals, extrapolation flags, AC) of own values ``a`` and ``c``."""
    placed = Calibration.from_dict(calibration).place(a, c).as_dict()
    return {**placed, "calibration_protocol_hash": calibration["protocol_hash"],
            "calibration_hash": calibration["calibration_hash"]}


def _check_record_hash(record: dict[str, Any], what: str) -> None:
    if "protocol" in record and protocol_hash(record["protocol"]) != record.get("protocol_hash"):
        raise LowMetricError(f"{what}: its protocol_hash does not match its protocol (the result was altered)")


def mismatch(record: dict[str, Any], calibration: dict[str, Any]) -> str | None:
    """Why ``calibration`` does not apply to ``record`` (None when it does)."""
    if "A" not in record or "C" not in record:
        return "AC needs both A and C"
    if calibration["method"] == "identity":
        if (record.get("protocol") or {}).get("preset") != PAPER_PROTOCOL["preset"]:
            return "the paper's calibration applies only to results scored with --protocol paper"
        return None
    if record.get("protocol_hash") != calibration["protocol_hash"]:
        return (f"protocol hash {str(record.get('protocol_hash'))[:12]} differs from the calibration's "
                f"{calibration['protocol_hash'][:12]}: score it with the calibration's settings")
    return None


def predict(record: dict[str, Any], calibration: dict[str, Any]) -> dict[str, Any]:
    """A scored encoder on the paper's scale (see :func:`place`); refuses a result of another protocol."""
    _check_record_hash(record, str(record.get("encoder")))
    why = mismatch(record, calibration)
    if why:
        raise LowMetricError(f"{record.get('encoder')}: {why}")
    a, c = own_values(record)
    return place(calibration, a, c)


def matches(record: dict[str, Any], calibration: dict[str, Any] | None) -> bool:
    """Whether ``calibration`` applies to ``record``: both A and C measured, under its protocol."""
    return bool(calibration) and mismatch(record, calibration) is None

