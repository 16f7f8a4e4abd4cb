"""Checkpoint lineage: where a checkpoint came from, in one format for every stage (T2A, CPT, SFT, RL).

Every checkpoint directory that `vla-bench eval --policy DIR` loads holds `lineage.json`:

  format     "vla_bench.lineage/1"
  stage      t2a | cpt | sft | rl (what made it)
  label      the name its pipeline gave the stage (default: the stage)
  pipeline   the pipeline run's name, or null for a checkpoint made by a single command
  checkpoint the directory as it was written (absolute)
  created    UTC time of the write; git_revision of the code that wrote it
  data       what it trained on: datasets (path, episodes, frames, embodiment) or, for RL, the suite and tasks
  config     the stage's whole config (TrainConfig / RLConfig as a dict)
  progress   how far it got (steps / env steps) and whether the stage finished
  parent     the parent checkpoint's own lineage, embedded whole (null for a stage from scratch), so the chain
             survives when the parent directory is moved or deleted (a shipped checkpoint carries its ancestry)
  parent_path the parent directory as given

The record is written beside the weights, after them, by the same atomic rename; a checkpoint without it (made
before lineage existed, or by another tool) reads as None.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from vla_bench.atomic_write import write_json_atomically

LINEAGE_FILE = "lineage.json"
FORMAT = "vla_bench.lineage/1"
STAGES = ("t2a", "cpt", "sft", "rl")


def read_lineage(checkpoint: str | Path) -> dict | None:
    """The lineage of a checkpoint directory, or None when it has none (or `checkpoint` is not a directory)."""
    path = Path(checkpoint) / LINEAGE_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a lineage file ({e})") from None
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: format {doc.get('format')!r} is not {FORMAT!r}")
    return doc


def make_lineage(stage: str, checkpoint: str | Path, data: dict | list, config: dict, progress: dict,
                 parent_path: str | Path | None, label: str | None = None, pipeline: str | None = None) -> dict:
    """The record of a checkpoint; the parent's lineage (if any) is read from `parent_path` and embedded."""
    from vla_bench.eval.results import git_revision  # results imports the runner's dependencies: import late

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")
    return {"format": FORMAT, "stage": stage, "label": label or stage, "pipeline": pipeline,
            "checkpoint": str(Path(checkpoint).resolve()),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_revision": git_revision(), "data": data, "config": config, "progress": progress,
            "parent": read_lineage(parent_path) if parent_path else None,
            "parent_path": str(parent_path) if parent_path else None}


def write_lineage(checkpoint: str | Path, record: dict) -> Path:
    path = Path(checkpoint) / LINEAGE_FILE
    write_json_atomically(path, record)
    return path


def chain(lineage: dict | None) -> list[dict]:
    """The records from the oldest ancestor to `lineage` itself ([] for None)."""
    records = []
    while lineage is not None:
        records.append(lineage)
        lineage = lineage.get("parent")
    return records[::-1]


def describe(lineage: dict | None) -> str:
    """'t2a > cpt > sft', by the pipeline's labels."""
    return " > ".join(r["label"] for r in chain(lineage)) or "-"
