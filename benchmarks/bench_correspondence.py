"""The C engine against the pair-by-pair loop: time, peak memory and agreement, side by side.

1. Engine, on the same pairs (default 2,000 over 100 images, K = 1..20 keypoints, D = 384 tokens on
   a 16 x 16 grid, window 5), each timing from tokens to predictions: the loop (descriptor grids
   built once, then ``match_keypoints`` pair by pair), ``match_keypoints`` on batches of pairs
   (grids gathered per batch, keypoints NaN-padded), and ``match_image_pairs`` (each target grid
   against all its pairs' keypoints in one product). Runs alternate; the best of ``--repeats``.
2. The scorer's C stage at SPair-71k scale (12,234 synthetic pairs over 1,800 images in 18
   categories, tokens read from a real feature cache): ``correspondence_table`` against the same
   stage pair by pair, each in a fresh process; peak memory is the growth of its peak RSS during
   the stage (Linux: the peak is reset once the pairs are built and the cache opened). Both give
   the same C. Both read (and verify) the same tokens from the cache: the ratio is shown with and
   without that shared cost.

    python benchmarks/bench_correspondence.py [--pairs 2000] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from low_metric.core.correspondence import (  # noqa: E402
    PckTable,
    descriptor_grid,
    match_image_pairs,
    match_keypoints,
    pad_keypoints,
)
from low_metric.scoring.cache import FeatureCache  # noqa: E402
from low_metric.scoring.scorer import correspondence_table  # noqa: E402
from low_metric.sources.spair import SpairPair  # noqa: E402

D, GRID, WINDOW = 384, (16, 16), 5
CATEGORIES = 18


def synthetic_pairs(n_pairs: int, n_images: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Source and target image indices (different images) and [K, 2] keypoints, K = 1..20."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n_images, n_pairs)
    trg = (src + rng.integers(1, n_images, n_pairs)) % n_images
    kps = [rng.uniform(0, 840, (int(k), 2)) for k in rng.integers(1, 21, n_pairs)]
    return src, trg, kps


def synthetic_tokens(n_images: int, seed: int = 1) -> torch.Tensor:
    """Tokens with shared structure (a smooth field plus noise), so matches are not arbitrary."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(1, GRID[0] * GRID[1], D, generator=g)
    return base + 0.7 * torch.randn(n_images, GRID[0] * GRID[1], D, generator=g)


# ------------------------------------------------------------------------------ 1. engine
def engine_loop(tokens, src, trg, kps, p):
    grids = descriptor_grid(tokens, GRID, p)
    return pad_keypoints([match_keypoints(grids[s], grids[t], k, window=WINDOW) for s, t, k in zip(src, trg, kps)])


