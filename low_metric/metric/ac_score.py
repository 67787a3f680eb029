# Copyright 2024 The low_metric authors. Licensed under the Apache License, Version 2.0.
"""AC score: the A and C scores of a vision representation and the law that turns them into benchmark predictions.

A thin `evaluate` face over low_metric: every number comes from ``low_metric`` (``a_score``,
``alignment_per_image``, ``PckTable``, ``Law``, ``fit_law``, ``paper_table``); this file only moves
inputs in and results out, and stamps each result with its protocol and protocol hash.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import datasets
import evaluate
import numpy as np

import low_metric
from low_metric.core.checks import finite_number
from low_metric.core.errors import LowMetricError
from low_metric.core.frame import FRAME_SIZE, box_threshold
from low_metric.scoring.results import protocol_hash

_CITATION = """\
@article{yang2024law,
  title   = {Law of Vision Representation in MLLMs},
  author  = {Yang, Shijia and Zhai, Bohan and You, Quanzeng and Yuan, Jianbo and Yang, Hongxia and Xu, Chenfeng},
  journal = {arXiv preprint arXiv:2408.16357},
  year    = {2024}
}
"""

_DESCRIPTION = """\
AC score scores the vision representation (encoder) of a LLaVA-style multimodal LLM without training
the MLLM, after "Law of Vision Representation in MLLMs" (Yang et al., arXiv 2408.16357).

- A, cross-modal alignment: for each image, the mean over the representation's tokens of the best
  cosine similarity to a CLIP reference's tokens, averaged over images (and references). 1 = CLIP.
- C, visual correspondence: SPair-71k style zero-shot keypoint matching, PCK@0.10 per image x 100.
- AC: a law (degree-2 polynomial of min-max normalised A and C, fitted per benchmark on
  representations with known MLLM scores) predicts each benchmark score; the AC score is the law's
  normalised prediction (about 0..1 relative to the fit set), averaged over benchmarks.

