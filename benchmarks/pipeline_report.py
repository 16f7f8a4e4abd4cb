"""Wall-clock of a `vla-bench pipeline` run, step by step, with each step's share of the whole, the training stages'
samples/s (images or not, from their logs) and the evaluations' env steps/s, all read from the run's own files.

    python benchmarks/pipeline_report.py runs/repro
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def step_rows(run: Path) -> list[dict]:
    state = json.loads((run / "pipeline.json").read_text())
    rows = []
    for key, step in state["steps"].items():
        row = {"step": key, "status": step["status"], "seconds": step["wall_seconds"], "sessions": step["sessions"],
               "rate": ""}
        summary = step.get("summary") or {}
        if key.startswith("stage/"):
            stage_file = run / "stages" / key.split("/", 1)[1] / "stage.json"  # the run dir may have moved
            if stage_file.is_file():
                record = json.loads(stage_file.read_text())
                images = "images" if record["model"]["use_images"] else "no images"
                row["rate"] = f"{summary.get('samples_per_s')} samples/s ({images}, {record['data']['targets']})"
            elif "env_steps" in summary:  # an RL stage
                row["rate"] = f"{summary['env_steps'] / step['wall_seconds']:.1f} env steps/s (RL, incl. updates)"
        elif key.startswith("eval/"):
            results = run / key / "results.json"
            if results.is_file():
                tp = json.loads(results.read_text())["throughput"]
                row["rate"] = f"{tp['env_steps_per_s']} env steps/s, {summary.get('episodes')} episodes"
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a pipeline run directory (holds pipeline.json)")
    args = parser.parse_args()
    rows = step_rows(Path(args.run))
    total = sum(r["seconds"] for r in rows)
    print("| step | status | wall | share | sessions | throughput |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['status']} | {r['seconds'] / 60:.1f} min | {r['seconds'] / total:.0%} | "
              f"{r['sessions']} | {r['rate']} |")
    print(f"| total | | {total / 60:.1f} min | 100% | | |")


if __name__ == "__main__":
    main()
