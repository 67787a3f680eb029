"""Time and peak memory of low_metric.a_score against the paper script's broadcast formulation.

The paper's script computes ``cosine_similarity(t[:, None, :], r[None, :, :], dim=-1)``, which
materialises [T, R, D] tensors per image. Each measurement runs in a fresh subprocess on the same
seeded random tokens; peak memory is that process's max RSS above a process that only built the
inputs. Then, for D = 4096, token counts double until a method would pass 8 GB.

    python benchmarks/bench_a_score.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

BUDGET = 8 * 2**30
MAX_T = 8192
SIZES = [(4, 196, 256, 1024), (4, 256, 576, 1024), (2, 576, 576, 1024), (1, 576, 576, 4096)]


def worker(method: str, n: int, t: int, r: int, d: int) -> None:
    import torch
    import torch.nn.functional as F

    from low_metric import a_score

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


def measure(method: str, n: int, t: int, r: int, d: int) -> tuple[float, float, int]:
    """(seconds, A, peak RSS bytes) of one run in a fresh process."""
    proc = subprocess.Popen([sys.executable, __file__, "--worker", method, str(n), str(t), str(r), str(d)], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{method} {n}x{t}x{r}x{d} failed")
    seconds, value = map(float, out.split())
    return seconds, value, usage.ru_maxrss * 1024


def main() -> None:
    print(f"{'N x T x R x D':<24}{'method':<11}{'time s':>9}{'peak MB':>10}{'A':>10}")
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
    else:
        main()
