"""Time and peak memory of low_metric.a_score and ridge_a_score against their floors, and of a_score
against the paper script's broadcast formulation.

1. The floors, on 100 images (target 576 tokens on 24 x 24, reference 256 on 16 x 16, D 1024, the
   paper's CLIP@336 vs CLIP@224 shapes): ``a_score`` against a bare batched matmul + max over the
   same tensors (no checks, no normalisation), and ``ridge_a_score`` against its bare closed form
   on the same split (float32 Gram and cross products, solve, mapping, matmul + max; the pairing
   resample done beforehand). Times: the best of ``--repeats`` alternating runs in one process.
2. The paper script computes ``cosine_similarity(t[:, None, :], r[None, :, :], dim=-1)``, which
   materialises [T, R, D] tensors per image; then, for D = 4096, token counts double until a method
   would pass 8 GB.
Peak memory, each method in a fresh process on the same seeded random tokens: in part 1 the growth
of its peak RSS during the call (Linux: the peak is reset once the inputs are built), in part 2 its
max RSS above a process that only built the inputs.

    python benchmarks/bench_a_score.py [--repeats 5] [--floors-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BUDGET = 8 * 2**30
MAX_T = 8192
SIZES = [(4, 196, 256, 1024), (4, 256, 576, 1024), (2, 576, 576, 1024), (1, 576, 576, 4096)]
FLOOR_SIZE = (100, 576, 256, 1024)  # images, target tokens, reference tokens, D
FLOOR_GRIDS = ((24, 24), (16, 16))


def floor_inputs(n: int, t: int, r: int, d: int):
    """Seeded tokens: a reference and a target that is a noisy linear function of it (so the
    ridge has something to find), both float32 [N, tokens, D]."""
    import torch

    g = torch.Generator().manual_seed(0)
    ref = torch.randn(n, r, d, generator=g)
    up = torch.nn.functional.interpolate(ref.view(n, *FLOOR_GRIDS[1], d).permute(0, 3, 1, 2), size=FLOOR_GRIDS[0],
                                         mode="bilinear", align_corners=False).permute(0, 2, 3, 1).reshape(n, t, d)
    mix = torch.randn(d, d, generator=g) / d**0.5
    return up @ mix + 0.5 * torch.randn(n, t, d, generator=g), ref


def a_floor(target, ref) -> float:
    """The bare batched matmul + max (inputs taken as they are)."""
    import torch

    return float(torch.bmm(target, ref.transpose(1, 2)).amax(dim=2).mean())


def ridge_floor(paired_x, y, held_target, held_ref, strength: float = 1e-3) -> float:
    """The bare ridge closed form on prepared float32 rows (paired_x: the calibration target already
    resampled onto the reference grid), then the matmul + max on the mapped held-out target."""
    import torch

    gram = paired_x.T @ paired_x
    gram.diagonal().add_(strength * gram.diagonal().mean())
    weight = torch.linalg.solve(gram, paired_x.T @ y)
    return a_floor(held_target @ weight, held_ref)


def prepared_ridge(target, ref):
    """The floor's inputs, made outside its timer: the same split as ridge_a_score's."""
    from low_metric.core.alignment import calibration_split, resample_tokens

    cal, held = calibration_split(len(target), 0.5, 0)
    d = target.shape[-1]
    paired = resample_tokens(target[cal], *FLOOR_GRIDS).reshape(-1, d)
    return paired, ref[cal].reshape(-1, d), target[held], ref[held]


def run_floor_method(method: str, target, ref, prepared) -> float:
    from low_metric import a_score, ridge_a_score

    if method == "a_score":
        return a_score(target, ref)
    if method == "a_floor":
        return a_floor(target, ref)
    if method == "ridge_a_score":
        return ridge_a_score(target, FLOOR_GRIDS[0], {"r": (ref, FLOOR_GRIDS[1])}).a
    if method == "ridge_floor":
        return ridge_floor(*prepared)
    return float("nan")


def floor_times(repeats: int) -> None:
    """Worker: every floor method, alternating, best of ``repeats``; prints 'method seconds value'."""
    import torch

    target, ref = floor_inputs(*FLOOR_SIZE)
    prepared = prepared_ridge(target, ref)
    methods = ("a_score", "a_floor", "ridge_a_score", "ridge_floor")
    best = dict.fromkeys(methods, float("inf"))
    values = {}
    for _ in range(repeats):
        for m in methods:
            start = time.perf_counter()
            values[m] = run_floor_method(m, target, ref, prepared)
            best[m] = min(best[m], time.perf_counter() - start)
    print(torch.get_num_threads())
    for m in methods:
        print(m, best[m], values[m])


def worker(method: str, n: int, t: int, r: int, d: int) -> None:
    import torch
    import torch.nn.functional as F

    from low_metric import a_score

    if method in ("a_score_floor", "a_floor", "ridge_a_score", "ridge_floor"):
        target, ref = floor_inputs(n, t, r, d)
        prepared = prepared_ridge(target, ref) if method == "ridge_floor" else None
        with open("/proc/self/clear_refs", "w") as f:  # peak RSS := current RSS (Linux)
            f.write("5")
        before = _status_kb("VmRSS")
        value = run_floor_method("a_score" if method == "a_score_floor" else method, target, ref, prepared)
        print(f"{(_status_kb('VmHWM') - before) * 1024} {value}")
        return
    g = torch.Generator().manual_seed(0)
    target, ref = torch.randn(n, t, d, generator=g), torch.randn(n, r, d, generator=g)
    start = time.perf_counter()
    if method == "a_score":
        value = a_score(target, ref)
    elif method == "broadcast":
        value = sum(F.cosine_similarity(x[:, None, :], y[None, :, :], dim=-1).max(1).values.mean().item() for x, y in zip(target, ref)) / n
    else:
        value = float("nan")
    print(f"{time.perf_counter() - start} {value}")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(next(x for x in f if x.startswith(field + ":")).split()[1])


def measure(method: str, n: int, t: int, r: int, d: int) -> tuple[float, float, int]:
    """(seconds, A, peak RSS bytes) of one run in a fresh process."""
    proc = subprocess.Popen([sys.executable, __file__, "--worker", method, str(n), str(t), str(r), str(d)], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{method} {n}x{t}x{r}x{d} failed")
    seconds, value = map(float, out.split())
    return seconds, value, usage.ru_maxrss * 1024


def floors(repeats: int) -> None:
    n, t, r, d = FLOOR_SIZE
    out = subprocess.run([sys.executable, __file__, "--floor-times", str(repeats)], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    threads, rows = out[0], {m: (float(s), float(v)) for m, s, v in (line.split() for line in out[1:] if line)}
    peaks = {m: measure(w, *FLOOR_SIZE)[0] for m, w in  # the worker prints its peak growth first
             (("a_score", "a_score_floor"), ("a_floor", "a_floor"), ("ridge_a_score", "ridge_a_score"),
              ("ridge_floor", "ridge_floor"))}
    print(f"1. against the floors: {n} images, target {t} tokens ({FLOOR_GRIDS[0][0]}x{FLOOR_GRIDS[0][1]}), reference "
          f"{r} ({FLOOR_GRIDS[1][0]}x{FLOOR_GRIDS[1][1]}), D {d}, float32, {threads} threads, best of {repeats} "
          f"(peak: RSS growth during the call, fresh process)")
    print(f"   {'method':<15}{'time s':>9}{'peak MB':>10}{'A':>10}")
    for m, (sec, val) in rows.items():  # a floor's value is not an A (its tokens are not normalised)
        print(f"   {m:<15}{sec:>9.3f}{peaks[m] / 2**20:>10.0f}{'-' if 'floor' in m else f'{val:.5f}':>10}")
    for ours, floor, goal in (("a_score", "a_floor", 1.3), ("ridge_a_score", "ridge_floor", 1.5)):
        print(f"   {ours} / its floor: time {rows[ours][0] / rows[floor][0]:.2f}x (goal <= {goal}), "
              f"memory {peaks[ours] / max(peaks[floor], 1):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="alternating timed runs of each floor method")
    parser.add_argument("--floors-only", action="store_true", help="only part 1")
    args = parser.parse_args()
    floors(args.repeats)
    if args.floors_only:
        return
    print(f"\n2. against the broadcast formulation\n{'N x T x R x D':<24}{'method':<11}{'time s':>9}{'peak MB':>10}{'A':>10}")
    for n, t, r, d in SIZES:
        base = measure("none", n, t, r, d)[2]
        rows = {m: measure(m, n, t, r, d) for m in ("a_score", "broadcast")}
        for m, (sec, val, peak) in rows.items():
            print(f"{f'{n}x{t}x{r}x{d}':<24}{m:<11}{sec:>9.3f}{(peak - base) / 2**20:>10.0f}{val:>10.5f}")
        (s1, v1, p1), (s2, v2, p2) = rows["a_score"], rows["broadcast"]
        assert abs(v1 - v2) < 1e-4, "the two formulations disagree"
        print(f"{'':<24}ratios broadcast / a_score: time {s2 / s1:.1f}x, memory {(p2 - base) / max(p1 - base, 1):.1f}x")

    print(f"\nlargest token count T = R (one image, D = 4096) within 8 GB, trying T = 64 .. {MAX_T} by doubling:")
    for method in ("broadcast", "a_score"):
        t, best, per_elem = 64, None, None
        while t <= MAX_T:
            if method == "broadcast" and per_elem is not None and per_elem * t * t * 4096 > BUDGET:
                break  # its [T, T, D] tensors, at the measured bytes per element, pass 8 GB
            base = measure("none", 1, t, t, 4096)[2]
            sec, _, peak = measure(method, 1, t, t, 4096)
            if peak - base > BUDGET:
                break
            best, per_elem = (t, sec, peak - base), (peak - base) / (t * t * 4096)
            t *= 2
        limit = "the largest tried" if t > MAX_T else "twice this passes 8 GB"
        print(f"  {method:<10} T = {best[0]:>5} ({limit}): peak {best[2] / 2**20:.0f} MB, {best[1]:.2f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], *map(int, sys.argv[3:]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--floor-times":
        floor_times(int(sys.argv[2]))
    else:
        main()
