"""Choose the AC policy's recommendation rule on synthetic candidate sets, then report it on the 13 rows.

Synthetic sets: 13 candidates, their (A, C) in the unit square, their scores from a law like the
paper's plus noise. Laws: one of the paper's 8 (fitted on its table, normalised) with its weights
perturbed (N(0, 0.4 x mean |w|)), noise of the law's own residual spread x {0.5, 1, 2}, with or
without a misspecification (a random cubic term, 2 residual spreads). Points: ``paper-points``
(jittered copies of the paper's normalised points), ``uniform``, ``clusters`` (3 random centres).
Plus ``bootstrap``: one of the 8 laws unperturbed, on its own 13 points (jittered by 0.03), fresh
noise of its residual spread. Every rule sees the same fine-tune orders (same seeds).

Selection (fixed before looking at the 13 rows' results): the highest mean ``current`` over
n = 2..5 (averaged over the broad families and the bootstrap family), among the rules whose mean
``reached`` over n = 2..5 is not below the paper's rule's in either family. Then the 13 rows.

    python benchmarks/bench_policy.py                       # about 5 minutes on 2 cores
    python benchmarks/bench_policy.py --sets 100 --trials 20 --table-trials 2000
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from low_metric import fit_law, paper_table
from low_metric.core.law import design_matrix
from low_metric.core.policy import RULES, law_predictions, simulate, unit_square

BUDGET, K = 5, 3


# ------------------------------------------------------------------------------------- the rules compared
def keep(ridge: float, alternate: bool = False, merge_at_two: bool = False):
    """Best fine-tuned kept; untried places by a (ridged) law; optionally alternating with the plain law."""
    def rule(a_n, c_n, observed, y_obs, k):
        best = int(np.flatnonzero(observed)[np.argmax(y_obs)])
        plain = law_predictions(a_n, c_n, observed, y_obs)
        if merge_at_two and observed.sum() == 2:
            return RULES["best-kept"](a_n, c_n, observed, y_obs, k)
        main = law_predictions(a_n, c_n, observed, y_obs, ridge=ridge) if ridge else plain
        laws = (main, plain) if alternate else (main,)
        orders = [[int(i) for i in np.argsort(-law, kind="stable") if not observed[i]] for law in laws]
        top, turn = [best], 0
        while len(top) < k and any(orders):
            order = orders[turn % len(orders)] or next(o for o in orders if o)
            pick = order.pop(0)
            if pick not in top:
                top.append(pick)
                turn += 1
        return np.array(top), main
    return rule


CANDIDATES = {
    "paper": RULES["paper"],
    "best-kept": RULES["best-kept"],  # = keep(0.01, alternate=True, merge_at_two=True)
    "keep (plain law)": keep(0.0),
    "keep (ridge 0.01)": keep(0.01),
    "keep (ridge 0.01), paper at 2": keep(0.01, merge_at_two=True),
    "keep (ridge 0.01 + plain)": keep(0.01, alternate=True),
}


# ------------------------------------------------------------------------------------- synthetic sets
def paper_laws():
    """Each benchmark's law on the normalised table: weights, residual spread, its 13 points."""
    table = paper_table()
    out = []
    for b in table.benchmarks:
        a, c, y = table.benchmark(b)
        law = fit_law(a, c, y)
        an, cn = unit_square(a, c)
        yn = (y - y.min()) / (y.max() - y.min())
        resid = yn - design_matrix(an, cn) @ np.array(law.weights)
        out.append((np.array(law.weights), float(np.sqrt(np.mean(resid**2))), np.stack([an, cn], 1)))
    return out


