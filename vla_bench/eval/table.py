"""Markdown tables from results.json files: one row per run, one column per suite, plus the overall figure.

The cell is success by default, or any suite metric (`metric=`): a rate in percent with its 95% Wilson interval, a
mean with its standard error, each with its episode count; a run of several seeds shows its mean over seeds, the
interval of vla_bench/eval/metrics.py, episodes x seeds and the lowest-highest per-seed value. A suite whose results
do not compare to published numbers (e.g. SimplerEnv on stand-in assets) is marked in its cell and explained under
the table.
"""

from __future__ import annotations

from pathlib import Path

from vla_bench.envs.registry import suites as registered_suites
from vla_bench.eval.results import load_results

NOT_COMPARABLE = "\u2020"  # dagger


def _metric(summary: dict, metric: str) -> dict | None:
    """The metric's summary; results of schema 1 have success only, in the headline fields."""
    if "metrics" in summary:
        return summary["metrics"].get(metric)
    if metric == "success":
        return {"kind": "rate", "value": summary["success_rate"], "n": summary["episodes"], "ci95": summary["ci95"]}
    return None


def _cell(summary: dict | None, metric: str) -> str:
    m = _metric(summary, metric) if summary else None
    if not m or not m["n"] or m["value"] is None:
        return "-"
    # Errored episodes count as failures: say how many, or a broken run reads as a real 0%.
    errors = f", {summary['errors']} errors" if summary.get("errors") else ""
    rate = m["kind"] == "rate"
    n = m["n"]
    if m.get("seeds", 1) > 1:  # episodes x seeds, and the spread of the per-seed values
        grid = f"{m['n_episodes']}x{m['seeds']}"
        per_seed = [100 * v if rate else v for v in m["per_seed"] if v is not None]
        spread = f"{min(per_seed):.0f}-{max(per_seed):.0f}" if rate else f"{min(per_seed):.3g}-{max(per_seed):.3g}"
        n = f"{grid if n == m['n_episodes'] * m['seeds'] else f'{n} of {grid}'}, seeds {spread}"
    if rate:
        lo, hi = m["ci95"]
        return f"{100 * m['value']:.1f} [{100 * lo:.0f}, {100 * hi:.0f}] (n={n}{errors})"
    se = "" if m["stderr"] is None else f" \u00b1 {m['stderr']:.3g}"
    return f"{m['value']:.3g}{se} (n={n}{errors})"


def _not_comparable(results: dict, suite: str) -> str | None:
    """The reason a suite's figures in this run are not comparable to published ones, or None."""
    info = results.get("suites", {}).get(suite, {})
    return info.get("note", "not comparable to published numbers") if info.get("comparable_to_published") is False \
        else None


def markdown_table(run_paths: list[str | Path], metric: str = "success") -> str:
    """One row per run: `metric` per suite and overall."""
    runs = [(Path(p), load_results(p)) for p in run_paths]
    order = {name: i for i, name in enumerate(registered_suites())}  # the conventional order
    suites = sorted({s for _, r in runs for s in r["metrics"]["suites"]}, key=lambda s: (order.get(s, len(order)), s))
    if not any(_metric(r["metrics"]["suites"][s], metric) for _, r in runs for s in r["metrics"]["suites"]):
        raise KeyError(f"no run has the metric {metric!r}")
    header = ["run", "policy", *suites, "overall"]
    title = [] if metric == "success" else [f"{metric}:", ""]  # success is the default and goes unnamed
    lines = title + ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: dict[str, str] = {}
    for path, r in runs:
        label = path.name if path.is_dir() else path.parent.name
        cells = [label + ("" if r["complete"] else " (partial)"), str(r["config"]["policy"])]
        for s in suites:
            cell, reason = _cell(r["metrics"]["suites"].get(s), metric), _not_comparable(r, s)
            if reason and cell != "-":
                cell += " " + NOT_COMPARABLE
                notes.setdefault(s, reason)
            cells.append(cell)
        overall = _cell(r["metrics"]["overall"], metric)
        if overall != "-" and any(_not_comparable(r, s) for s in r["metrics"]["suites"]):
            overall += " " + NOT_COMPARABLE  # it averages a suite that is not comparable
        lines.append("| " + " | ".join(cells + [overall]) + " |")
    lines += [f"\n{NOT_COMPARABLE} {s}: {reason}" for s, reason in notes.items()]
    return "\n".join(lines)
