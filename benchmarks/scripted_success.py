"""Success of the `scripted` reference policy per LIBERO suite and task, under the standard protocol.

    python benchmarks/scripted_success.py --suites libero_spatial,libero_object --episodes 10 --workers 2 \
        --out leaderboards/scripted

Each suite runs as its own evaluation in `<out>/<suite>` (resumable with --resume); the script then prints one
per-suite table (vla_bench.eval.table) and a per-task table from each run's results.json `metrics`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vla_bench.envs.registry import expand_suites
from vla_bench.eval.runner import EvalConfig, evaluate
from vla_bench.eval.table import markdown_table


def task_table(results: dict) -> str:
    """Markdown: one row per task with its success rate, episode count and errors."""
    lines = ["| task | instruction / name | success | episodes | errors |", "|---|---|---|---|---|"]
    for key, t in results["metrics"]["tasks"].items():
        rate = "-" if t["success_rate"] is None else f"{100 * t['success_rate']:.0f}%"
        lines.append(f"| {key} | {t['task']} | {rate} | {t['episodes']} | {t['errors']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suites", default="libero_spatial,libero_object", help="comma-separated suites or 'libero'")
    ap.add_argument("--episodes", type=int, default=10, help="episodes per task (init states 0..N-1)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default="leaderboards/scripted", help="parent of the per-suite run dirs")
    ap.add_argument("--resume", action="store_true", help="continue runs already in --out")
    args = ap.parse_args(argv)

    run_dirs = []
    for suite in expand_suites(args.suites):
        run_dir = Path(args.out) / suite
        results = evaluate(EvalConfig(suites=[suite], policy="scripted", run_dir=str(run_dir),
                                      episodes=args.episodes, workers=args.workers), resume=args.resume,
                           progress=sys.stderr.isatty())  # no progress bars in nohup logs
        run_dirs.append(run_dir)
        print(f"\n## {suite}\n\n{task_table(results)}\n", flush=True)
    print("## per suite\n\n" + markdown_table(run_dirs))


if __name__ == "__main__":
    main()