def candidate_set(rng, laws, family: str, noise: float, misspec: float):
    i = int(rng.integers(len(laws)))
    w, sd, own_points = laws[i]
    if family == "bootstrap":
        p = own_points + rng.normal(0, 0.03, size=(13, 2))
    else:
        w = w + rng.normal(0, 0.4, size=6) * np.abs(w).mean()
        if family == "paper-points":
            pool = np.concatenate([pts for _, _, pts in laws])
            p = pool[rng.integers(len(pool), size=13)] + rng.normal(0, 0.08, size=(13, 2))
        elif family == "uniform":
            p = rng.uniform(size=(13, 2))
        else:
            centres = rng.uniform(size=(3, 2))
            p = centres[rng.integers(3, size=13)] + rng.normal(0, 0.1, size=(13, 2))
    a, c = p[:, 0], p[:, 1]
    y = design_matrix(a, c) @ w + rng.normal(0, noise * sd, size=13)
    if misspec:
        cubic = np.stack([a**3, a * a * c, a * c * c, c**3], 1) @ rng.normal(size=4)
        y = y + misspec * 2 * sd * (cubic - cubic.mean()) / (cubic.std() + 1e-12)
    return a, c, y


def evaluate_family(configs, sets: int, trials: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    laws = paper_laws()
    sums = {r: [np.zeros(BUDGET), np.zeros(BUDGET)] for r in CANDIDATES}
    count = 0
    for j, (family, noise, misspec) in enumerate(configs):
        rng = np.random.default_rng([seed, j])
        for s in range(sets):
            a, c, y = candidate_set(rng, laws, family, noise, misspec)
            if np.ptp(a) <= 0 or np.ptp(c) <= 0:
                continue
            for name, rule in CANDIDATES.items():
                r = simulate(a, c, y, budget=BUDGET, trials=trials, k=K, seed=1000 * j + s, rule=rule)
                sums[name][0] += r.reached
                sums[name][1] += r.current
            count += 1
    return {r: (v[0] / count, v[1] / count) for r, v in sums.items()}


def line(name: str, reached: np.ndarray, current: np.ndarray) -> str:
    return (f"{name:<32}" + " ".join(f"{x:.3f}" for x in reached) + "   " + " ".join(f"{x:.3f}" for x in current)
            + f"   {reached[1:].mean():.3f} {current[1:].mean():.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", type=int, default=12, help="synthetic sets per configuration (18 broad configurations)")
    p.add_argument("--bootstrap-sets", type=int, help="bootstrap sets (default 6 x --sets)")
    p.add_argument("--trials", type=int, default=10, help="policy trials per synthetic set")
    p.add_argument("--table-trials", type=int, default=300, help="trials per benchmark on the paper's table")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    start = time.time()
    broad = list(itertools.product(("paper-points", "uniform", "clusters"), (0.5, 1.0, 2.0), (0.0, 1.0)))
    families = {"broad": evaluate_family(broad, args.sets, args.trials, args.seed),
                "bootstrap": evaluate_family([("bootstrap", 1.0, 0.0)], args.bootstrap_sets or 6 * args.sets,
                                             args.trials, args.seed + 1)}
    head = f"{'rule':<32}{'reached n=1..5':<33}{'current n=1..5':<33}mean(2..5) reached current"
    for family, results in families.items():
        print(f"\nsynthetic, {family} ({time.time() - start:.0f} s)\n{head}")
        for name, (reached, current) in results.items():
            print(line(name, reached, current))
    floor = {f: r["paper"][0][1:].mean() for f, r in families.items()}
    allowed = [n for n in CANDIDATES if all(families[f][n][0][1:].mean() >= floor[f] for f in families)]
    score = {n: np.mean([families[f][n][1][1:].mean() for f in families]) for n in allowed}
    chosen = max(score, key=score.get)
    print(f"\nreached not below the paper rule's in both families: {', '.join(allowed)}")
    print(f"chosen (highest mean current over n = 2..5): {chosen}   (library default: best-kept)")
    table = paper_table()
    print(f"\nthe paper's 13 rows, mean over {len(table.benchmarks)} benchmarks, {args.table_trials} trials each\n{head}")
    for name, rule in CANDIDATES.items():
        curves = [simulate(*table.benchmark(b), budget=BUDGET, trials=args.table_trials, k=K, seed=args.seed, rule=rule)
                  for b in table.benchmarks]
        print(line(name, np.mean([c.reached for c in curves], 0), np.mean([c.current for c in curves], 0)))
    print(f"\n{time.time() - start:.0f} s in all")


if __name__ == "__main__":
    main()
