"""Metrics to CSV (always) and TensorBoard (where the `tensorboard` package is importable), namespaced names.

Used by the trainer (`losses/flow`, `charts/lr`) and by PPO (`charts/success`, `losses/policy`). On resume, rows
logged after the resumed step (the lost tail of a killed run) are dropped from the CSV and purged from TensorBoard,
so the logs read as one run.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

CSV_FILE = "metrics.csv"


def _tensorboard_writer(log_dir: Path, purge_step: int | None):
    """A SummaryWriter, or None where the `tensorboard` package is missing (the CSV is still written)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(log_dir), purge_step=purge_step)


class MetricLogger:
    """Append-only CSV (a column per known metric, first column `step_name`) + TensorBoard scalars."""

    def __init__(self, log_dir: str | Path, metrics: tuple[str, ...], step_name: str = "step", resume_step: int = 0,
                 tensorboard: bool = True):
        self.dir, self.metrics = Path(log_dir), tuple(metrics)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.dir / CSV_FILE
        self._truncate_after(resume_step)
        new = not self.csv_path.exists()
        self._file = self.csv_path.open("a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow((step_name, *self.metrics))
        self.tb = _tensorboard_writer(self.dir, resume_step + 1 if resume_step else None) if tensorboard else None

    def _truncate_after(self, step: int) -> None:
        if not self.csv_path.exists():
            return
        with self.csv_path.open(newline="") as f:
            rows = list(csv.reader(f))
        kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= step]
        with self.csv_path.open("w", newline="") as f:
            csv.writer(f).writerows(kept)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        unknown = set(metrics) - set(self.metrics)
        if unknown:
            raise KeyError(f"unknown metrics {sorted(unknown)}; known: {', '.join(self.metrics)}")
        self._csv.writerow((step, *(f"{metrics[m]:.6g}" if m in metrics else "" for m in self.metrics)))
        self._file.flush()
        if self.tb is not None:
            for name, value in metrics.items():
                if not math.isnan(value):  # e.g. a success rate of an iteration that finished no episode
                    self.tb.add_scalar(name, value, step)
            self.tb.flush()

    def close(self) -> None:
        self._file.close()
        if self.tb is not None:
            self.tb.close()


def read_metrics(log_dir: str | Path) -> list[dict[str, float]]:
    """The CSV rows as dicts of floats (empty cells left out)."""
    with (Path(log_dir) / CSV_FILE).open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
