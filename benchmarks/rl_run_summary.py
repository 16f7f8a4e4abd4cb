"""Summary of one or more `vla-bench rl` runs from their metrics.csv: env steps, finished episodes, noisy-rollout
success by quarter of the iterations (episode-weighted), mean env steps/s and the time spent in rollouts + updates.
The training-side figures in leaderboards/rl/README.md come from here:

  python benchmarks/rl_run_summary.py leaderboards/rl/libero_obj_sft2000_noise_task_norm_120k
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla_bench.metric_log import CSV_FILE, read_metrics


def summarize(run_dir: str, parts: int = 4) -> dict:
    if not (Path(run_dir) / CSV_FILE).is_file():
        raise SystemExit(f"no {CSV_FILE} in {run_dir} (a `vla-bench rl` run directory is expected)")
    rows = read_metrics(run_dir)
    if len(rows) < parts:
        raise SystemExit(f"{run_dir} has {len(rows)} iterations; at least {parts} are needed")

    def value(row: dict, key: str) -> float:
        return row.get(key, 0.0)  # an iteration in which no episode ended logs no success

    def success(chunk: list[dict]) -> float:
        episodes = sum(value(r, "charts/episodes") for r in chunk)
        wins = sum(value(r, "charts/success") * value(r, "charts/episodes") for r in chunk)
        return round(100 * wins / episodes, 1) if episodes else float("nan")

    quarters = [rows[i * len(rows) // parts:(i + 1) * len(rows) // parts] for i in range(parts)]
    seconds = sum(value(r, "charts/rollout_seconds") + value(r, "charts/update_seconds") for r in rows)
    return {"run": run_dir, "iterations": len(rows), "env_steps": int(value(rows[-1], "charts/env_steps")),
            "episodes": int(sum(value(r, "charts/episodes") for r in rows)),
            "success_pct_by_part": [success(q) for q in quarters],
            "env_steps_per_s_mean": round(sum(value(r, "charts/env_steps_per_s") for r in rows) / len(rows), 1),
            "rollout_plus_update_minutes": round(seconds / 60, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories (each with metrics.csv)")
    p.add_argument("--parts", type=int, default=4, help="split the iterations into this many parts (default: 4)")
    args = p.parse_args()
    for run in args.runs:
        print(json.dumps(summarize(run, args.parts)))


if __name__ == "__main__":
    main()
