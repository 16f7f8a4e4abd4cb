"""Env worker processes for the evaluation runner: what each runs, which episode goes where, and what happens when a
worker crashes or hangs.

Workers own one task env at a time; the dispatcher hands a worker more episodes of the task it already has loaded (env
creation costs seconds), and only then a task nobody else is running. A crash costs the episode, never the run: the
episode is retried (at most `max_attempts` runs in all), then recorded as an error, and the worker is replaced;
replacements are rate-limited, not capped. A policy that stops producing chunks, or an episode that runs past its
time limit, gets its worker killed and becomes an error row. Workers die with the main process (process_lifecycle).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass

from vla_bench.adapter import ActionAdapter
from vla_bench.embodiment import get_embodiment
from vla_bench.envs.registry import make_task_env
from vla_bench.envs.suite_python import ForeignWorker
from vla_bench.eval.episode import EpisodeSpec, run_episode
from vla_bench.policies.base import make_policy
from vla_bench.process_lifecycle import die_with_parent

RESPAWN_WINDOW_S = 60.0  # replacements allowed per window: max(4, 2 x workers); beyond that they wait


@dataclass(frozen=True)
class Limits:
    max_attempts: int = 3  # runs of an episode whose worker died, before it is recorded as an error
    chunk_timeout_s: float | None = 600.0  # seconds without a chunk before the episode is an error; None: off
    episode_timeout_s: float | None = 7200.0  # seconds for a whole episode; None: off


class EvalFatalError(RuntimeError):
    """A worker could not build its env or policy: the run cannot go on."""


def cores_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _share_cores(workers: int) -> None:
    """Give a torch policy its share of the cores: N workers each using every core oversubscribe the machine."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(cores_per_worker(workers))


class EpisodeWorker:
    """What a worker holds: one task env (kept while its episodes come), one policy per embodiment. An exception from
    `run` means the env or the policy could not be built: the run cannot go on. Episode faults become rows."""

    def __init__(self, wid: int, config):
        self.wid, self.config = wid, config
        self.env, self.policies = None, {}

    def run(self, spec: EpisodeSpec, on_chunk=None) -> dict:
        config, env = self.config, self.env
        if env is None or (env.task.suite, env.task.index) != (spec.suite, spec.task_index):
            self.close()  # a failed creation must not leave the old env in place
            env = self.env = make_task_env(spec.suite, spec.task_index, **config.env_kwargs())
        emb = env.embodiment.name
        if emb not in self.policies:
            self.policies[emb] = make_policy(config.policy, get_embodiment(emb), **config.policy_options)
            _share_cores(config.workers)
        policy = self.policies[emb]
        adapter = ActionAdapter(env.embodiment, policy.norm_stats, config.replan_steps)
        if on_chunk is not None:
            on_chunk("start")
        row = run_episode(env, policy, adapter, spec, on_chunk=None if on_chunk is None else lambda: on_chunk("tick"))
        return {**row, "worker": self.wid}

    def close(self) -> None:
        if self.env is not None:
            env, self.env = self.env, None
            env.close()


def worker_main(wid: int, config, inbox, outbox) -> None:
    """Worker process: run the episodes it is sent on an `EpisodeWorker`.
    Messages out: ready, start (episode began), tick (a chunk was executed), done (its row), fatal."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C and stops the workers
    # Mesa's software renderer (llvmpipe) starts a thread per core in every process; read before any GL context.
    os.environ.setdefault("LP_NUM_THREADS", str(cores_per_worker(config.workers)))
    worker = EpisodeWorker(wid, config)
    try:
        outbox.put(("ready", wid, None))
        while (msg := inbox.get()) is not None:
            row = worker.run(EpisodeSpec(**msg), on_chunk=lambda kind: outbox.put((kind, wid, None)))
            outbox.put(("done", wid, row))
    except Exception as e:  # noqa: BLE001 - env creation or policy loading failed: the run cannot go on
        outbox.put(("fatal", wid, (f"{type(e).__name__}: {e}", traceback.format_exc())))
    finally:
        worker.close()


def foreign_worker_main(conn, wid: int, config) -> None:
    """`worker_main` in a suite's own interpreter: one duplex connection serves as inbox and outbox."""
    queue_like = _Connection(conn)
    worker_main(wid, config, queue_like, queue_like)


