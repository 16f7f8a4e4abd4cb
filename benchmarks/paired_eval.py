"""Paired comparison of two evaluation runs of the same episodes (same suite, tasks, init states and base seed, so
each episode has the same per-episode seed in both): how many succeed in both, only in A, only in B, and the exact
two-sided McNemar p-value over the discordant pairs.

Runs of several seeds (`eval --seeds N`) pair each (episode, seed index). Rows pair on the per-episode seed, which is
the seed index when the base seeds agree, and also pairs identical runs across offset bases (`--seed 8` with seed
index 1 of `--seed 7 --seeds 2`). The pairs of one episode's seeds share its init state, so with several seeds the
McNemar p-value, which takes pairs as independent, is optimistic; "distinct_episodes" says how many init states the
pairs cover, "per_seed" compares seed by seed, and "sign_test_p" treats init states as the units (per init state:
which run succeeded under more of its seeds).

  python benchmarks/paired_eval.py leaderboards/sft_libero/eval_sft_scratch \
      leaderboards/rl/eval_libero_obj_noise_task_norm
"""

from __future__ import annotations

import argparse
import json
from math import comb
from pathlib import Path

from vla_bench.eval.results import EPISODES_FILE, load_episode_rows


def successes(run_dir: str) -> tuple[dict[tuple, bool], dict[tuple, int]]:
    """Success per (suite, task, episode id, per-episode seed), and each such key's seed index."""
    path = Path(run_dir) / EPISODES_FILE
    if not path.is_file():
        raise SystemExit(f"no {EPISODES_FILE} in {run_dir} (an eval run directory is expected)")
    rows = load_episode_rows(path)
    key = lambda r: (r["suite"], r["task_index"], r["episode_id"], r["seed"])  # noqa: E731
    return {key(r): bool(r["success"]) for r in rows}, {key(r): r["seed_index"] for r in rows}


def discordant(a: dict, b: dict, keys) -> tuple[int, int]:
    """(pairs only A succeeds in, pairs only B succeeds in)."""
    return sum(a[k] and not b[k] for k in keys), sum(b[k] and not a[k] for k in keys)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar test: binomial(n = only_a + only_b, 1/2) tail at the smaller count, doubled."""
    n, k = only_a + only_b, min(only_a, only_b)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a")
    p.add_argument("run_b")
    args = p.parse_args()
    (a, seed_of), (b, _) = successes(args.run_a), successes(args.run_b)
    keys = a.keys() & b.keys()
    if not keys:
        raise SystemExit("the two runs share no episode (suite, task, init state, seed)")
    both = sum(a[k] and b[k] for k in keys)
    only_a, only_b = discordant(a, b, keys)
    out = {"paired_episodes": len(keys), "distinct_episodes": len({k[:3] for k in keys}), "both": both,
           "only_a": only_a, "only_b": only_b, "neither": len(keys) - both - only_a - only_b,
           "mcnemar_p": round(mcnemar_exact(only_a, only_b), 4)}
    seed_indices = sorted({seed_of[k] for k in keys})
    if len(seed_indices) > 1:
        # Each seed on its own, and the test that treats init states as the units: per init state, which run
        # succeeded under more of its seeds (ties left out), an exact sign test (the same binomial as McNemar's).
        out["per_seed"] = []
        for s in seed_indices:
            ks = [k for k in keys if seed_of[k] == s]
            oa, ob = discordant(a, b, ks)
            out["per_seed"].append({"seed_index": s, "pairs": len(ks), "a": sum(a[k] for k in ks),
                                    "b": sum(b[k] for k in ks), "only_a": oa, "only_b": ob,
                                    "mcnemar_p": round(mcnemar_exact(oa, ob), 4)})
        per_episode: dict[tuple, list[int]] = {}
        for k in keys:
            tally = per_episode.setdefault(k[:3], [0, 0])
            tally[0] += a[k]
            tally[1] += b[k]
        a_better = sum(x > y for x, y in per_episode.values())
        b_better = sum(y > x for x, y in per_episode.values())
        out |= {"episodes_a_better": a_better, "episodes_b_better": b_better,
                "sign_test_p": round(mcnemar_exact(a_better, b_better), 4)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
