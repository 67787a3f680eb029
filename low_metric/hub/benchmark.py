"""The built-in mini benchmark as a Hub dataset: the Hub id that model cards name as ``dataset.type``.

The folder keeps the SPair-71k layout (``JPEGImages/``, ``ImageAnnotation/``, ``PairAnnotation/test/``,
``SOURCES.md``), so a download of it scores with ``low-metric score --spair <folder>`` exactly as the
built-in copy does (same data hash), and adds ``pairs.jsonl``, one flat row per pair, which the card
declares (``configs``, ``dataset_info``) so ``datasets.load_dataset`` and the Viewer read it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from low_metric.hub.spaces import empty_folder
from low_metric.sources.mini import load_mini, mini_benchmark_root

PAIRS_FILE = "pairs.jsonl"
PAIR_FEATURES = {  # column -> datasets dtype (lists of [x, y] points, boxes [x1, y1, x2, y2])
    "pair": "string", "category": "string", "src_image": "string", "trg_image": "string",
    "kps_ids": {"list": "int64"}, "src_kps": {"list": {"list": "float64"}}, "trg_kps": {"list": {"list": "float64"}},
    "src_bndbox": {"list": "float64"}, "trg_bndbox": {"list": "float64"},
}


def _feature(name: str, dtype: str | dict) -> dict:
    return {"name": name, "dtype": dtype} if isinstance(dtype, str) else {"name": name, **dtype}


def pairs_rows() -> list[dict]:
    """One row per test pair of the mini benchmark (coordinates in the images' own pixels)."""
    mini = load_mini()
    return [{"pair": p.id, "category": p.category,
             "src_image": p.src_path.relative_to(mini.root).as_posix(),
             "trg_image": p.trg_path.relative_to(mini.root).as_posix(),
             "kps_ids": [int(i) for i in p.kps_ids], "src_kps": p.src_kps.astype(float).tolist(),
             "trg_kps": p.trg_kps.astype(float).tolist(), "src_bndbox": p.src_box.astype(float).tolist(),
             "trg_bndbox": p.trg_box.astype(float).tolist()} for p in mini.pairs]


def benchmark_card(dataset_id: str) -> str:
    """README of the benchmark dataset (``DatasetCardData``): licences per image in SOURCES.md."""
    from huggingface_hub import DatasetCard, DatasetCardData

    mini = load_mini()
    data = DatasetCardData(
        license="other", license_name="per-image (see SOURCES.md)", license_link="SOURCES.md",
        pretty_name="low_metric mini benchmark (SPair-71k layout)", size_categories=["n<1K"],
        task_categories=["image-feature-extraction"], tags=["low_metric", "keypoint-correspondence", "spair-71k-format"],
        configs=[{"config_name": "pairs", "data_files": [{"split": "test", "path": PAIRS_FILE}]}],
        dataset_info={"config_name": "pairs", "features": [_feature(n, d) for n, d in PAIR_FEATURES.items()]},
    )
    body = (
        f"# {dataset_id}\n\n"
        f"low_metric's built-in correspondence benchmark: {len(mini.pairs)} test pairs over {len(mini.images)} real "
        f"images ({', '.join(mini.categories)}), with keypoints, in the SPair-71k layout. Model cards of encoders "
        "scored on it name this dataset. Every image's source, licence and processing: `SOURCES.md`.\n\n"
        "```bash\nlow-metric score ENCODER --spair \"$(hf download --repo-type dataset "
        f"{dataset_id})\"\n```\n\n"
        f"gives the same data hash (`{mini.hash[:16]}...`) as the copy built into low_metric. `{PAIRS_FILE}` lists "
        "the pairs (keypoints and boxes in each image's own pixels) for `datasets.load_dataset`.\n"
    )
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}"))


def build_benchmark_dataset(out: str | Path, dataset_id: str) -> Path:
    """The mini benchmark's dataset folder (SPair layout, ``pairs.jsonl``, card); returns it."""
    out = empty_folder(out)
    root = mini_benchmark_root()
    shutil.copytree(root, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    (out / PAIRS_FILE).write_text("".join(json.dumps(r) + "\n" for r in pairs_rows()), encoding="utf-8")
    (out / "README.md").write_text(benchmark_card(dataset_id), encoding="utf-8")
    return out
