"""PNG figures: a stage table's bars (`vla-bench table --by stage --plot`) and an RL run's curves (`vla-bench
plot-rl`). matplotlib (Agg, no display) is imported only here, only when a figure is drawn."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

from vla_bench.eval.stage_table import NOT_COMPARABLE, REFERENCE_NOTE, StageTable, footnotes
from vla_bench.metric_log import CSV_FILE, read_metrics

REFERENCE_MARKERS = ("o", "s", "^", "D", "v", "P")


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("plots need matplotlib: pip install matplotlib") from e
    matplotlib.use("Agg")  # files only: no display on clusters and CI
    import matplotlib.pyplot as plt

    return plt


def _footer(fig, lines: list[str], width: int) -> None:
    """Footnotes under the axes, wrapped to the figure's width."""
    text = "\n".join(textwrap.fill(line, width) for line in lines)
    if text:
        fig.text(0.01, 0.0, text, ha="left", va="top", fontsize=7, wrap=True)


def _count(cell) -> str:
    return f"{cell.n_episodes}x{cell.seeds}" if cell.seeds > 1 else str(cell.n)


def plot_stage_table(table: StageTable, path: str | Path) -> Path:
    """Grouped bars: x = suites, one bar per stage row with its 95% interval and its n (in the legend when a row has
    one n, else on each bar); the reference's figures, if any, as hollow markers over the bar of the same stage,
    never as bars."""
    plt = _pyplot()
    suites, rows = table.suites, table.rows
    rate = all(c.kind == "rate" for r in rows for c in r.cells.values())
    multi = len(table.groups) > 1
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(suites) * max(1.0, len(rows) / 3) + 1.5), 4.2))

    def slot(k: int) -> float:
        return (k - (len(rows) - 1) / 2) * width

    bars, labels = [], []  # labels: (x, bar top, interval top, text) of bars that say their own n
    for k, r in enumerate(rows):
        cells = [(i, r.cells[s]) for i, s in enumerate(suites) if s in r.cells]
        counts = {_count(c) for _, c in cells}
        label = f"{r.group}: {r.title}" if multi else f"{r.title} ({r.lineage})"
        label += f", n={counts.pop()}" if len(counts) == 1 else ""
        xs, ys, err = [i + slot(k) for i, _ in cells], [c.value for _, c in cells], [[], []]
        for _, c in cells:
            half = 1.96 * (c.stderr or 0)
            lo, hi = c.ci95 if c.ci95 else (c.value - half, c.value + half)
            err[0].append(c.value - lo)
            err[1].append(hi - c.value)
        bars.append(ax.bar(xs, ys, width * 0.92, yerr=err, capsize=3, label=label, color=f"C{k % 10}",
                           error_kw={"elinewidth": 1, "ecolor": "0.2"}))
        if not label.endswith(f"n={_count(cells[0][1])}"):  # rows of several n: each bar says its own
            for x, y, hi, (_, c) in zip(xs, ys, err[1], cells, strict=True):
                labels.append((x, y, y + hi, f"n={_count(c)}"))
    markers = []
    ref = table.reference
    if ref:
        stage_slot: dict[str, int] = {}
        for k, r in enumerate(rows):
            stage_slot.setdefault(r.stage, k)
        at: dict[tuple[int, float], list[tuple[int, float]]] = {}  # (suite, slot) -> (reference row, value)
        for j, rr in enumerate(ref.rows):
            k = stage_slot.get(rr.stage)
            for s, (value, _) in rr.values.items():
                at.setdefault((suites.index(s), 0.0 if k is None else slot(k)), []).append((j, value))
        points: dict[int, tuple[list[float], list[float]]] = {j: ([], []) for j in range(len(ref.rows))}
        for (i, x), group in at.items():  # markers that share a bar spread across its width
            for m, (j, value) in enumerate(group):
                points[j][0].append(i + x + (m - (len(group) - 1) / 2) * width * 0.6 / max(1, len(group) - 1))
                points[j][1].append(value)
        for j, rr in enumerate(ref.rows):
            markers.append(ax.scatter(*points[j], marker=REFERENCE_MARKERS[j % len(REFERENCE_MARKERS)], s=46,
                                      facecolors="none", edgecolors="black", linewidths=1.3, zorder=5,
                                      label=textwrap.fill(f"{ref.title}: {rr.label}", 44)))
    ticks = []
    for s in suites:
        marks = NOT_COMPARABLE if any(r.cells.get(s) and r.cells[s].not_comparable for r in rows) else ""
        if ref and any(s in rr.values and rr.values[s][1] in ref.notes for rr in ref.rows):
            marks += REFERENCE_NOTE
        ticks.append(s + marks)
    ax.set_xticks(range(len(suites)), ticks)
    ax.set_xlim(-0.6, len(suites) - 0.4)
    if rate:
        ax.set_ylim(0, 105)
        ax.set_yticks(range(0, 101, 20))
    span = ax.get_ylim()[1] - ax.get_ylim()[0]
    for x, top, above, text in labels:  # inside a bar tall enough to hold it, else above its interval
        inside = top > 0.16 * span
        ax.text(x, 0.015 * span if inside else above + 0.01 * span, text, ha="center", va="bottom", fontsize=6.5,
                rotation=90, color="white" if inside else "0.25")
    ax.set_ylabel(f"{table.metric} (%)" if rate else table.metric)
    title = f"{table.metric} by training stage, " + ("95% intervals" if rate else "\u00b11.96 s.e.")
    ax.set_title(title + ("\nbars: our runs; hollow markers: published" if ref else ""), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(handles=bars + markers, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    _footer(fig, footnotes(table), width=120)
    path = Path(path)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def _moving_average(ys: list[float], weights: list[float], window: int) -> list[float]:
    """Centred mean over `window` points (fewer at the ends), each weighted by its iteration's finished episodes;
    centred, so the first iterations' few episodes do not start the curve with a spike."""
    out = []
    for i in range(len(ys)):
        lo, hi = max(0, i - window // 2), min(len(ys), i + (window + 1) // 2)
        out.append(sum(w * y for w, y in zip(weights[lo:hi], ys[lo:hi], strict=True)) / sum(weights[lo:hi]))
    return out


def _noise_mode(config: dict) -> str:
    noise = config.get("noise", "?")
    if noise == "flow_sde":
        return f"flow_sde (a={config.get('sde_a')})"
    if noise == "flow_noise":
        return f"flow_noise (std {config.get('noise_min')}-{config.get('noise_max')})"
    return str(noise)


def plot_rl(run_dir: str | Path, path: str | Path, window: int = 10) -> Path:
    """An RL run's noisy-rollout success and episodic return per iteration (thin) with a moving average (thick),
    over env steps. Iterations that finished no episode have no value and are skipped, not drawn as 0."""
    run = Path(run_dir)
    if not (run / CSV_FILE).is_file():
        raise FileNotFoundError(f"no {CSV_FILE} in {run}: not an RL run directory (the --out of `vla-bench rl`)")
    if window < 1:
        raise ValueError(f"the moving-average window must be >= 1 iteration, got {window}")
    config_file = run / "rl_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    rows = read_metrics(run)
    # vla-bench rl logs charts/env_steps per iteration; the SB3 baseline's step column is env_steps itself
    steps = next((k for k in ("charts/env_steps", "env_steps") if rows and k in rows[0]), None)
    if steps is None:
        raise ValueError(f"{run / CSV_FILE}: no env-step column (charts/env_steps or env_steps)")
    panels = []  # (metric, y label, env steps, values, weights) with the iterations that have a value
    for name, scale, ylabel in (("charts/success", 100.0, "noisy-rollout success (%)"),
                                ("charts/episodic_return", 1.0, "episodic return (discounted)")):
        kept = [r for r in rows if name in r and not math.isnan(r[name])]
        panels.append((name, ylabel, [r[steps] for r in kept], [scale * r[name] for r in kept],
                       [r.get("charts/episodes", 1.0) or 1.0 for r in kept]))
    if not any(p[2] for p in panels):
        raise ValueError(f"{run / CSV_FILE}: no iteration finished an episode, nothing to plot")
    plt = _pyplot()
    from matplotlib.ticker import EngFormatter

    fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for ax, (name, ylabel, xs, ys, weights) in zip(axes, panels, strict=True):
        ax.plot(xs, ys, lw=0.8, alpha=0.45, color="C0", marker=".", ms=2.5, label="per iteration")
        if xs:
            ax.plot(xs, _moving_average(ys, weights, window), lw=2.4, color="C1",
                    label=f"moving average ({window} iterations, weighted by episodes)")
        else:
            ax.text(0.5, 0.5, f"no {name} in {CSV_FILE}", transform=ax.transAxes, ha="center", color="0.4")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(-3, 103)
    axes[-1].xaxis.set_major_formatter(EngFormatter(sep=""))
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].set_xlabel("env steps")
    skipped = sum(1 for r in rows if math.isnan(r.get("charts/success", math.nan)))
    tasks = config.get("tasks")
    what = f"{config.get('suite', '?')}" + (f" tasks {','.join(map(str, tasks))}" if tasks else "")
    fig.suptitle(f"{run.name}: {what}, noise {_noise_mode(config)}" if config else run.name, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.96), ncol=2, fontsize=8, frameon=False)
    if skipped:
        _footer(fig, [f"{skipped} of {len(rows)} iterations finished no episode and are not drawn."], width=120)
    path = Path(path)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path
