"""A scored result as model-card metadata (pure: text in, text out, no Hub access).

A card's ``model-index`` holds evaluation results *of that model* (hub-docs ``modelcard.md``), so
only what was measured on the encoder goes there: A and C, one metric each, typed as the evaluate
module that computes them (``ORG/ac_score``, ``config`` ``alignment`` / ``correspondence``), on the
Hub dataset they were measured on, with ``source.url`` where the numbers live (the results-dataset
file, or the Space). AC is left out: it is a law's prediction for a hypothetical MLLM, fitted on
other encoders under a calibration, not a measurement of this model; the results dataset keeps it
with its calibration. The protocol hash rides in every metric's ``args``, so another protocol is
another entry and a new value under the same protocol replaces only its own.

Merging edits only the block of the card that is ours (results entries whose ``source.name`` is
``low_metric ...``): every other byte of the card, other people's entries with their units,
comments and flow lists included, is kept as it was.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard
from huggingface_hub.repocard import REGEX_YAML_BLOCK
from huggingface_hub.repocard_data import model_index_to_eval_results

from low_metric.core.errors import LowMetricError

TASK_TYPE = "image-feature-extraction"
TASK_NAME = "Vision representation scoring (A, C)"
SOURCE_PREFIX = "low_metric"  # source.name of our entries: "low_metric <version>"
DEFAULT_ORG = "low-metric"  # the project's Hub organisation (override every id below)
_HUB_COMMIT = re.compile(r"[0-9a-f]{40}")
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
_LEGACY_TYPES = {"a_score", "c_score", "ac_score", "predicted_score"}  # what low_metric 0.1.0 filed: replaced


@dataclass(frozen=True)
class HubIds:
    """The Hub ids a card names: the evaluate module (metric ``type``) and the datasets scored on."""

    metric: str = f"{DEFAULT_ORG}/ac_score"  # hub_scripts/publish_metric.py publishes it
    mini: str = f"{DEFAULT_ORG}/mini-benchmark"  # the built-in mini benchmark (hub_scripts/publish_benchmark.py)
    spair: str | None = None  # SPair-71k has no official Hub copy: name the one scored on

    def __post_init__(self) -> None:
        for what, value in (("metric", self.metric), ("mini benchmark", self.mini), ("SPair-71k", self.spair)):
            if value is not None and not _HUB_ID.fullmatch(value):
                raise LowMetricError(f"the {what} id {value!r} is not a Hub id (org/name)")


def card_repo_id(record: dict[str, Any]) -> str:
    """The Hub model repo whose card a record belongs on: the encoder's resolved id."""
    protocol = record.get("encoder_protocol") or {}
    repo_id, revision = protocol.get("id"), str(protocol.get("revision", ""))
    if protocol.get("library") == "concat":
        raise LowMetricError(f"{record.get('encoder')}: a concatenation has no model card of its own; give repo_id")
    if not repo_id or not _HUB_COMMIT.fullmatch(revision):
        raise LowMetricError(f"{record.get('encoder')}: not a Hub model (a local folder?); give repo_id")
    return repo_id


def _pairs_dataset(record: dict[str, Any], ids: HubIds) -> dict[str, Any]:
    pairs = record["protocol"]["data"]["pairs"]
    if pairs["source"] == "spair":
        if ids.spair is None:
            raise LowMetricError(f"{record['encoder']}: scored on SPair-71k, which has no official Hub id: name the "
                                 "Hub copy used (--spair-dataset ID)")
        return {"dataset_type": ids.spair, "dataset_name": "SPair-71k", "dataset_split": pairs["split"]}
    return {"dataset_type": ids.mini, "dataset_name": "low_metric mini benchmark", "dataset_split": pairs["split"]}


def _images_dataset(record: dict[str, Any], ids: HubIds) -> dict[str, Any]:
    source = record["protocol"]["data"]["images"]["source"]
    if source == "the pairs' images":
        return _pairs_dataset(record, ids)
    if source == "folder" or not _HUB_ID.fullmatch(str(source)):
        raise LowMetricError(f"{record['encoder']}: A was measured on a local image folder, which no card can name: "
                             "publish it to a results dataset only, or score A on a Hub dataset (--dataset)")
    return {"dataset_type": source, "dataset_name": source}


