"""The evaluation runner: episodes spread over worker processes (vla_bench/eval/pool.py), each finished episode saved
at once.

Every finished episode is appended to `<run dir>/episodes.jsonl` (flushed and fsynced) by the main process, so a
crash, a kill, SIGTERM or Ctrl-C loses nothing finished; `resume=True` runs only the episodes missing from that file
(errored ones are retried), and refuses a different config or different policy weights at the same path. Rows
carry the session that wrote them and when, so the wall time of a run killed and resumed counts every session.

With `seeds=N` every planned episode runs N times, seed index k with base seed `seed + k`: a row is one (episode,
seed index), and resume, results and summaries key by both. A resume may add seeds (the rows of the first ones stay
valid), never drop them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from vla_bench.embodiment import get_embodiment
from vla_bench.envs.registry import check_task_indices, expand_suites, get_suite, list_tasks
from vla_bench.envs.spec import episodes_by_task
from vla_bench.envs.suite_python import package_versions, suite_python
from vla_bench.eval.episode import EpisodeSpec, episode_seed
from vla_bench.eval.pool import Dispatcher, EvalFatalError, Limits, WorkerPool
from vla_bench.eval.ray_pool import RayPool, check_ray_backend
from vla_bench.eval.results import EPISODES_FILE, drop_torn_tail, load_episode_rows, row_key, write_results
from vla_bench.lineage import read_lineage
from vla_bench.policies.base import make_policy

__all__ = ["EvalConfig", "EvalFatalError", "evaluate", "plan_episodes"]
MAX_IMAGE_SIZE = 2048


@dataclass
class EvalConfig:
    suites: list[str]  # suite names, groups ('libero') expanded in __post_init__
    policy: str  # registered policy name, checkpoint dir, or "module:factory"
    run_dir: str
    tasks: list[int] | None = None  # task indices within each suite; None = all
    episodes: int | None = None  # the first N episode ids of each task; None = the protocol's count
    episode_ids: list[int] | None = None  # explicit episode ids (overrides `episodes`)
    seed: int = 7  # base seed; each episode's seed derives from it and the episode's identity
    seeds: int = 1  # runs of every episode, seed index k under base seed `seed + k` (index 0: the plain run)
    image_size: int | None = None  # the policy's square image size; None = the suite's cameras as specified
    replan_steps: int = 5  # actions executed open-loop per chunk
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    env_options: dict = field(default_factory=dict)  # the suite's own env options (e.g. hard_reset, asset_dir)
    policy_options: dict = field(default_factory=dict)  # keyword arguments for the policy factory
    max_attempts: int = 3  # runs of an episode whose worker crashed before it counts as an error
    chunk_timeout: float = 600.0  # seconds a policy may go without executing a chunk; 0: off
    episode_timeout: float = 7200.0  # seconds an episode may take; 0: off
    # One policy for all env workers (loaded once, observations of all workers batched), served from this process
    # over loopback in openpi's protocol; off: every worker builds its own copy (cheapest for a tiny CPU policy).
    policy_process: bool = False
    backend: str = "local"  # "local": worker processes here; "ray": Ray actors (a local cluster or `ray_address`)
    ray_address: str | None = None  # an existing Ray cluster (e.g. "auto"); None: start a local one

    def __post_init__(self):
        self.suites = expand_suites(self.suites)
        if self.workers < 1 or (self.episodes is not None and self.episodes < 1) or self.replan_steps < 1 \
                or self.max_attempts < 1 or self.seeds < 1:
            raise ValueError("workers, episodes, seeds, replan_steps and max_attempts must be >= 1")
        if self.image_size is not None and not 1 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size must be in 1..{MAX_IMAGE_SIZE}, got {self.image_size}")
        if self.chunk_timeout < 0 or self.episode_timeout < 0:
            raise ValueError("timeouts must be >= 0 (0 turns them off)")
        if self.backend not in ("local", "ray"):
            raise ValueError(f"backend must be local or ray, got {self.backend!r}")
        for suite in self.suites:
            get_suite(suite).check_env_options(self.env_options)

    def identity(self) -> dict:
        """The fields that must match for `--resume` to continue a run (`seeds` may grow: see _check_resume); a
        checkpoint counts by its content."""
        d = asdict(self)
        for k in ("run_dir", "workers", "episodes", "episode_ids", "tasks", "max_attempts", "chunk_timeout",
                  "episode_timeout", "backend", "ray_address", "policy_process"):
            d.pop(k)
        d["policy"] = policy_identity(self.policy)
        return d

    def env_kwargs(self) -> dict:
        """Keyword arguments of every env of the run."""
        return {**self.env_options, **({} if self.image_size is None else {"image_size": self.image_size})}

    def limits(self) -> Limits:
        return Limits(max_attempts=self.max_attempts, chunk_timeout_s=self.chunk_timeout or None,
                      episode_timeout_s=self.episode_timeout or None)


def policy_identity(policy: str) -> str:
    """A checkpoint directory by the sha256 of its files (replaced weights at the same path are another policy; `ck`
    and `ck/` are the same one); any other policy by its name."""
    path = Path(policy)
    if not path.is_dir():
        return policy
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode() + b"\0")
        with f.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def plan_episodes(config: EvalConfig) -> list[EpisodeSpec]:
    """All (episode, seed index) pairs of the run, task-major, seed-major within a task. Unknown tasks or episode ids
    raise with the valid ones.

    Seed-major: a run stopped part-way holds whole seeds of a task (every init state under seed 0 before any under
    seed 1), so its seed 0 is the plain protocol run and compares to other runs; episode-major would leave some init
    states not run at all, and init states differ far more than seeds. (The dispatcher keeps a worker on its task,
    env creation costs seconds, so tasks still finish one after another.)"""
    specs = []
    for suite in config.suites:
        tasks = list_tasks(suite, config.env_options)
        chosen = range(len(tasks)) if config.tasks is None else config.tasks
        check_task_indices(suite, chosen, config.env_options)
        for t, ids in episodes_by_task([tasks[t] for t in chosen], config.episodes, config.episode_ids).items():
            specs += [EpisodeSpec(suite, t, i, episode_seed(config.seed + k, suite, t, i), tasks[t].name, k)
                      for k in range(config.seeds) for i in ids]
    return specs


def describe_suites(config: EvalConfig) -> dict:
    """results.json's record of each suite: protocol, metrics, cameras, its provenance and its packages' versions,
    read in the interpreter its workers run in."""
    out = {}
    for suite in config.suites:
        spec = get_suite(suite)
        python = suite_python(spec)
        out[suite] = {**spec.describe(config.env_options), "python": python or sys.executable,
                      "versions": package_versions(spec.simulator_packages, python)}
    return out


def run_embodiments(config: EvalConfig, specs: list[EpisodeSpec]) -> set[str]:
    """The embodiments the run's episodes act with."""
    return {list_tasks(s.suite, config.env_options)[s.task_index].embodiment for s in specs}