class _Connection:
    """A `multiprocessing.connection.Connection` with the queue methods `worker_main` uses."""

    def __init__(self, conn):
        self.conn = conn

    def get(self):
        return self.conn.recv()

    def put(self, message) -> None:
        self.conn.send(message)


def _forward(conn, outbox) -> None:
    """Move a foreign worker's messages into the pool's outbox until its connection closes."""
    try:
        while True:
            outbox.put(conn.recv())
    except (EOFError, OSError):
        pass


class Dispatcher:
    """Hands out pending episodes, preferring the task a worker already has loaded."""

    def __init__(self, specs: list[EpisodeSpec]):
        self.pending: dict[tuple[str, int], deque[EpisodeSpec]] = {}
        for s in specs:
            self.pending.setdefault((s.suite, s.task_index), deque()).append(s)
        self.loaded: dict[int, tuple[str, int]] = {}

    def __bool__(self) -> bool:
        return any(self.pending.values())

    def retry(self, spec: EpisodeSpec) -> None:
        """Queue an episode again (its worker died), behind the other episodes of its task."""
        self.pending.setdefault((spec.suite, spec.task_index), deque()).append(spec)

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


@dataclass
class _InFlight:
    spec: EpisodeSpec
    started: float | None = None  # when the worker began the episode (after building its env)
    last_chunk: float | None = None


