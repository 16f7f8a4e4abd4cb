"""Paired comparison of two evaluation runs of the same episodes (same suite, tasks, init states and base seed, so
each episode has the same per-episode seed in both): how many succeed in both, only in A, only in B, and the exact
two-sided McNemar p-value over the discordant pairs.

Runs of several seeds (`eval --seeds N`) pair each (episode, seed index). Rows pair on the per-episode seed, which is
the seed index when the base seeds agree, and also pairs identical runs across offset bases (`--seed 8` with seed
index 1 of `--seed 7 --seeds 2`). The pairs of one episode's seeds share its init state, so with several seeds the
McNemar p-value, which takes pairs as independent, is optimistic; "distinct_episodes" says how many init states the
pairs cover.

  python benchmarks/paired_eval.py leaderboards/sft_libero/eval_sft_scratch \
      leaderboards/rl/eval_libero_obj_noise_task_norm
"""

from __future__ import annotations

import argparse
import json
from math import comb
from pathlib import Path

from vla_bench.eval.results import EPISODES_FILE, load_episode_rows


def successes(run_dir: str) -> dict[tuple, bool]:
    path = Path(run_dir) / EPISODES_FILE
    if not path.is_file():
        raise SystemExit(f"no {EPISODES_FILE} in {run_dir} (an eval run directory is expected)")
    return {(r["suite"], r["task_index"], r["episode_id"], r["seed"]): bool(r["success"])
            for r in load_episode_rows(path)}


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar test: binomial(n = only_a + only_b, 1/2) tail at the smaller count, doubled."""
    n, k = only_a + only_b, min(only_a, only_b)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a")
    p.add_argument("run_b")
    args = p.parse_args()
    a, b = successes(args.run_a), successes(args.run_b)
    keys = a.keys() & b.keys()
    if not keys:
        raise SystemExit("the two runs share no episode (suite, task, init state, seed)")
    both = sum(a[k] and b[k] for k in keys)
    only_a = sum(a[k] and not b[k] for k in keys)
    only_b = sum(b[k] and not a[k] for k in keys)
    print(json.dumps({"paired_episodes": len(keys), "distinct_episodes": len({k[:3] for k in keys}), "both": both,
                      "only_a": only_a, "only_b": only_b, "neither": len(keys) - both - only_a - only_b,
                      "mcnemar_p": round(mcnemar_exact(only_a, only_b), 4)}, indent=1))


if __name__ == "__main__":
    main()
