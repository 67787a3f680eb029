"""A scored result as model-card metadata (pure: text in, text out, no Hub access).

Each record becomes one ``EvalResult`` per metric in the card's ``model-index`` (A, C, and AC with
the law's predicted benchmark scores when the record has them), or entries of the Hub's newer
``.eval_results/*.yaml`` form. The protocol hash rides in every metric's ``args``: an entry is
identified by task, dataset, metric and args, so a changed protocol is another entry and a changed
value under the same protocol replaces only its own entry. Everything else in a card is kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard
from huggingface_hub.repocard import REGEX_YAML_BLOCK

from low_metric.core.errors import LowMetricError
from low_metric.scoring.results import protocol_hash

TASK_TYPE = "image-feature-extraction"
TASK_NAME = "Vision representation scoring (A, C, AC)"
SOURCE_URL = "https://arxiv.org/abs/2408.16357"  # the method; publishers may point at their results instead
_HUB_COMMIT = re.compile(r"[0-9a-f]{40}")


def card_repo_id(record: dict[str, Any]) -> str:
    """The Hub model repo whose card a record belongs on: the encoder's resolved id."""
    protocol = record.get("encoder_protocol") or {}
    repo_id, revision = protocol.get("id"), str(protocol.get("revision", ""))
    if protocol.get("library") == "concat":
        raise LowMetricError(f"{record.get('encoder')}: a concatenation has no model card of its own; give repo_id")
    if not repo_id or not _HUB_COMMIT.fullmatch(revision):
        raise LowMetricError(f"{record.get('encoder')}: not a Hub model (a local folder?); give repo_id")
    return repo_id


def _dataset(record: dict[str, Any]) -> dict[str, Any]:
    """The data a record was scored on, as model-index dataset fields; the revision is the data's hash."""
    data = record["protocol"]["data"]
    pairs, images = data.get("pairs"), data.get("images")
    fields: dict[str, Any] = {"dataset_revision": protocol_hash(data)}
    if pairs:
        spair = pairs["source"] == "spair"
        fields |= {"dataset_type": "spair-71k" if spair else "low_metric/mini",
                   "dataset_name": "SPair-71k" if spair else "low_metric mini benchmark", "dataset_split": pairs["split"]}
    else:
        fields |= {"dataset_type": images["source"], "dataset_name": f"images: {images['source']}"}
    return fields


def _metrics(record: dict[str, Any]) -> list[tuple[str, str, str, float, dict[str, Any]]]:
    """(type, config, pretty name, value, extra args) of each metric the record holds."""
    out = []
    if "A" in record:
        a = record["A"]
        out.append(("a_score", "alignment", f"A ({a['mode']})", round(float(a["A"]), 4), {"mode": a["mode"]}))
    if "C" in record:
        alpha = record["protocol"]["correspondence"]["alphas"][0]
        out.append(("c_score", "correspondence", f"C (PCK@{alpha:g}, per image)", round(float(record["C"]["C"]), 2),
                    {"alpha": alpha}))
    if "AC" in record:
        ac = record["AC"]
        out.append(("ac_score", "ac", "AC (mean over benchmarks)", round(float(ac["AC_mean"]), 4), {}))
        out += [("predicted_score", "ac", f"Predicted {bench} (AC law)", round(float(v), 2), {"benchmark": bench})
                for bench, v in ac["predicted"].items()]
    if not out:
        raise LowMetricError(f"{record.get('encoder')}: the record holds no A, C or AC score")
    return out


def eval_results(record: dict[str, Any], version: str, source_url: str = SOURCE_URL) -> list[EvalResult]:
    """One ``EvalResult`` per metric of a record, its protocol hash in the metric args."""
    if not record.get("protocol_hash") or "protocol" not in record:
        raise LowMetricError(f"{record.get('encoder')}: not a low_metric result (no protocol)")
    base = {"protocol_hash": record["protocol_hash"], "low_metric": version}
    return [EvalResult(task_type=TASK_TYPE, task_name=TASK_NAME, **_dataset(record), metric_type=kind,
                       metric_config=config, metric_name=name, metric_value=value, metric_args=base | extra,
                       source_name=f"low_metric {version}", source_url=source_url)
            for kind, config, name, value, extra in _metrics(record)]


def _key(result: EvalResult) -> str:
    """What identifies an entry: everything but its value, pretty names and source."""
    fields = asdict(result)
    for k in ("metric_value", "metric_name", "task_name", "dataset_name", "source_name", "source_url", "verified",
              "verify_token"):
        fields.pop(k)
    return json.dumps(fields, sort_keys=True, default=str)


def merge_card(card_text: str | None, results: list[EvalResult], model_name: str) -> str:
    """The card with ``results`` merged into its model-index; returns ``card_text`` itself when nothing changes.

    An entry with the same key is replaced, others are appended; other entries, metadata and the
    card's body are kept. A card whose model-index covers several models is refused.
    """
    text = card_text if card_text is not None else f"---\n{{}}\n---\n# {model_name}\n"
    match = REGEX_YAML_BLOCK.search(text)
    try:
        raw = yaml.safe_load(match.group(2)) if match else None
        card = ModelCard(text, ignore_metadata_errors=False)
    except (yaml.YAMLError, ValueError) as e:
        raise LowMetricError(f"{model_name}: the card's metadata does not parse ({str(e).splitlines()[0]})") from None
    index = (raw or {}).get("model-index") if isinstance(raw, dict) else None
    if isinstance(index, list) and len(index) > 1:
        raise LowMetricError(f"{model_name}: the card's model-index lists {len(index)} models; edit it by hand")
    existing = list(card.data.eval_results or [])
    position = {_key(r): i for i, r in enumerate(existing)}
    changed = False
    for new in results:
        i = position.get(_key(new))
        if i is None:
            existing.append(new)
            changed = True
        elif existing[i] != new:
            existing[i], changed = new, True
    if not changed:
        return text
    card.data.eval_results = existing
    card.data.model_name = card.data.model_name or model_name
    return str(card)


def eval_results_yaml(record: dict[str, Any], version: str, benchmark: str,
                      source_url: str = SOURCE_URL) -> tuple[str, str]:
    """(path, YAML text) of the record's ``.eval_results`` file: A, C and AC filed under ``benchmark``.

    One file per protocol (``.eval_results/low_metric-<hash16>.yaml``); the protocol hash is in
    each entry's ``notes``. Needs a huggingface_hub recent enough to know that form.
    """
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    digest = record["protocol_hash"]
    entries = [EvalResultEntry(dataset_id=benchmark, task_id=kind, value=value, source_url=source_url,
                               source_name=f"low_metric {version}", notes=f"{name}; low_metric protocol {digest}")
               for kind, _, name, value, _ in _metrics(record) if kind != "predicted_score"]
    text = yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False, allow_unicode=True)
    return f".eval_results/low_metric-{digest[:16]}.yaml", text