def check_policy(config: EvalConfig, specs: list[EpisodeSpec]) -> None:
    """Build the policy once here for each embodiment of the run, so that a bad checkpoint, an unknown option or a
    policy without support for the suite is one clear error before any env is built, not a worker's traceback."""
    embodiments = run_embodiments(config, specs)
    for name in sorted(embodiments):
        try:
            policy = make_policy(config.policy, get_embodiment(name), **config.policy_options)
        except TypeError as e:  # an option the factory does not take
            raise ValueError(f"policy {config.policy!r} does not take these options "
                             f"{sorted(config.policy_options)}: {e}") from None
        except (OSError, RuntimeError, KeyError) as e:
            raise ValueError(f"policy {config.policy!r} cannot be built for {name}: {type(e).__name__}: {e}") from None
        missing = [a for a in ("embodiment", "norm_stats", "needs_images", "needs_privileged", "reset", "act")
                   if not hasattr(policy, a)]
        if missing:
            raise ValueError(f"policy {config.policy!r} lacks {', '.join(missing)} (see vla_bench/policies/base.py)")
        del policy


def memory_warning(config: EvalConfig, n_workers: int) -> str | None:
    """A warning when the workers' expected memory exceeds what the machine has available, else None."""
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        available_mb = int(meminfo["MemAvailable"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None
    per_worker = max(get_suite(s).worker_memory_mb for s in config.suites)
    if n_workers * per_worker <= available_mb:
        return None
    return (f"{n_workers} workers x ~{per_worker} MB each exceed the {available_mb:.0f} MB available; "
            f"consider --workers {max(1, int(available_mb // per_worker))}")


@contextlib.contextmanager
def worker_policy(config: EvalConfig, specs: list[EpisodeSpec]):
    """The config the workers use: `config` itself, or, with `policy_process`, one whose policy is a server on
    loopback holding the one copy of the model (vla_bench.serve), for as long as the context lasts."""
    if not config.policy_process:
        yield config
        return
    from vla_bench.serve.batching import load_batch_policy
    from vla_bench.serve.server import PolicyServer, ServerThread

    embodiments = run_embodiments(config, specs)
    if len(embodiments) != 1:
        raise ValueError(f"--policy-process serves one embodiment; this run has {sorted(embodiments)}")
    policy = load_batch_policy(config.policy, get_embodiment(embodiments.pop()), **config.policy_options)
    server = PolicyServer(policy, name=config.policy, host="127.0.0.1", port=0, max_batch=max(1, config.workers))
    thread = ServerThread(server).start()
    try:
        yield replace(config, policy=thread.url, policy_options={}, policy_process=False)
    finally:
        thread.stop()
        server.close()


def _append_row(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _prepare_run_dir(config: EvalConfig, resume: bool) -> tuple[Path, list[dict]]:
    run_dir = Path(config.run_dir)
    cfg_path, episodes_path = run_dir / "config.json", run_dir / EPISODES_FILE
    if episodes_path.exists() and not resume:
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or choose another "
                              "--run-dir")
    rows, identity = [], config.identity()
    if resume and cfg_path.exists():
        _check_resume(cfg_path, json.loads(cfg_path.read_text())["identity"], identity)
        drop_torn_tail(episodes_path)
        rows = load_episode_rows(episodes_path)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(json.dumps({"config": asdict(config), "identity": identity}, indent=1))
    return run_dir, rows


def _check_resume(cfg_path: Path, saved: dict, identity: dict) -> None:
    """Refuse to resume a run of another config. More seeds than the run had are the same run extended (its rows
    stay valid); fewer would leave rows results.json does not count. A run from before `seeds` had one."""
    saved = {"seeds": 1, **saved}
    same = {k: v for k, v in saved.items() if k != "seeds"} == {k: v for k, v in identity.items() if k != "seeds"}
    if not same:
        changed = sorted(k for k in set(saved) | set(identity) if k != "seeds" and saved.get(k) != identity.get(k))
        raise ValueError(f"{cfg_path} was written by a different evaluation config ({', '.join(changed)} "
                         f"changed; a checkpoint counts by its content); cannot resume it:\n"
                         f"saved {saved}\nnow   {identity}")
    if identity["seeds"] < saved["seeds"]:
        raise ValueError(f"{cfg_path.parent} was run with --seeds {saved['seeds']}; a resume may add seeds, not drop "
                         f"them: pass --seeds {saved['seeds']} or more (or evaluate into another --run-dir)")


def wall_seconds(rows: list[dict], session: str, elapsed: float) -> float:
    """The run's wall time: each earlier session until its last finished row, plus this session so far."""
    last: dict[str, float] = {}
    for r in rows:
        if r.get("session") and r["session"] != session:
            last[r["session"]] = max(last.get(r["session"], 0.0), r.get("session_seconds", 0.0))
    return sum(last.values()) + elapsed


def evaluate(config: EvalConfig, resume: bool = False, progress: bool = True) -> dict:
    """Run (or finish) an evaluation; return the results dict also written to `<run dir>/results.json`."""
    specs = plan_episodes(config)  # validates suites, tasks and episode ids before anything starts
    suite_info = describe_suites(config)  # checks each suite's environment and assets before any worker starts
    check_policy(config, specs)
    lineage = read_lineage(config.policy)  # read now: a malformed lineage.json is one error, not a lost run's end
    run_dir, rows = _prepare_run_dir(config, resume)
    episodes_path = run_dir / EPISODES_FILE
    finished = {row_key(r) for r in rows if not r.get("error")}
    todo = [s for s in specs if s.key not in finished]
    wanted = {s.key for s in specs}
    earlier = load_episode_rows(episodes_path)  # every session's rows, for the wall time
    rows = [r for r in rows if row_key(r) in wanted and not r.get("error")]
    session, t0 = uuid.uuid4().hex[:12], time.perf_counter()
    interrupted = None
    try:
        # Suites that share an interpreter share one worker pool; a suite in its own environment gets its own.
        by_python: dict[str | None, list[EpisodeSpec]] = {}
        for s in todo:
            by_python.setdefault(suite_python(get_suite(s.suite)), []).append(s)
        with worker_policy(config, todo) as for_workers:
            for python, group in by_python.items():
                rows += _run_workers(for_workers, group, episodes_path, progress, already=rows, python=python,
                                     session=(session, t0))
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (process_lifecycle.Terminated)
        interrupted = e
        rows = [r for r in load_episode_rows(episodes_path) if row_key(r) in wanted]
    wall = wall_seconds(earlier + rows, session, time.perf_counter() - t0)
    results = write_results(run_dir, config, rows, wall_seconds=wall,
                            complete=interrupted is None and len(rows) >= len(specs), suites=suite_info,
                            policy_lineage=lineage)
    if interrupted is not None:
        raise type(interrupted)(f"{interrupted.args[0] if interrupted.args else 'interrupted'}; partial results "
                                f"in {run_dir / 'results.json'}")
    return results


def _run_workers(config: EvalConfig, todo: list[EpisodeSpec], episodes_path: Path, progress: bool,
                 already: list[dict], python: str | None, session: tuple[str, float]) -> list[dict]:
    """Run `todo` on worker processes; append each finished row to `episodes_path` as it arrives."""
    if not todo:
        return []
    dispatcher = Dispatcher(todo)
    n_workers = min(config.workers, len(todo))
    warning = memory_warning(config, n_workers) if config.backend == "local" else None
    if warning:
        print(f"vla-bench: warning: {warning}", file=sys.stderr)
    if config.backend == "ray":
        check_ray_backend(config.suites)
        pool = RayPool(config, n_workers, config.limits(), config.ray_address)
    else:
        pool = WorkerPool(config, n_workers, config.limits(), python)
    new_rows: list[dict] = []
    desc = "episodes" if config.seeds == 1 else f"episodes x {config.seeds} seeds"  # the total counts every seed's run
    bar = tqdm(total=len(todo), desc=desc, unit="ep", disable=not progress, dynamic_ncols=True)

    def record(row: dict) -> None:
        row = {**row, "session": session[0], "session_seconds": round(time.perf_counter() - session[1], 3)}
        _append_row(episodes_path, row)
        new_rows.append(row)
        done = already + new_rows
        bar.update(1)
        bar.set_postfix(success=f"{sum(r['success'] for r in done) / len(done):.1%}",
                        errors=sum(1 for r in done if r.get("error")))

    try:
        while dispatcher or pool.in_flight:
            try:
                kind, wid, payload = pool.outbox.get(timeout=0.5)
            except queue.Empty:
                kind = None
            if kind == "fatal":
                summary, tb = payload
                trace = episodes_path.parent / "worker_error.txt"
                trace.write_text(tb)
                raise EvalFatalError(f"a worker could not build its env or policy: {summary} (traceback: {trace})")
            if kind in ("start", "tick"):
                pool.note(kind, wid)
            elif kind in ("ready", "done") and wid in pool.workers:
                row, retry = pool.finished(wid, payload) if kind == "done" else (None, None)
                if row is not None:
                    record(row)
                if retry is not None:
                    dispatcher.retry(retry)
                pool.send(wid, dispatcher.next_for(wid))
            failed, retries = pool.check(bool(dispatcher))
            for row in failed:
                record(row)
            for spec in retries:
                dispatcher.retry(spec)
            for gone in set(dispatcher.loaded) - set(pool.workers):
                del dispatcher.loaded[gone]
    finally:
        bar.close()
        pool.close()
    return new_rows
