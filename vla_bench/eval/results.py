"""The results schema: `episodes.jsonl` (one row per finished episode) and `results.json` (everything, derived)."""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path

from vla_bench import __version__
from vla_bench.atomic_write import write_json_atomically
from vla_bench.envs.registry import get_suite
from vla_bench.envs.spec import MetricSpec, load_target
from vla_bench.envs.suite_python import package_versions as installed_versions
from vla_bench.eval.metrics import summarize

EPISODES_FILE = "episodes.jsonl"
RESULTS_FILE = "results.json"
SCHEMA_VERSION = 3  # 2: episode ids, suite metrics and end reasons in the rows, a record per suite; 3: seed indices
SEED_RULE = "crc32(f'{base + seed_index}/{suite}/{task_index}/{episode_id}') & 0x7fffffff, seed_index in 0..count-1"
_VERSIONED = ("numpy", "torch")  # the main process's; each suite's simulator packages are under "suites"


def upgrade_row(row: dict) -> dict:
    """A row of an older schema in today's terms: schema 1 (LIBERO-only: `init_index`, success ended the episode),
    schema 2 (one seed per run: seed index 0)."""
    if "episode_id" not in row and "init_index" in row:
        row = dict(row)
        row["episode_id"] = row.pop("init_index")
        row.setdefault("end", "error" if row.get("error") else "done" if row["success"] else "budget")
    if "seed_index" not in row:
        row = {**row, "seed_index": 0}
    return row


def row_key(row: dict) -> tuple[str, int, int, int]:
    """What a row is the result of: (suite, task index, episode id, seed index); `EpisodeSpec.key` of its episode."""
    return row["suite"], row["task_index"], row["episode_id"], row["seed_index"]


def load_episode_rows(path: Path) -> list[dict]:
    """Rows of an episodes file; a torn last line (killed mid-write) is skipped. Later rows replace earlier ones."""
    rows: dict[tuple, dict] = {}
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        try:
            r = upgrade_row(json.loads(line))
        except json.JSONDecodeError:
            continue
        rows[row_key(r)] = r
    return list(rows.values())


def drop_torn_tail(path: Path) -> None:
    """Cut a half-written last line (a kill mid-write), so rows appended later start on a line of their own."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def package_versions() -> dict:
    return {"vla-bench": __version__, "python": platform.python_version(), **installed_versions(_VERSIONED)}


def git_revision() -> str | None:
    """The commit of the vla-bench source tree, with '+dirty' when it has local changes; None outside git."""
    src = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5)
        if rev.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def throughput(rows: list[dict], wall_seconds: float) -> dict:
    """Env steps per second (whole run, and inside episodes per worker) and the share of episode time rendering."""
    steps = sum(r.get("physics_steps", 0) for r in rows)
    busy = sum(r.get("seconds", 0.0) for r in rows)
    render = sum(r.get("render_seconds", 0.0) for r in rows)
    return {"env_steps": steps, "wall_seconds": round(wall_seconds, 3),
            "env_steps_per_s": round(steps / wall_seconds, 3) if wall_seconds > 0 else None,
            "env_steps_per_s_per_worker": round(steps / busy, 3) if busy > 0 else None,
            "render_share": round(render / busy, 4) if busy > 0 else None}


def write_results(run_dir: Path, config, rows: list[dict], wall_seconds: float, complete: bool,
                  suites: dict, policy_lineage: dict | None = None) -> dict:
    """results.json from the rows; `suites` is each suite's record (protocol, metrics, provenance, versions),
    `policy_lineage` the checkpoint's lineage.json (None for other policies)."""
    rows = sorted(rows, key=row_key)
    results = {
        "schema_version": SCHEMA_VERSION,
        "complete": complete,
        "config": asdict(config),
        "versions": package_versions(),
        "suites": suites,
        "git_revision": git_revision(),
        "seeds": {"base": config.seed, "count": config.seeds, "per_episode": SEED_RULE},
        "policy_lineage": policy_lineage,
        "metrics": summarize(rows, {name: [MetricSpec(**m) for m in s["metrics"]] for name, s in suites.items()}),
        "throughput": throughput(rows, wall_seconds),
        "episodes": rows,
    }
    write_json_atomically(run_dir / RESULTS_FILE, results)
    for suite in suites:
        spec = get_suite(suite)
        if spec.artifacts:
            load_target(spec.artifacts)(run_dir, [r for r in rows if r["suite"] == suite], config.env_options)
    return results


def load_results(path: str | Path) -> dict:
    """results.json from a run directory or the file itself."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.is_file():
        raise FileNotFoundError(f"no results at {p}")
    try:
        results = json.loads(p.read_text())
    except json.JSONDecodeError as e:  # e.g. a shell glob that also matched a log file
        raise ValueError(f"{p} is not a results.json (an eval run directory or its results.json): {e}") from None
    results["episodes"] = [upgrade_row(r) for r in results.get("episodes", [])]
    return results
