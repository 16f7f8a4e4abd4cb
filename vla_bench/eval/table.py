"""Markdown tables from results.json files: one row per run, one column per suite, plus the overall rate."""

from __future__ import annotations

from pathlib import Path

from vla_bench.envs.registry import SUITES
from vla_bench.eval.results import load_results


def _cell(summary: dict | None) -> str:
    if not summary or summary["episodes"] == 0:
        return "-"
    lo, hi = summary["ci95"]
    return f"{100 * summary['success_rate']:.1f} [{100 * lo:.0f}, {100 * hi:.0f}] (n={summary['episodes']})"


def markdown_table(run_paths: list[str | Path]) -> str:
    """Success rate in percent with its 95% Wilson interval and episode count, per suite and overall."""
    runs = [(Path(p), load_results(p)) for p in run_paths]
    order = {name: i for i, name in enumerate(SUITES)}  # the conventional order: spatial, object, goal, 10, 90
    suites = sorted({s for _, r in runs for s in r["metrics"]["suites"]}, key=lambda s: (order.get(s, len(order)), s))
    header = ["run", "policy", *suites, "overall"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for path, r in runs:
        label = path.name if path.is_dir() else path.parent.name
        partial = "" if r["complete"] else " (partial)"
        cells = [label + partial, str(r["config"]["policy"])]
        cells += [_cell(r["metrics"]["suites"].get(s)) for s in suites] + [_cell(r["metrics"]["overall"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
