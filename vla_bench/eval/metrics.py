"""Statistics over episode rows: success and each suite metric, per task, per suite and overall.

One seed (every row of seed index 0): rates (0/1 per episode) get a 95% Wilson interval; means get their standard
error. An errored episode counts as a failure for every rate metric and is left out of means (there is no value to
average).

Several seeds (`eval --seeds N`: every episode run under seed indices 0..N-1), at every level and for every metric:
- value: the mean of the per-seed values (`per_seed`, by seed index); for a rate, the pooled rate when every episode
  has every seed.
- the interval clusters rows by episode (suite, task, episode id): y_i = episode i's mean over its seeds,
  se = sd(y_i) / sqrt(episodes). The seeds of one init state are not independent draws of the benchmark (they share
  its difficulty), so counting episodes x seeds as independent trials would shrink the interval by up to sqrt(N)
  without measuring anything new. A rate's ci95 is [mean(y) -+ 1.96 se] clipped to [0, 1], then widened to contain
  every per-seed rate (two base seeds gave 54% and 70% on the same init states, and the interval must show that
  spread) and the pooled rows' Wilson interval (which only matters when every row agrees and se is 0). A mean's
  stderr is the same cluster standard error.
- "seeds": N, "n": rows (episodes x seeds), "n_episodes": distinct episodes; the headline fields add
  "per_seed_success" ("seeds" and "n_episodes" are there with one seed too).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

from vla_bench.envs.spec import SUCCESS, MetricSpec

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


def seed_index(row: dict) -> int:
    return row.get("seed_index", 0)


def episode_key(row: dict) -> tuple[str, int, int]:
    return row["suite"], row["task_index"], row["episode_id"]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _per_seed(rows: list[dict], value: Callable[[dict], float | None]) -> list[float | None]:
    """The mean of `value` over each seed's rows (None: skip the row), in seed-index order; None for a seed whose
    rows have no value."""
    by_seed: dict[int, list[float]] = {k: [] for k in sorted({seed_index(r) for r in rows})}
    for r in rows:
        if (v := value(r)) is not None:
            by_seed[seed_index(r)].append(v)
    return [_mean(vs) if vs else None for vs in by_seed.values()]


def cluster_mean_stderr(rows: list[dict], value: Callable[[dict], float | None]) -> tuple[float | None, float | None,
                                                                                         int]:
    """(mean of the episodes' means, its standard error over episodes, episodes with a value); the episode's mean is
    over its seeds. stderr is None below two episodes."""
    by_episode: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        if (v := value(r)) is not None:
            by_episode[episode_key(r)].append(v)
    y = [_mean(vs) for vs in by_episode.values()]
    if not y:
        return None, None, 0
    m = _mean(y)
    se = math.sqrt(sum((v - m) ** 2 for v in y) / (len(y) - 1) / len(y)) if len(y) > 1 else None
    return m, se, len(y)


def seed_rate_interval(rows: list[dict], hit: Callable[[dict], bool]) -> tuple[float, list[float], list[float]]:
    """(mean of the per-seed rates, the per-seed rates, the 95% interval: cluster-by-episode, clipped to [0, 1],
    widened to every per-seed rate) for rows of several seeds."""
    per_seed = _per_seed(rows, lambda r: float(hit(r)))
    m, se, _ = cluster_mean_stderr(rows, lambda r: float(hit(r)))
    lo, hi = (0.0, 1.0) if se is None else (max(0.0, m - Z95 * se), min(1.0, m + Z95 * se))
    # Every episode succeeding under every seed (or none) gives se = 0; the pooled rows' Wilson interval keeps the
    # width a finite sample must have (it is never wider than the cluster one otherwise, so it only acts there).
    w_lo, w_hi = wilson_interval(sum(1 for r in rows if hit(r)), len(rows))
    return _mean(per_seed), per_seed, [min(lo, w_lo, *per_seed), max(hi, w_hi, *per_seed)]


def _seed_count(rows: list[dict]) -> int:
    return len({seed_index(r) for r in rows}) or 1


def success_summary(rows: list[dict]) -> dict:
    """Success rate with its episode count, error count and 95% interval (Wilson; see the module docstring for
    several seeds). Errored episodes count as failures."""
    n, seeds = len(rows), _seed_count(rows)
    k = sum(1 for r in rows if r["success"])
    out = {"successes": k, "episodes": n, "n_episodes": len({episode_key(r) for r in rows}),
           "errors": sum(1 for r in rows if r.get("error")), "seeds": seeds}
    if seeds == 1:
        return {"success_rate": k / n if n else None, **out, "ci95": list(wilson_interval(k, n))}
    rate, per_seed, ci95 = seed_rate_interval(rows, lambda r: bool(r["success"]))
    return {"success_rate": rate, **out, "ci95": ci95, "per_seed_success": per_seed}


def metric_summary(rows: list[dict], spec: MetricSpec) -> dict:
    """One metric over rows that have it: {kind, value, n, n_episodes, seeds, ci95 (rate) | stderr (mean),
    higher_is_better}, and per_seed with several seeds."""
    seeds = _seed_count(rows)
    out = {"kind": spec.kind, "higher_is_better": spec.higher_is_better, "seeds": seeds}
    if spec.kind == "rate":
        def hit(r: dict) -> bool:
            return bool(r.get(spec.name)) and not r.get("error")

        k, n = sum(1 for r in rows if hit(r)), len(rows)
        out |= {"count": k, "n": n, "n_episodes": len({episode_key(r) for r in rows})}
        if seeds == 1:
            return {**out, "value": k / n if n else None, "ci95": list(wilson_interval(k, n))}
        value, per_seed, ci95 = seed_rate_interval(rows, hit)
        return {**out, "value": value, "ci95": ci95, "per_seed": per_seed}

    def number(r: dict) -> float | None:
        return None if r.get(spec.name) is None or r.get("error") else float(r[spec.name])

    values = [v for r in rows if (v := number(r)) is not None]
    n = len(values)
    if seeds == 1:
        mean = sum(values) / n if n else None
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
        return {**out, "value": mean, "n": n, "n_episodes": n, "stderr": sd / math.sqrt(n) if sd is not None else None}
    per_seed = _per_seed(rows, number)
    present = [v for v in per_seed if v is not None]
    _, se, n_episodes = cluster_mean_stderr(rows, number)
    return {**out, "value": _mean(present) if present else None, "n": n, "n_episodes": n_episodes, "stderr": se,
            "per_seed": per_seed}


def level_summary(rows: list[dict], specs: dict[str, list[MetricSpec]]) -> dict:
    """Success (the headline fields) and every metric of the suites among `rows`, each over the rows of the suites
    that define it."""
    metrics: dict[str, dict] = {}
    for suite in dict.fromkeys(r["suite"] for r in rows):
        for spec in specs.get(suite, [SUCCESS]):
            if spec.name not in metrics:
                has = {s for s, ms in specs.items() if any(m.name == spec.name for m in ms)} or {suite}
                metrics[spec.name] = metric_summary([r for r in rows if r["suite"] in has], spec)
    return {**success_summary(rows), "metrics": metrics}


def summarize(rows: list[dict], specs: dict[str, list[MetricSpec]] | None = None) -> dict:
    """Per-task, per-suite and overall summaries. Overall figures average episodes, not suites. `specs`: the metrics
    of each suite (success only where missing)."""
    specs = specs or {}
    by_task: dict[tuple[str, int], list[dict]] = defaultdict(list)
    by_suite: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_task[(r["suite"], r["task_index"])].append(r)
        by_suite[r["suite"]].append(r)
    tasks = {f"{s}/{t}": {"task": v[0]["task"], **level_summary(v, specs)} for (s, t), v in sorted(by_task.items())}
    return {"overall": level_summary(rows, specs),
            "suites": {s: level_summary(v, specs) for s, v in sorted(by_suite.items())}, "tasks": tasks}