def card_results(record: dict[str, Any], version: str, source_url: str, ids: HubIds = HubIds()) -> list[EvalResult]:
    """The record's measured scores as ``EvalResult`` entries: A (if measured) and C (if measured)."""
    if not record.get("protocol_hash") or "protocol" not in record:
        raise LowMetricError(f"{record.get('encoder')}: not a low_metric result (no protocol)")
    base = {"protocol_hash": record["protocol_hash"], "low_metric": version}
    common = {"task_type": TASK_TYPE, "task_name": TASK_NAME, "metric_type": ids.metric,
              "source_name": f"{SOURCE_PREFIX} {version}", "source_url": source_url}
    out = []
    if "A" in record:
        a = record["A"]
        out.append(EvalResult(**common, **_images_dataset(record, ids), metric_config="alignment",
                              metric_name=f"A ({a['mode']})", metric_value=round(float(a["A"]), 4),
                              metric_args=base | {"mode": a["mode"]}))
    if "C" in record:
        alpha = record["protocol"]["correspondence"]["alphas"][0]
        out.append(EvalResult(**common, **_pairs_dataset(record, ids), metric_config="correspondence",
                              metric_name=f"C (PCK@{alpha:g}, per image)", metric_value=round(float(record["C"]["C"]), 2),
                              metric_args=base | {"alpha": alpha}))
    if not out:
        raise LowMetricError(f"{record.get('encoder')}: the record holds no A or C score")
    return out


# ------------------------------------------------------------------------------------- merging
def _key(result: EvalResult) -> str:
    """What identifies an entry: task, dataset, metric type, config and args (not its value or names)."""
    fields = (result.task_type, result.dataset_type, result.dataset_config, result.dataset_split,
              result.dataset_revision, result.dataset_args, result.metric_type, result.metric_config, result.metric_args)
    return json.dumps(fields, sort_keys=True, default=str)


def _is_ours(entry: Any) -> bool:
    source = entry.get("source") if isinstance(entry, dict) else None
    return isinstance(source, dict) and str(source.get("name", "")).startswith(SOURCE_PREFIX)


def _flatten(entries: list[dict[str, Any]]) -> list[EvalResult]:
    return model_index_to_eval_results([{"name": "x", "results": entries}])[1] if entries else []


def _grouped(results: list[EvalResult]) -> list[dict[str, Any]]:
    """Results entries, one per task, dataset and source (so each protocol keeps its own source)."""
    groups: dict[str, dict[str, Any]] = {}
    for r in results:
        dataset = {k: v for k, v in (("name", r.dataset_name), ("type", r.dataset_type), ("config", r.dataset_config),
                                     ("split", r.dataset_split), ("revision", r.dataset_revision),
                                     ("args", r.dataset_args)) if v is not None}
        task = {"type": r.task_type, **({"name": r.task_name} if r.task_name else {})}
        source = {"name": r.source_name, "url": r.source_url}
        entry = groups.setdefault(json.dumps([task, dataset, source], sort_keys=True, default=str),
                                  {"task": task, "dataset": dataset, "metrics": [], "source": source})
        metric = {"type": r.metric_type, "value": r.metric_value, "name": r.metric_name, "config": r.metric_config,
                  "args": r.metric_args}
        entry["metrics"].append({k: v for k, v in metric.items() if v is not None})
    return list(groups.values())


def merged_entries(old: list[dict[str, Any]], results: list[EvalResult]) -> list[dict[str, Any]]:
    """Our results entries after adding ``results``: same key replaced, new ones appended, the entries
    low_metric 0.1.0 wrote (bare ``a_score`` ... ``predicted_score`` types) dropped."""
    existing = [r for r in _flatten(old) if r.metric_type not in _LEGACY_TYPES]
    position = {_key(r): i for i, r in enumerate(existing)}
    for new in results:
        if _key(new) in position:
            existing[position[_key(new)]] = new
        else:
            position[_key(new)] = len(existing)
            existing.append(new)
    return _grouped(existing)


def _dump(obj: Any, indent: int) -> str:
    text = yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, default_flow_style=False, width=10_000)
    return "".join(" " * indent + line if line.strip() else line for line in text.splitlines(True))


