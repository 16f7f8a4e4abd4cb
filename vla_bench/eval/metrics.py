"""Success-rate statistics over episode rows."""

from __future__ import annotations

import math
from collections import defaultdict

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion; (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def success_summary(rows: list[dict]) -> dict:
    """Success rate with its episode count, error count and 95% Wilson interval. Errored episodes count as failures."""
    n = len(rows)
    k = sum(1 for r in rows if r["success"])
    lo, hi = wilson_interval(k, n)
    return {"success_rate": k / n if n else None, "successes": k, "episodes": n,
            "errors": sum(1 for r in rows if r.get("error")), "ci95": [lo, hi]}


def summarize(rows: list[dict]) -> dict:
    """Per-task, per-suite and overall summaries. The overall rate averages episodes, not suites."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    by_suite: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_task[f"{r['suite']}/{r['task_index']}"].append(r)
        by_suite[r["suite"]].append(r)
    tasks = {}
    for key, task_rows in sorted(by_task.items(), key=lambda kv: (kv[0].split("/")[0], int(kv[0].split("/")[1]))):
        tasks[key] = {"task": task_rows[0]["task"], **success_summary(task_rows)}
    return {"overall": success_summary(rows), "suites": {s: success_summary(v) for s, v in sorted(by_suite.items())},
            "tasks": tasks}