def engine_batched(tokens, src, trg, kps, p):
    grids = descriptor_grid(tokens, GRID, p)
    batch = max(1, 2**24 // (2 * grids[0].numel() * 4))  # the gathered grids of a batch: 16 MiB
    padded = pad_keypoints(kps)
    return torch.cat([match_keypoints(grids[src[i:i + batch]], grids[trg[i:i + batch]], padded[i:i + batch],
                                      window=WINDOW) for i in range(0, len(src), batch)])


def engine_image_pairs(tokens, src, trg, kps, p):
    return match_image_pairs(tokens, GRID, src, trg, pad_keypoints(kps), size=p, window=WINDOW)


def engine(n_pairs: int, repeats: int) -> None:
    n_images = 100
    tokens = synthetic_tokens(n_images)
    src, trg, kps = synthetic_pairs(n_pairs, n_images)
    methods = {"loop": engine_loop, "batched": engine_batched, "image_pairs": engine_image_pairs}
    print(f"1. engine: {n_pairs} pairs over {n_images} images, {sum(map(len, kps))} keypoints, D = {D}, "
          f"window {WINDOW}, best of {repeats}")
    print(f"   {'P':>3}  {'loop ms/pair':>12}  {'batched':>8}  {'image_pairs':>11}  {'loop/batched':>12}  "
          f"{'loop/image_pairs':>16}  {'max |diff| px':>13}")
    for p in (16, 60):
        best = dict.fromkeys(methods, float("inf"))
        preds = {}
        for _ in range(repeats):
            for name, method in methods.items():
                start = time.perf_counter()
                preds[name] = method(tokens, src, trg, kps, p)
                best[name] = min(best[name], time.perf_counter() - start)
        diff = max(float((preds["loop"] - preds[name]).nan_to_num(0.0).abs().max()) for name in ("batched", "image_pairs"))
        per = {k: 1e3 * v / n_pairs for k, v in best.items()}
        print(f"   {p:>3}  {per['loop']:>12.3f}  {per['batched']:>8.3f}  {per['image_pairs']:>11.3f}  "
              f"{best['loop'] / best['batched']:>11.1f}x  {best['loop'] / best['image_pairs']:>15.1f}x  {diff:>13.2e}")
        assert diff <= 0.05, "the methods disagree"


# ------------------------------------------------------------------------ 2. the C stage
def spair_pairs(n_pairs: int, n_images: int) -> list[SpairPair]:
    """Synthetic SPair pairs: each category holds n_images / 18 images and its share of the pairs."""
    per_cat = n_images // CATEGORIES
    pairs = []
    rng = np.random.default_rng(2)
    for c in range(CATEGORIES):
        count = n_pairs // CATEGORIES + (c < n_pairs % CATEGORIES)
        src, trg, kps = synthetic_pairs(count, per_cat, seed=c)
        for i, (s, t, k) in enumerate(zip(src, trg, kps)):
            gt = np.clip(k + rng.normal(scale=30, size=k.shape), 0, 839)
            box = np.array([100.0, 100.0, 100 + rng.uniform(100, 700), 100 + rng.uniform(100, 700)])
            pairs.append(SpairPair(
                id=f"{c}-{i}", category=f"cat{c:02d}", src=f"{s}", trg=f"{t}",
                src_path=Path(f"cat{c:02d}/{c * per_cat + s}"), trg_path=Path(f"cat{c:02d}/{c * per_cat + t}"),
                src_size=(840, 840), trg_size=(840, 840), kps_ids=tuple(range(len(k))), src_kps=k, trg_kps=gt,
                src_box=box, trg_box=box, src_kps_frame=k, trg_kps_frame=gt, src_box_frame=box, trg_box_frame=box,
                threshold=float(max(box[2] - box[0], box[3] - box[1]))))
    return pairs


def stage_loop(pairs, tokens_of, p):
    """The C stage as it was: per category, grids once, then one match_keypoints and one add per pair."""
    table = PckTable()
    by_category: dict[str, list] = {}
    for pair in pairs:
        by_category.setdefault(pair.category, []).append(pair)
    for group in by_category.values():
        paths = sorted({q.src_path for q in group} | {q.trg_path for q in group})
        index = {path: i for i, path in enumerate(paths)}
        grids = descriptor_grid(tokens_of(paths), GRID, p)
        for q in group:
            pred = match_keypoints(grids[index[q.src_path]], grids[index[q.trg_path]], q.src_kps_frame, window=WINDOW)
            table.add(q.category, pred, q.trg_kps_frame, q.threshold)
    return table.summary()


def stage_worker(method: str, cache_dir: str, n_pairs: int, n_images: int, p: int, threads: int) -> None:
    torch.set_num_threads(threads)
    pairs = spair_pairs(n_pairs, n_images)
    cache = FeatureCache(cache_dir)

    reading = [0.0]

    def tokens_of(paths):  # as the scorer reads them (features.cached_tokens)
        start = time.perf_counter()
        tokens = cache.get_stacked([str(path) for path in paths])
        reading[0] += time.perf_counter() - start
        return tokens

    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS (Linux)
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    if method == "stage":
        c = correspondence_table(pairs, tokens_of, GRID, patch=p, window=WINDOW, temperature=0.02,
                                 alphas=(0.1, 0.05, 0.01), device="cpu")["C"]
    else:
        c = stage_loop(pairs, tokens_of, p)["C"]
    print(f"{time.perf_counter() - start} {c!r} {(_status_kb('VmHWM') - before) * 1024} {reading[0]}")


def _status_kb(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def run_stage(method: str, cache_dir: str, n_pairs: int, n_images: int, p: int) -> tuple[float, float, int, float]:
    """(seconds, C, peak RSS growth in bytes during the stage, seconds reading the cache) of one C
    stage in a fresh process."""
    args = [sys.executable, __file__, "--worker", method, cache_dir, str(n_pairs), str(n_images), str(p),
            str(torch.get_num_threads())]
    out = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=True).stdout
    seconds, c, peak, reading = out.split()
    return float(seconds), float(c), int(peak), float(reading)


def stage(n_pairs: int, n_images: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as cache_dir:
        cache = FeatureCache(cache_dir)
        tokens = synthetic_tokens(n_images, seed=3)
        per_cat = n_images // CATEGORIES
        cache.put([(str(Path(f"cat{i // per_cat:02d}/{i}")), tokens[i]) for i in range(per_cat * CATEGORIES)])
        print(f"\n2. the scorer's C stage: {n_pairs} synthetic pairs over {per_cat * CATEGORIES} images in "
              f"{CATEGORIES} categories (tokens [{GRID[0] * GRID[1]}, {D}] from a feature cache), each run in a "
              f"fresh process, best of {repeats}")
        print(f"   {'P':>3}  {'loop s':>8}  {'stage s':>8}  {'loop/stage':>10}  {'(reading)':>9}  {'loop MB':>8}  "
              f"{'stage MB':>8}  {'loop/stage':>10}  {'C loop':>8}  {'C stage':>8}")
        for p in (16, 60):
            runs: dict[str, list] = {"loop": [], "stage": []}
            for _ in range(repeats):
                for method in runs:
                    runs[method].append(run_stage(method, cache_dir, n_pairs, n_images, p))
            (t_loop, c_loop, m_loop, r_loop), (t_stage, c_stage, m_stage, r_stage) = min(runs["loop"]), min(runs["stage"])
            mb_loop, mb_stage = m_loop / 2**20, m_stage / 2**20
            print(f"   {p:>3}  {t_loop:>8.2f}  {t_stage:>8.2f}  {t_loop / t_stage:>9.1f}x  {r_stage:>8.2f}s  {mb_loop:>8.0f}  "
                  f"{mb_stage:>8.0f}  {mb_loop / max(mb_stage, 1):>9.1f}x  {c_loop:>8.3f}  {c_stage:>8.3f}")
            print(f"        without reading the cache (the same {r_loop:.2f} / {r_stage:.2f} s in both): "
                  f"{(t_loop - r_loop) / (t_stage - r_stage):.1f}x")
            assert abs(c_loop - c_stage) < 0.05, "the C stage and the loop disagree"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000, help="pairs of the engine comparison")
    parser.add_argument("--spair-pairs", type=int, default=12234)
    parser.add_argument("--images", type=int, default=1800)
    parser.add_argument("--repeats", type=int, default=3, help="engine runs of each method (C stage: 1)")
    parser.add_argument("--quick", action="store_true", help="500 engine pairs, 2,000 C-stage pairs over 360 images")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (default: all cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.pairs, args.spair_pairs, args.images = 500, 2000, 360
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    engine(args.pairs, args.repeats)
    stage(args.spair_pairs, args.images, 1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        stage_worker(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:]))
    else:
        main()