class WorkerPool:
    """Worker processes, the episode each one is running, and what to do when one dies or hangs."""

    def __init__(self, config, n_workers: int, limits: Limits, python: str | None = None):
        self.ctx = mp.get_context("spawn")  # MuJoCo's EGL contexts do not survive fork
        self.config, self.limits, self.outbox, self.python = config, limits, self.ctx.Queue(), python
        self.workers: dict[int, tuple] = {}  # wid -> (process, inbox)
        self.in_flight: dict[int, _InFlight] = {}
        self.attempts: dict[tuple, list[str]] = {}  # episode key -> why its earlier runs failed
        self.next_wid, self.size = 0, n_workers
        self.respawns: deque[float] = deque()
        self.kill_reasons: dict[int, str] = {}  # wid -> why the pool killed it (a hang: not retried)
        self.retired: set[int] = set()  # workers told to exit
        self.max_respawns = max(4, 2 * n_workers)
        for _ in range(n_workers):
            self.spawn()

    def spawn(self) -> None:
        if self.python is None:
            inbox = self.ctx.Queue()
            proc = self.ctx.Process(target=worker_main, args=(self.next_wid, self.config, inbox, self.outbox),
                                    daemon=True)
            proc.start()
        else:  # the suite's own interpreter: the worker's connection is its inbox, a thread forwards its outbox
            proc = inbox = ForeignWorker(self.python, "vla_bench.eval.pool:foreign_worker_main",
                                         (self.next_wid, self.config))
            threading.Thread(target=_forward, args=(proc.conn, self.outbox), daemon=True).start()
        self.workers[self.next_wid] = (proc, inbox)
        self.next_wid += 1

    def send(self, wid: int, spec: EpisodeSpec | None) -> None:
        """Send a worker its next episode, or None: no work left, the worker exits (and is not replaced)."""
        if spec is not None:
            self.in_flight[wid] = _InFlight(spec)
        else:
            self.retired.add(wid)
        self.workers[wid][1].put(None if spec is None else asdict(spec))

    def note(self, kind: str, wid: int) -> None:
        """A worker's progress message: the episode started, or a chunk was executed."""
        flight = self.in_flight.get(wid)
        if flight is not None:
            now = time.monotonic()
            if kind == "start":
                flight.started = flight.last_chunk = now
            else:
                flight.last_chunk = now

    def finished(self, wid: int, row: dict) -> tuple[dict | None, EpisodeSpec | None]:
        """(the row to record, None) for a row a live worker reported, with its earlier failed attempts; (None, the
        episode) when it failed in a way worth another attempt (a lost policy server); (None, None) if stale."""
        flight = self.in_flight.pop(wid, None)
        if flight is None or wid not in self.workers:
            return None, None
        key = flight.spec.key
        if row.get("retryable") and len(self.attempts.get(key, [])) + 1 < self.limits.max_attempts:
            self.attempts.setdefault(key, []).append(row["error"])
            return None, flight.spec
        failures = self.attempts.pop(key, [])
        return {**row, "attempts": len(failures) + 1, **({"earlier_failures": failures} if failures else {})}, None

    def check(self, work_left: bool) -> tuple[list[dict], list[EpisodeSpec]]:
        """Kill hung workers, remove dead ones, replace them (rate-limited) while work is left. Returns the error rows
        to record and the episodes to run again."""
        rows, retries = [], []
        self._kill_hung()
        for wid, (proc, _) in list(self.workers.items()):
            if proc.exitcode is None:
                continue
            del self.workers[wid]
            self.retired.discard(wid)
            flight, killed = self.in_flight.pop(wid, None), self.kill_reasons.pop(wid, None)
            if flight is not None:
                reason = killed or f"worker process died (exit code {proc.exitcode}) during the episode"
                row, retry = self._failed(flight.spec, wid, reason, retryable=killed is None)
                if row:
                    del self.attempts[flight.spec.key]
                    rows.append(row)
                retries += [retry] if retry else []
        if work_left or retries:
            self._replace()
        return rows, retries

    def _kill_hung(self) -> None:
        now, lim = time.monotonic(), self.limits
        for wid, flight in self.in_flight.items():
            proc = self.workers[wid][0]
            if flight.started is None or proc.exitcode is not None or wid in self.kill_reasons:
                continue
            if lim.chunk_timeout_s and now - flight.last_chunk > lim.chunk_timeout_s:
                reason = f"timed out: no chunk for {lim.chunk_timeout_s:g} s (--chunk-timeout)"
            elif lim.episode_timeout_s and now - flight.started > lim.episode_timeout_s:
                reason = f"timed out: episode longer than {lim.episode_timeout_s:g} s (--episode-timeout)"
            else:
                continue
            self.kill_reasons[wid] = reason
            proc.kill()
            proc.join(timeout=10)

    def _failed(self, spec: EpisodeSpec, wid: int, reason: str, retryable: bool):
        """(error row, None) once the episode has used its attempts (or cannot be retried), else (None, spec)."""
        failures = self.attempts.setdefault(spec.key, [])
        failures.append(reason)
        if retryable and len(failures) < self.limits.max_attempts:
            return None, spec
        return failure_row(spec, wid, reason, attempts=len(failures)), None

    def _replace(self) -> None:
        now = time.monotonic()
        while self.respawns and now - self.respawns[0] > RESPAWN_WINDOW_S:
            self.respawns.popleft()
        while len(self.workers) - len(self.retired) < self.size and len(self.respawns) < self.max_respawns:
            self.respawns.append(now)
            self.spawn()

    def close(self) -> None:
        for proc, _ in self.workers.values():
            if proc.is_alive():
                proc.terminate()
        for proc, _ in self.workers.values():
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


def failure_row(spec: EpisodeSpec, wid: int, reason: str, attempts: int = 1) -> dict:
    """The row of an episode that produced none: its worker died or was killed."""
    return {"suite": spec.suite, "task_index": spec.task_index, "task": spec.task, "episode_id": spec.episode_id,
            "instruction": None, "seed": spec.seed, "seed_index": spec.seed_index, "success": False, "steps": 0,
            "end": "error", "seconds": 0.0, "physics_steps": 0, "render_seconds": 0.0, "info": {}, "worker": wid,
            "attempts": attempts, "error": reason}