def _blank_or_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def _mapping_get(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k, v
    return None


def _item_lines(lines: list[str], items: list[yaml.Node], end: int, model_name: str) -> list[tuple[int, int]]:
    """The line range of each block-list item (its ``- `` line to the next item's), checked."""
    starts = [item.start_mark.line for item in items]
    for s in starts:
        if not lines[s].lstrip().startswith("-"):
            raise LowMetricError(f"{model_name}: the card's model-index is laid out unusually; edit it by hand")
    return list(zip(starts, [*starts[1:], end]))


def _splice(front: str, model_name: str, results: list[EvalResult]) -> str | None:
    """The front matter with our entries merged in, editing only our lines; None when nothing changes."""
    try:
        root = yaml.compose(front, Loader=yaml.SafeLoader)
        meta = yaml.safe_load(front) or {}
    except yaml.YAMLError as e:
        raise LowMetricError(f"{model_name}: the card's metadata does not parse ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict) or (root is not None and root.flow_style and meta):
        raise LowMetricError(f"{model_name}: the card's metadata is not a block YAML mapping; edit it by hand")
    lines = front.splitlines(True)
    index = meta.get("model-index")
    found = _mapping_get(root, "model-index") if root is not None else None
    if index is None or found is None:
        block = _dump({"model-index": [{"name": model_name, "results": merged_entries([], results)}]}, 0)
        return block if not meta else front + block
    if not isinstance(index, list) or len(index) != 1 or not isinstance(index[0], dict):
        raise LowMetricError(f"{model_name}: the card's model-index lists {len(index) if isinstance(index, list) else 0} "
                             "models; edit it by hand")
    old = index[0].get("results")
    node = _mapping_get(found[1].value[0], "results") if isinstance(found[1], yaml.SequenceNode) else None
    if not old:  # a model-index without results: only its own lines are rewritten
        start, end = found[0].start_mark.line, found[1].end_mark.line
        block = _dump({"model-index": [{"name": index[0].get("name") or model_name,
                                        "results": merged_entries([], results)}]}, found[0].start_mark.column)
        return "".join(lines[:start]) + block + "".join(lines[end:])
    if node is None or not isinstance(node[1], yaml.SequenceNode) or node[1].flow_style \
            or not isinstance(old, list) or not all(isinstance(e, dict) for e in old):
        raise LowMetricError(f"{model_name}: the card's model-index results are not a block list of entries; "
                             "edit it by hand")
    ours_old = [e for e in old if _is_ours(e)]
    new_ours = merged_entries(ours_old, results)
    if new_ours == ours_old:
        return None
    end = node[1].end_mark.line
    first = node[1].value[0].start_mark.line
    while end > first + 1 and _blank_or_comment(lines[end - 1]):
        end -= 1  # comments and blank lines after the list belong to what follows it
    kept: list[str] = []
    for (s, e), entry in zip(_item_lines(lines, node[1].value, end, model_name), old):
        tail = e
        if _is_ours(entry):
            while tail > s and _blank_or_comment(lines[tail - 1]):
                tail -= 1
        kept += lines[s:e] if not _is_ours(entry) else lines[tail:e]  # our entry's lines go, what follows stays
    dash = lines[first].index("-")
    spliced = "".join(lines[:first]) + "".join(kept) + _dump(new_ours, dash) + "".join(lines[end:])
    after = yaml.safe_load(spliced)["model-index"][0]["results"]
    if [e for e in after if not _is_ours(e)] != [e for e in old if not _is_ours(e)] or \
            [e for e in after if _is_ours(e)] != new_ours:
        raise LowMetricError(f"{model_name}: the card's model-index could not be edited in place; edit it by hand")
    return spliced


def merge_card(card_text: str | None, results: list[EvalResult], model_name: str) -> str:
    """The card with ``results`` merged into its model-index; returns ``card_text`` itself when nothing changes.

    Our entries (``source.name`` ``low_metric ...``) are rewritten; every other line of the card is
    kept byte for byte. A card whose model-index covers several models is refused; the result is
    checked to read back (:func:`check_card`).
    """
    if card_text is None:
        text = f"---\n{_splice('', model_name, results)}---\n# {model_name}\n"
    elif (match := REGEX_YAML_BLOCK.search(card_text)) is None:
        text = f"---\n{_splice('', model_name, results)}---\n{card_text}"
    else:
        spliced = _splice(match.group(2) + "\n", model_name, results)
        if spliced is None:
            return card_text
        text = card_text[:match.start(2)] + spliced.removesuffix("\n") + card_text[match.end(2):]
    check_card(text, model_name)
    return text


def check_card(text: str, model_name: str) -> None:
    """What huggingface_hub itself checks of a card: its metadata parses and its model-index reads
    back as evaluation results (the Hub's own validator is asked too, before any write: publishing)."""
    try:
        ModelCard(text, ignore_metadata_errors=False)
    except (yaml.YAMLError, ValueError, KeyError, TypeError) as e:
        raise LowMetricError(f"{model_name}: the merged card's metadata does not read back ({str(e).splitlines()[0]})") from None
