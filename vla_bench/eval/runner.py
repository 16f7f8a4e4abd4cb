"""The evaluation runner: episodes spread over worker processes, each finished episode saved at once.

Worker processes own one task env at a time; the dispatcher hands a worker more episodes of the task it already has
loaded (env creation costs seconds), and only then a task nobody else is running. Every finished episode is appended
to `<run dir>/episodes.jsonl` (flushed and fsynced) by the main process, so a crash, a kill or Ctrl-C loses nothing
finished; `resume=True` runs only the episodes missing from that file (errored ones are retried).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import signal
import sys
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from vla_bench.adapter import ActionAdapter
from vla_bench.embodiment import get_embodiment
from vla_bench.envs.registry import check_task_indices, expand_suites, list_tasks, make_task_env
from vla_bench.eval.episode import EpisodeSpec, episode_seed, run_episode
from vla_bench.eval.results import EPISODES_FILE, drop_torn_tail, load_episode_rows, load_results, write_results
from vla_bench.policies.base import make_policy, policy_factory


@dataclass
class EvalConfig:
    suites: list[str]  # suite names, groups ('libero') expanded in __post_init__
    policy: str  # registered policy name, checkpoint dir, or "module:factory"
    run_dir: str
    tasks: list[int] | None = None  # task indices within each suite; None = all
    episodes: int = 50  # episodes per task: init states 0..episodes-1
    init_indices: list[int] | None = None  # explicit init-state indices (overrides `episodes`)
    seed: int = 7  # base seed; each episode's seed derives from it and the episode's identity
    image_size: int = 128  # camera height = width
    replan_steps: int = 5  # actions executed open-loop per chunk
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    hard_reset: bool = False  # rebuild the MuJoCo model on every reset (slow; equivalent results)
    policy_options: dict = field(default_factory=dict)  # keyword arguments for the policy factory

    def __post_init__(self):
        self.suites = expand_suites(self.suites)
        if self.workers < 1 or self.episodes < 1 or self.replan_steps < 1:
            raise ValueError("workers, episodes and replan_steps must be >= 1")

    def identity(self) -> dict:
        """The fields that must match for `--resume` to continue a run."""
        d = asdict(self)
        for k in ("run_dir", "workers", "episodes", "init_indices", "tasks"):
            d.pop(k)
        return d


def plan_episodes(config: EvalConfig) -> list[EpisodeSpec]:
    """All episodes of the run in task-major order. Unknown tasks or init indices raise with the valid range."""
    specs = []
    for suite in config.suites:
        tasks = list_tasks(suite)
        chosen = range(len(tasks)) if config.tasks is None else config.tasks
        check_task_indices(suite, chosen)
        for t in chosen:
            n_init = tasks[t].num_init_states
            inits = config.init_indices if config.init_indices is not None else range(config.episodes)
            bad = [i for i in inits if not 0 <= i < n_init]
            if bad:
                raise IndexError(f"{suite} task {t} has init states 0..{n_init - 1}; got {bad}")
            specs += [EpisodeSpec(suite, t, i, episode_seed(config.seed, suite, t, i), tasks[t].name) for i in inits]
    return specs


def _cores_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _share_cores(workers: int) -> None:
    """Give a torch policy its share of the cores: N workers each using every core oversubscribe the machine."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(_cores_per_worker(workers))