Configurations: "alignment" (A from token embeddings), "correspondence" (C from predicted and true
keypoints), "ac" (= "default": AC and predicted benchmark scores from A and C and a fitted law),
"encoder" (the whole measurement from encoder ids, through low_metric's scorer).
Every result carries `protocol` (the settings that make numbers comparable) and `protocol_hash`
(SHA-256 of its canonical JSON): compare or fit laws only across equal hashes.
"""

_KWARGS_DESCRIPTION = """
Computes A, C or AC, depending on the configuration chosen in `evaluate.load("ac_score", <config>)`.

Configuration "alignment" (the A score):
    predictions (list of float arrays [tokens, D]): per image, the tokens of the representation scored
        (token counts may differ between images).
    references (list of [tokens, D] arrays, or of lists of such arrays): per image, the tokens of the
        CLIP reference, or of several references (the paper: CLIP@224 and CLIP@336) whose A scores are
        averaged. Same width D as the prediction of the same image.
    mode (str, default "projector"): the space the tokens live in, recorded in the protocol:
        "projector" (each encoder through its own LLaVA stage-1 projector, the paper's), "ridge"
        (target tokens mapped onto the reference by low_metric's ridge map) or "raw" (no mapping).
    reference_names (list of str, optional): names of the references (default "reference_0", ...).
    device (str, optional): torch device for the similarity products (e.g. "cuda").
  Returns: A (float), per_image (a_i averaged over references), per_reference ({name: A}),
    images (int), protocol, protocol_hash.

Configuration "correspondence" (the C score):
    predictions (list of float arrays [K, 2]): per image pair, predicted (x, y) target pixels of its
        K keypoints (only keypoints visible in both images) in the 840 x 840 frame.
    references (list of float arrays [K, 2]): per pair, the true target keypoints, same order.
    thresholds (float or list, one per pair): max(height, width) of the target bounding box in the
        same frame (a pair may also give one value per keypoint). Or give target_bboxes instead.
    target_bboxes (list of [x1, y1, x2, y2], optional): target boxes; thresholds = their longer side.
    categories (list of str, optional): category of each pair, for the per-category table.
    alphas (list of float, default [0.10, 0.05, 0.01]): PCK levels; C is always PCK@0.10.
    window, temperature, image_size, grid (default 5, 0.02, 840, 16): the matcher settings that
        produced the predictions, recorded in the protocol (window 0: nearest neighbour).
    With add_batch, give thresholds/categories to compute(), in the order the pairs were added.
  Returns: C (float, PCK@0.10 per image x 100), per_image and per_keypoint ({"pck@<alpha>": x100}),
    per_category, pairs, keypoints, protocol, protocol_hash.

Configuration "ac" (also "default"):
    predictions (list of {"A": float, "C": float} dicts, or of [A, C] pairs): the representations;
        "A" may be {benchmark: float} for the paper's 8 benchmarks (one A per benchmark, as the paper).
    law: "paper" (the paper's degree-2 laws for its 8 benchmarks, fitted on its 13 representations:
        the inputs are on the paper's scale, its protocol), a low_metric.Law, a saved law (JSON text or
        file), a folder of saved laws, or a dict {benchmark: law}. Without a law or a calibration
        only A and C come back: AC needs a fitted law.
    calibration (optional, instead of law): a `low-metric calibrate` file, "hub:ORG/NAME" (a published
        one) or a loaded calibration dict: own (A, C) are mapped onto the paper's scale first, as
        `low-metric predict` does (same numbers).
    benchmarks (list of str, optional): keep only these benchmarks of the law(s).
    names (list of str, optional): names of the representations, echoed in the result.
    mode (str, default "projector"): the A mode of the inputs; the paper's laws need "projector".
  Returns: A, C, names, AC (per representation: mean over benchmarks of ac_score), ac_score and
    predicted ({benchmark: per representation}), with law="paper" or a calibration also interval
    ({benchmark: [low, high] per representation}) and extrapolation ({benchmark: per representation}),
    laws (kind, r2, n per benchmark), protocol, protocol_hash.

Configuration "encoder" (loads and runs the encoders, as bertscore loads its model):
    predictions (list of str): encoder ids to score (Hub ids, timm:/open_clip: names, folders, X+Y).
    references (list of lists of str): per prediction, the reference encoder ids (the same for all;
        the paper: ["openai/clip-vit-large-patch14", "openai/clip-vit-large-patch14-336"]).
    calibration (str, optional): a `low-metric calibrate` file, "hub:ORG/NAME" or "paper": adds AC and
        predicted scores with intervals (as `low-metric score --calibration`).
    protocol (str, optional): "paper", the paper's protocol (as `low-metric score --protocol paper`;
        give spair=, and allow_pickle=True for its stage-1 checkpoints): AC comes with it.
    any option of low_metric.scoring.scorer.ScoreConfig: spair, images, dataset, count, mode ("ridge"),
        projectors, patch, window, alphas, layer, resolution, dtype, batch_size, cache_dir, ...
        (data default: the built-in mini benchmark).
  Returns: encoders, A, C, AC (lists, one per encoder), results (the scorer's full records),
    protocol, protocol_hash.

Examples:

    >>> import evaluate
    >>> alignment = evaluate.load("ac_score", "alignment")
    >>> target = [[[1.0, 0.0], [0.0, 1.0]]]   # one image, two tokens of width 2
    >>> clip = [[[1.0, 0.0], [0.6, 0.8]]]     # its reference tokens
    >>> results = alignment.compute(predictions=target, references=clip)
    >>> print(round(results["A"], 4), [round(a, 4) for a in results["per_image"]])
    0.9 [0.9]
    >>> len(results["protocol_hash"])
    64

    Two references, averaged:

    >>> results = alignment.compute(predictions=target, references=[[[[1.0, 0.0]], [[0.6, 0.8]]]],
    ...                             reference_names=["clip224", "clip336"])
    >>> print({k: round(v, 4) for k, v in results["per_reference"].items()}, round(results["A"], 4))
    {'clip224': 0.5, 'clip336': 0.7} 0.6

    >>> correspondence = evaluate.load("ac_score", "correspondence")
    >>> truth = [[[100.0, 100.0], [300.0, 120.0]], [[420.0, 400.0]]]   # two pairs
    >>> guess = [[[104.0, 97.0], [360.0, 120.0]], [[421.0, 402.0]]]
    >>> results = correspondence.compute(predictions=guess, references=truth,
    ...                                  thresholds=[200.0, 500.0], categories=["cat", "dog"])
    >>> print(results["C"], results["per_image"])
    75.0 {'pck@0.1': 75.0, 'pck@0.05': 75.0, 'pck@0.01': 50.0}

    >>> ac = evaluate.load("ac_score")
    >>> results = ac.compute(predictions=[{"A": 0.47, "C": 24.51}], law="paper", names=["DINOv2-like"])
    >>> print(round(results["AC"][0], 2), round(results["predicted"]["mme"][0]))
    0.72 1366
"""

# ----------------------------------------------------------------------------------------------
# Protocol
# ----------------------------------------------------------------------------------------------

C_ALPHA = 0.10
DEFAULT_ALPHAS = (0.10, 0.05, 0.01)
MODES = ("projector", "ridge", "raw")


def _protocol(config: str, **settings: Any) -> dict[str, Any]:
    return {"metric": "ac_score", "config": config, "low_metric": low_metric.__version__, **settings}


def _stamp(result: dict[str, Any], protocol: dict[str, Any]) -> dict[str, Any]:
    return {**result, "protocol": protocol, "protocol_hash": protocol_hash(protocol)}


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise LowMetricError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


# ----------------------------------------------------------------------------------------------
# Configurations: each is one compute function, registered with its features and input check
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Configuration:
    name: str
    features: Callable[[], Any]  # datasets.Features, or a list of alternatives
    prepare: Callable[[dict[str, Any]], dict[str, Any]]  # check (and normalise) one add_batch: {input: column or None}
    compute: Callable[..., dict[str, Any]]
    numpy_format: bool = False  # hand big arrays to compute as numpy, not Python lists


CONFIGURATIONS: dict[str, Configuration] = {}
ALIASES = {"default": "ac"}


def configuration(
    name: str,
    *,
    features: Callable[[], Any],
    prepare: Callable[[dict[str, Any]], dict[str, Any]],
    numpy_format: bool = False,
):
    """Register the decorated compute function as configuration ``name``."""

    def register(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        CONFIGURATIONS[name] = Configuration(name, features, prepare, fn, numpy_format)
        return fn

    return register


def get_configuration(name: str | None) -> Configuration:
    key = ALIASES.get(name or "default", name)
    if key not in CONFIGURATIONS:
        choices = ", ".join([*CONFIGURATIONS, *(f"{a} (= {t})" for a, t in ALIASES.items())])
        raise LowMetricError(f"ac_score has no configuration {name!r}; choose from: {choices}")
    return CONFIGURATIONS[key]


_List = getattr(datasets, "List", None) or datasets.Sequence  # datasets >= 4 names it List


def _matrix(dtype: str) -> Any:
    return _List(_List(datasets.Value(dtype)))


def _shape(x: Any, what: str) -> tuple[int, ...]:
    try:
        return np.shape(x)
    except ValueError:
        raise LowMetricError(f"{what}: rows of different lengths (expected a rectangular array)") from None


def _column(batch: dict[str, Any], key: str) -> list[Any]:
    col = batch.get(key)
    if col is None:
        return []
    if isinstance(col, (str, bytes, Mapping)) or not hasattr(col, "__len__"):
        raise LowMetricError(f"{key}: expected a list with one entry per example, got {type(col).__name__}")
    return list(col)


def _several(ref: Any) -> bool:
    """True when one image's reference entry is a list of [tokens, D] arrays (several references)."""
    if isinstance(ref, np.ndarray) and ref.dtype != object:
        return ref.ndim == 3
    try:
        return len(ref) > 0 and np.ndim(ref[0]) == 2
    except (TypeError, ValueError):
        return False


# --- alignment ---------------------------------------------------------------------------------


def _alignment_features() -> list[datasets.Features]:
    tokens = _matrix("float32")
    return [
        datasets.Features({"predictions": tokens, "references": tokens}),
        datasets.Features({"predictions": tokens, "references": _List(tokens)}),
    ]


def _prepare_alignment(batch: dict[str, Any]) -> dict[str, Any]:
    for i, p in enumerate(_column(batch, "predictions")):
        if len(_shape(p, f"predictions[{i}]")) != 2:
            raise LowMetricError(f"predictions[{i}]: expected [tokens, D] per image, got shape {_shape(p, '')}")
    for i, r in enumerate(_column(batch, "references")):
        refs = list(r) if _several(r) else [r]
        for j, x in enumerate(refs):
            if len(_shape(x, f"references[{i}]")) != 2:
                raise LowMetricError(
                    f"references[{i}]: expected [tokens, D] (or a list of such, one per reference) per image, "
                    f"got shape {_shape(x, '')}" + (f" for reference {j}" if len(refs) > 1 else "")
                )
    return batch


@configuration("alignment", features=_alignment_features, prepare=_prepare_alignment, numpy_format=True)
def alignment(
    predictions: Any,
    references: Any,
    *,
    mode: str = "projector",
    reference_names: list[str] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """A score of per-image target tokens against per-image reference tokens (one or several references)."""
    _check_mode(mode)
    target = [np.asarray(p, dtype=np.float32) for p in predictions]
    per_image_refs = [list(r) if _several(r) else [r] for r in references]
    counts = sorted({len(r) for r in per_image_refs})
    if len(counts) != 1:
        raise LowMetricError(f"references: every image needs the same number of references, got {counts}")
    names = list(reference_names) if reference_names is not None else [f"reference_{j}" for j in range(counts[0])]
    if len(names) != counts[0] or len(set(names)) != len(names):
        raise LowMetricError(f"reference_names: expected {counts[0]} distinct names, got {names}")
    refs = {name: [np.asarray(r[j], dtype=np.float32) for r in per_image_refs] for j, name in enumerate(names)}
    per_ref_image = {name: low_metric.alignment_per_image(target, ref, device=device) for name, ref in refs.items()}
    result = {
        "A": float(np.mean([v.mean() for v in per_ref_image.values()])),  # a_score's mean over references
        "per_image": np.mean(list(per_ref_image.values()), axis=0).tolist(),
        "per_reference": {name: float(v.mean()) for name, v in per_ref_image.items()},
        "images": len(target),
    }
    return _stamp(result, _protocol("alignment", mode=mode, references=names))


# --- correspondence ----------------------------------------------------------------------------


def _correspondence_features() -> datasets.Features:
    return datasets.Features({"predictions": _matrix("float64"), "references": _matrix("float64")})


def _prepare_correspondence(batch: dict[str, Any]) -> dict[str, Any]:
    misplaced = sorted({"thresholds", "target_bboxes", "categories"} & set(batch))
    if misplaced:
        raise LowMetricError(
            f"correspondence: give {', '.join(misplaced)} to compute() (one per pair, in the order the pairs "
            "were added), not to add_batch()/add()"
        )
    for key in ("predictions", "references"):
        for i, kps in enumerate(_column(batch, key)):
            shape = _shape(kps, f"{key}[{i}]")
            if not (shape == (0,) or (len(shape) == 2 and shape[1] == 2)):
                raise LowMetricError(f"{key}[{i}]: expected [K, 2] (x, y) keypoints per pair, got shape {shape}")
    return batch


def _keypoints(kps: Any) -> np.ndarray:
    arr = np.asarray(kps, dtype=np.float64)
    return arr.reshape(0, 2) if arr.size == 0 else arr


def _pair_thresholds(thresholds: Any, target_bboxes: Any, n: int) -> list[Any]:
    if (thresholds is None) == (target_bboxes is None):
        raise LowMetricError(
            "correspondence needs thresholds= (per pair: max(height, width) of the target bounding box, in "
            "the keypoints' frame) or target_bboxes= ([x1, y1, x2, y2] per pair), exactly one of them"
        )
    if target_bboxes is not None:
        boxes = np.asarray(target_bboxes, dtype=np.float64)
        if boxes.shape != (n, 4):
            raise LowMetricError(f"target_bboxes: expected [{n}, 4] (x1, y1, x2, y2 per pair), got shape {boxes.shape}")
        return list(box_threshold(boxes))
    if np.ndim(thresholds) == 0:
        return [thresholds] * n
    thresholds = list(thresholds)
    if len(thresholds) != n:
        raise LowMetricError(f"thresholds: expected one per pair ({n} pairs), got {len(thresholds)}")
    return thresholds


def _alphas(alphas: Any) -> tuple[float, ...]:
    values = [float(a) for a in np.atleast_1d(np.asarray(alphas, dtype=np.float64))]
    if not all(0 < a <= 1 for a in values):
        raise LowMetricError(f"alphas must lie in (0, 1], got {values}")
    return (C_ALPHA, *dict.fromkeys(a for a in values if not math.isclose(a, C_ALPHA)))


@configuration("correspondence", features=_correspondence_features, prepare=_prepare_correspondence)
def correspondence(
    predictions: Any,
    references: Any,
    *,
    thresholds: Any = None,
    target_bboxes: Any = None,
    categories: list[str] | None = None,
    alphas: Any = DEFAULT_ALPHAS,
    window: int | None = 5,
    temperature: float = 0.02,
    image_size: int = FRAME_SIZE,
    grid: int = 16,
) -> dict[str, Any]:
    """C score (SPair per-image PCK@0.10 x 100) of predicted against true keypoints, pair by pair."""
    n = len(predictions)
    if n != len(references):
        raise LowMetricError(f"{n} predicted pairs but {len(references)} reference pairs")
    thr = _pair_thresholds(thresholds, target_bboxes, n)
    if categories is None:
        cats = ["all"] * n
    elif isinstance(categories, str) or len(categories) != n:
        raise LowMetricError(f"categories: expected one string per pair ({n} pairs)")
    else:
        cats = [str(c) for c in categories]
    levels = _alphas(alphas)
    table = low_metric.PckTable(alphas=levels)
    for i, (pred, gt) in enumerate(zip(predictions, references)):
        try:
            table.add(cats[i], _keypoints(pred), _keypoints(gt), thr[i])
        except (LowMetricError, ValueError, TypeError) as exc:
            raise LowMetricError(f"pair {i}: {exc}") from None
    matching = {"window": int(window or 0), "temperature": float(temperature), "image_size": int(image_size), "grid": int(grid)}
    return _stamp(table.summary(), _protocol("correspondence", alphas=list(levels), C_alpha=C_ALPHA, matching=matching))


# --- ac ----------------------------------------------------------------------------------------


def _ac_features() -> list[datasets.Features]:
    number = datasets.Value("float64")
    per_benchmark = {b: number for b in low_metric.paper_table().benchmarks}
    return [datasets.Features({"predictions": {"A": number, "C": number}}),
            datasets.Features({"predictions": {"A": per_benchmark, "C": number}})]


def _prepare_ac(batch: dict[str, Any]) -> dict[str, Any]:
    """Check the representations and write each as {"A": a, "C": c} (dicts and [A, C] pairs may mix);
    "A" may be {benchmark: a} for every one of the paper's benchmarks, in every row of the batch."""
    if batch.get("predictions") is None:
        return batch
    rows = []
    benchmarks = set(low_metric.paper_table().benchmarks)
    for i, p in enumerate(_column(batch, "predictions")):
        if isinstance(p, Mapping) and {"A", "C"} <= set(p):
            a = p["A"]
            if isinstance(a, Mapping) and set(a) != benchmarks:
                raise LowMetricError(f"predictions[{i}]: a per-benchmark A needs exactly the paper's benchmarks "
                                     f"({', '.join(sorted(benchmarks))}), got {', '.join(sorted(a))}")
            rows.append({"A": dict(a) if isinstance(a, Mapping) else a, "C": p["C"]})
        elif not isinstance(p, (Mapping, str)) and _shape(p, f"predictions[{i}]") == (2,):
            rows.append({"A": p[0], "C": p[1]})
        else:
            raise LowMetricError(f"predictions[{i}]: expected {{'A': float, 'C': float}} or [A, C], got {p!r}")
    if len({isinstance(r["A"], dict) for r in rows}) > 1:
        raise LowMetricError("predictions: give every representation one A, or every one an A per benchmark")
    return {**batch, "predictions": rows}


@lru_cache(maxsize=1)
def _paper_laws() -> dict[str, low_metric.Law]:
    table = low_metric.paper_table()
    return {b: low_metric.fit_law(*table.benchmark(b), kind="ac2", benchmark=b, names=table.names) for b in table.benchmarks}


def _paper_table_hash() -> str:
    return hashlib.sha256(resources.files("low_metric").joinpath("data/paper_table.csv").read_bytes()).hexdigest()


def _one_law(law: Any, where: str) -> low_metric.Law:
    if isinstance(law, low_metric.Law):
        return law
    try:
        if isinstance(law, Mapping):
            return low_metric.Law.from_dict(dict(law))
        if isinstance(law, str) and law.lstrip().startswith("{"):
            return low_metric.Law.from_json(law)
        if isinstance(law, (str, Path)) and Path(law).is_file():
            return low_metric.Law.load(law)
    except LowMetricError as exc:
        raise LowMetricError(f"{where}: {exc}") from None
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise LowMetricError(f"{where}: not a saved law ({type(exc).__name__}: {exc})") from None
    raise LowMetricError(f"{where}: expected 'paper', a low_metric.Law, saved-law JSON, a law file or folder, got {law!r}")


def _laws(law: Any) -> dict[str, low_metric.Law]:
    if isinstance(law, str) and law == "paper":
        return dict(_paper_laws())
    if isinstance(law, (str, Path)) and not str(law).lstrip().startswith("{") and Path(law).is_dir():
        files = sorted(Path(law).glob("*.json"))
        if not files:
            raise LowMetricError(f"law folder {law}: no *.json saved laws")
        loaded = [_one_law(f, str(f)) for f in files]
        return {(L.benchmark or f.stem): L for f, L in zip(files, loaded)}
    if isinstance(law, Mapping) and not {"kind", "weights"} <= set(law):
        return {str(b): _one_law(v, f"law[{b!r}]") for b, v in law.items()}
    one = _one_law(law, "law")
    return {one.benchmark or "benchmark": one}


def _calibrated(a: list[Any], c: list[float], calibration: Any, benchmarks: list[str] | None) -> dict[str, Any]:
    """Per representation, the calibration's placement (low-metric predict's numbers), per benchmark."""
    from low_metric.scoring.calibration import (
        check_calibration,
        load_calibration,
        place,
    )

    cal = check_calibration(calibration, "calibration") if isinstance(calibration, Mapping) else load_calibration(calibration)
    placed = [place(cal, ai, ci) for ai, ci in zip(a, c)]
    keep = list(cal["benchmarks"]) if benchmarks is None else list(benchmarks)
    unknown = sorted(set(keep) - set(cal["benchmarks"]))
    if unknown:
        raise LowMetricError(f"benchmarks: the calibration has no {', '.join(unknown)}; it covers {', '.join(cal['benchmarks'])}")

    def column(key: str) -> dict[str, list[Any]]:
        return {b: [p[key][b] for p in placed] for b in keep}

    ac_scores = column("AC")
    result = {
        "AC": np.mean(list(ac_scores.values()), axis=0).tolist(),
        "ac_score": ac_scores,
        "predicted": column("predicted"),
        "interval": column("interval"),
        "extrapolation": column("extrapolation"),
        "mapped": [p["mapped"] for p in placed],
        "laws": {b: {"kind": d["kind"], "r2": d["r2"], "n": d["n"], "protocol_hash": d["protocol_hash"]}
                 for b, d in cal["laws"].items() if b in keep},
    }
    source = {"source": "calibration", "method": cal["method"], "calibration_hash": cal["calibration_hash"],
              "calibration_protocol_hash": cal["protocol_hash"], "benchmarks": keep}
    return {**result, "_source": source}


@configuration("ac", features=_ac_features, prepare=_prepare_ac)
def ac(
    predictions: Any,
    *,
    law: Any = None,
    calibration: Any = None,
    benchmarks: list[str] | None = None,
    names: list[str] | None = None,
    mode: str = "projector",
) -> dict[str, Any]:
    """AC score and predicted benchmark scores of representations from their (A, C) and fitted law(s),
    or from a calibration that first maps them onto the paper's scale."""
    _check_mode(mode)
    raw_a = [p["A"] for p in predictions]
    per_benchmark = bool(raw_a) and isinstance(raw_a[0], Mapping)
    a: list[Any] = ([{b: finite_number(v, f"predictions[{i}]: A ({b})") for b, v in x.items()} for i, x in enumerate(raw_a)]
                    if per_benchmark else [finite_number(v, f"predictions[{i}]: A") for i, v in enumerate(raw_a)])
    c = [finite_number(p["C"], f"predictions[{i}]: C") for i, p in enumerate(predictions)]
    if names is not None and (isinstance(names, str) or len(names) != len(a)):
        raise LowMetricError(f"names: expected one name per representation ({len(a)})")
    result: dict[str, Any] = {"A": a, "C": c, "names": list(names) if names is not None else None}
    if law is not None and calibration is not None:
        raise LowMetricError("give a law or a calibration, not both")
    if calibration is not None:
        placed = _calibrated(a, c, calibration, benchmarks)
        source = placed.pop("_source")
        return _stamp({**result, **placed}, _protocol("ac", mode=mode, law=source))
    if law is None:
        note = ("AC needs a fitted law: pass law='paper' (values under the paper's protocol), a calibration, or a law "
                "fitted on results of your protocol")
        return _stamp({**result, "AC": None, "note": note}, _protocol("ac", mode=mode, law=None))
    paper = isinstance(law, str) and law == "paper"
    if paper and mode != "projector":
        raise LowMetricError(f"the paper's laws were fitted on projector-mode A; a law is never applied across modes (mode={mode!r})")
    laws = _laws(law)
    if benchmarks is not None:
        unknown = sorted(set(benchmarks) - set(laws))
        if unknown:
            raise LowMetricError(f"benchmarks: no law for {', '.join(unknown)}; the laws cover {', '.join(laws)}")
        laws = {b: laws[b] for b in benchmarks}
    if per_benchmark:
        missing = sorted(set(laws) - set(a[0]))
        if missing:
            raise LowMetricError(f"A: no value for {', '.join(missing)}")
    a_of = {b: [x[b] for x in a] if per_benchmark else a for b in laws}
    ac_scores = {b: L.ac_score(a_of[b], c).tolist() for b, L in laws.items()}
    result.update(
        AC=np.mean(list(ac_scores.values()), axis=0).tolist(),
        ac_score=ac_scores,
        predicted={b: L.predict(a_of[b], c).tolist() for b, L in laws.items()},
        laws={b: {"kind": L.kind, "r2": L.r2, "n": L.n, "protocol_hash": L.protocol_hash} for b, L in laws.items()},
    )
    if paper:  # the paper's protocol: the identity calibration's interval and extrapolation flags
        cal = _paper_identity()
        result["interval"] = {b: [[y - cal.half_width(b), y + cal.half_width(b)] for y in ys]
                              for b, ys in result["predicted"].items()}
        result["extrapolation"] = {b: [cal.place(a[i], c[i]).extrapolation[b] for i in range(len(c))]
                                   for b in result["predicted"]}
        source: dict[str, Any] = {"source": "paper", "kind": "ac2", "table_sha256": _paper_table_hash(), "benchmarks": list(laws)}
    else:
        source = {"source": "given", "laws": {b: hashlib.sha256(L.to_json().encode()).hexdigest() for b, L in laws.items()}}
    return _stamp(result, _protocol("ac", mode=mode, law=source))


@lru_cache(maxsize=1)
def _paper_identity():
    from low_metric.core.transfer import Calibration
    from low_metric.scoring.calibration import paper_calibration

    return Calibration.from_dict(paper_calibration())


# --- encoder (the whole measurement, through low_metric's scorer, as bertscore loads a model) ---


def _encoder_features() -> datasets.Features:
    return datasets.Features({"predictions": datasets.Value("string"), "references": _List(datasets.Value("string"))})


def _prepare_encoder(batch: dict[str, Any]) -> dict[str, Any]:
    for i, p in enumerate(_column(batch, "predictions")):
        if not isinstance(p, str) or not p:
            raise LowMetricError(f"predictions[{i}]: expected an encoder id (a string), got {p!r}")
    for i, r in enumerate(_column(batch, "references")):
        if isinstance(r, str) or not r or not all(isinstance(x, str) and x for x in r):
            raise LowMetricError(f"references[{i}]: expected a list of reference encoder ids, got {r!r}")
    return batch


@configuration("encoder", features=_encoder_features, prepare=_prepare_encoder)
def encoder(predictions: Any, references: Any, *, calibration: str | None = None, protocol: str | None = None,
            **options: Any) -> dict[str, Any]:
    """Score encoder ids (predictions) against reference encoders (references, the same for every
    prediction) on the built-in mini benchmark, or the data that ``options`` name: any field of
    ``low_metric.scoring.scorer.ScoreConfig`` (``spair``, ``images``, ``count``, ``mode``, ``cache_dir``, ...)."""
    from low_metric.scoring.calibration import (
        load_calibration,
        paper_calibration,
        predict,
    )
    from low_metric.scoring.paper_protocol import paper_config
    from low_metric.scoring.scorer import ScoreConfig, score_encoders

    refs = {tuple(r) for r in references}
    if len(refs) != 1:
        raise LowMetricError("references: every prediction must name the same reference encoders")
    fields = set(ScoreConfig.__dataclass_fields__) - {"references", "benchmark_images", "preset"}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise LowMetricError(f"ac_score (encoder): unknown option(s) {', '.join(unknown)}; accepted: calibration, "
                             f"protocol, {', '.join(sorted(fields))}")
    if protocol not in (None, "paper"):
        raise LowMetricError(f"protocol: only 'paper' is a preset, got {protocol!r}")
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    config = ScoreConfig(references=refs.pop(), **options)
    if protocol == "paper":
        config = paper_config(config, dtype=options.get("dtype", "bfloat16"))
    cal = load_calibration(calibration) if calibration else (paper_calibration() if protocol == "paper" else None)
    records = score_encoders(list(predictions), config)
    for r in records:
        if cal is not None:
            r["AC"] = predict(r, cal)
    return {
        "encoders": [r["encoder"] for r in records],
        "A": [r["A"]["A"] if "A" in r else None for r in records],
        "C": [r["C"]["C"] if "C" in r else None for r in records],
        "AC": [r["AC"]["AC_mean"] for r in records] if cal is not None else None,
        "results": records,
        "protocol": records[0]["protocol"],
        "protocol_hash": records[0]["protocol_hash"],
    }


# ----------------------------------------------------------------------------------------------
# The evaluate module
# ----------------------------------------------------------------------------------------------


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AcScore(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        conf = get_configuration(self.config_name)
        info = evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=conf.features(),
            homepage="https://arxiv.org/abs/2408.16357",
            license="apache-2.0",
            reference_urls=["https://arxiv.org/abs/2408.16357"],
        )
        if conf.numpy_format:
            # MetricInfo refuses format= with nested features, but compute() only calls
            # data.set_format(info.format): numpy hands [tokens, D] blocks over without a detour
            # through Python lists (several times faster and smaller for token embeddings).
            info.format = "numpy"
        return info

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (checked early: a wrong shape fails here, not at compute).
        """
        batch = {"predictions": predictions, "references": references, **kwargs}
        batch = get_configuration(self.config_name).prepare(batch)
        return super().add_batch(**batch)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one prediction and reference (checked early, like add_batch).
        """
        batch = {"predictions": None if prediction is None else [prediction], "references": None if reference is None else [reference]}
        batch = get_configuration(self.config_name).prepare({**batch, **{k: [v] for k, v in kwargs.items()}})
        one = {k: (None if v is None else v[0]) for k, v in batch.items()}
        return super().add(prediction=one.pop("predictions"), reference=one.pop("references"), **one)

    def _compute(self, **inputs):
        conf = get_configuration(self.config_name)
        accepted = inspect.signature(conf.compute).parameters
        open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())  # checks its own
        unknown = [] if open_ended else sorted(set(inputs) - set(accepted))
        if unknown:
            raise LowMetricError(
                f"ac_score ({conf.name}): unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}"
            )
        return conf.compute(**inputs)