def _worker_main(wid: int, config: EvalConfig, inbox, outbox) -> None:
    """Worker process: build the policy once per embodiment, keep one task env, run the episodes it is sent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C and stops the workers
    # Mesa's software renderer (llvmpipe) starts a thread per core in every process; read before any GL context.
    os.environ.setdefault("LP_NUM_THREADS", str(_cores_per_worker(config.workers)))
    env, policies = None, {}
    try:
        outbox.put(("ready", wid, None))
        while (msg := inbox.get()) is not None:
            spec = EpisodeSpec(**msg)
            if env is None or (env.task.suite, env.task.index) != (spec.suite, spec.task_index):
                if env is not None:
                    env.close()
                env = None  # a failed creation must not leave the old env in place
                env = make_task_env(spec.suite, spec.task_index, image_size=config.image_size,
                                    hard_reset=config.hard_reset)
            emb = env.embodiment.name
            if emb not in policies:
                policies[emb] = make_policy(config.policy, get_embodiment(emb), **config.policy_options)
                _share_cores(config.workers)
            policy = policies[emb]
            adapter = ActionAdapter(env.embodiment, policy.norm_stats, config.replan_steps)
            outbox.put(("done", wid, {**run_episode(env, policy, adapter, spec), "worker": wid}))
    except Exception:  # noqa: BLE001 - env creation or policy loading failed: the run cannot go on
        outbox.put(("fatal", wid, traceback.format_exc()))
    finally:
        if env is not None:
            env.close()


class EvalFatalError(RuntimeError):
    """A worker could not build its env or policy; the message holds its traceback."""


class _Dispatcher:
    """Hands out pending episodes, preferring the task a worker already has loaded."""

    def __init__(self, specs: list[EpisodeSpec]):
        self.pending: dict[tuple[str, int], deque[EpisodeSpec]] = {}
        for s in specs:
            self.pending.setdefault((s.suite, s.task_index), deque()).append(s)
        self.loaded: dict[int, tuple[str, int]] = {}

    def __bool__(self) -> bool:
        return any(self.pending.values())

    def next_for(self, wid: int) -> EpisodeSpec | None:
        current = self.loaded.get(wid)
        if not self.pending.get(current):
            others = {t for w, t in self.loaded.items() if w != wid}
            open_tasks = [t for t, q in self.pending.items() if q]
            if not open_tasks:
                return None
            current = min(open_tasks, key=lambda t: (t in others, -len(self.pending[t])))
            self.loaded[wid] = current
        return self.pending[current].popleft()


def _append_row(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _prepare_run_dir(config: EvalConfig, resume: bool) -> tuple[Path, list[dict]]:
    run_dir = Path(config.run_dir)
    cfg_path, episodes_path = run_dir / "config.json", run_dir / EPISODES_FILE
    if episodes_path.exists() and not resume:
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
    rows = []
    if resume and cfg_path.exists():
        saved = json.loads(cfg_path.read_text())
        if saved["identity"] != config.identity():
            raise ValueError(f"{cfg_path} was written by a different evaluation config; cannot resume it:\n"
                             f"saved {saved['identity']}\nnow   {config.identity()}")
        drop_torn_tail(episodes_path)
        rows = load_episode_rows(episodes_path)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(json.dumps({"config": asdict(config), "identity": config.identity()}, indent=1))
    return run_dir, rows


def _previous_wall_seconds(run_dir: Path) -> float:
    try:
        return float(load_results(run_dir)["throughput"]["wall_seconds"])
    except (FileNotFoundError, KeyError, TypeError, ValueError):
        return 0.0


def evaluate(config: EvalConfig, resume: bool = False, progress: bool = True) -> dict:
    """Run (or finish) an evaluation; return the results dict also written to `<run dir>/results.json`."""
    specs = plan_episodes(config)  # validates suites, tasks and init indices before anything starts
    policy_factory(config.policy)
    run_dir, rows = _prepare_run_dir(config, resume)
    finished = {(r["suite"], r["task_index"], r["init_index"]) for r in rows if not r.get("error")}
    todo = [s for s in specs if s.key not in finished]
    wanted = {s.key for s in specs}
    rows = [r for r in rows if (r["suite"], r["task_index"], r["init_index"]) in wanted and not r.get("error")]
    # A resumed run's throughput covers all its sessions: earlier wall time is carried over.
    t0 = time.perf_counter() - (_previous_wall_seconds(run_dir) if resume else 0.0)
    interrupted = False
    try:
        rows += _run_workers(config, todo, run_dir / EPISODES_FILE, progress, already=rows)
    except KeyboardInterrupt:
        interrupted = True
        rows = [r for r in load_episode_rows(run_dir / EPISODES_FILE)
                if (r["suite"], r["task_index"], r["init_index"]) in wanted]
    results = write_results(run_dir, config, rows, wall_seconds=time.perf_counter() - t0,
                            complete=not interrupted and len(rows) >= len(specs))
    if interrupted:
        raise KeyboardInterrupt(f"interrupted; partial results in {run_dir / 'results.json'}")
    return results


class _WorkerPool:
    """Worker processes, the episode each one is running, and what to do when one dies."""

    def __init__(self, config: EvalConfig, n_workers: int):
        self.ctx = mp.get_context("spawn")  # MuJoCo's EGL contexts do not survive fork
        self.config, self.outbox = config, self.ctx.Queue()
        self.workers: dict[int, tuple] = {}  # wid -> (process, inbox)
        self.in_flight: dict[int, EpisodeSpec] = {}
        self.next_wid, self.respawns_left = 0, 2 * n_workers
        for _ in range(n_workers):
            self.spawn()

    def spawn(self) -> None:
        inbox = self.ctx.Queue()
        proc = self.ctx.Process(target=_worker_main, args=(self.next_wid, self.config, inbox, self.outbox),
                                daemon=True)
        proc.start()
        self.workers[self.next_wid] = (proc, inbox)
        self.next_wid += 1

    def send(self, wid: int, spec: EpisodeSpec | None) -> None:
        if spec is not None:
            self.in_flight[wid] = spec
        self.workers[wid][1].put(None if spec is None else asdict(spec))

    def reap(self, work_left: bool) -> list[dict]:
        """Remove dead workers; return an error row for each episode they were running; respawn while work is left."""
        rows = []
        for wid, (proc, _) in list(self.workers.items()):
            if proc.exitcode is None:
                continue
            del self.workers[wid]
            spec = self.in_flight.pop(wid, None)
            if spec is not None:
                rows.append(crash_row(spec, wid, proc.exitcode))
            if (work_left or self.in_flight) and self.respawns_left:
                self.respawns_left -= 1
                self.spawn()
        if not self.workers and (work_left or self.in_flight):
            raise EvalFatalError("all worker processes died; see the errors in episodes.jsonl")
        return rows

    def close(self) -> None:
        for proc, _ in self.workers.values():
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=10)


def crash_row(spec: EpisodeSpec, wid: int, exitcode: int) -> dict:
    return {"suite": spec.suite, "task_index": spec.task_index, "task": spec.task, "init_index": spec.init_index,
            "seed": spec.seed, "success": False, "steps": 0, "seconds": 0.0, "physics_steps": 0,
            "render_seconds": 0.0, "worker": wid,
            "error": f"worker process died (exit code {exitcode}) during the episode"}


def _run_workers(config: EvalConfig, todo: list[EpisodeSpec], episodes_path: Path, progress: bool,
                 already: list[dict]) -> list[dict]:
    """Run `todo` on worker processes; append each finished row to `episodes_path` as it arrives."""
    if not todo:
        return []
    dispatcher = _Dispatcher(todo)
    pool = _WorkerPool(config, min(config.workers, len(todo)))
    new_rows: list[dict] = []
    bar = tqdm(total=len(todo), desc="episodes", unit="ep", disable=not progress, dynamic_ncols=True)

    def record(row: dict) -> None:
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
                for row in pool.reap(bool(dispatcher)):
                    dispatcher.loaded.pop(row["worker"], None)
                    record(row)
                continue
            if kind == "fatal":
                raise EvalFatalError(f"worker {wid} failed:\n{payload}")
            if kind == "done":
                pool.in_flight.pop(wid, None)
                record(payload)
            pool.send(wid, dispatcher.next_for(wid))
    finally:
        bar.close()
        pool.close()
    return new_rows
