"""One evaluation episode: reset to an episode id, then policy chunk -> adapter -> env until the task ends or the budget
is spent; the suite judges the episode."""

from __future__ import annotations

import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from vla_bench.adapter import ActionAdapter
from vla_bench.envs.base import TaskEnv
from vla_bench.policies.base import Policy, camera_request


@dataclass(frozen=True)
class EpisodeSpec:
    suite: str
    task_index: int
    episode_id: int  # one of the task's episode ids (LIBERO: the init state; SimplerEnv: ManiSkill's episode_id)
    seed: int
    task: str = ""  # the task's name, for rows written without the env (a crashed worker)
    seed_index: int = 0  # which of the run's seeds (`--seeds N`: 0..N-1); `seed` derives from base seed + it

    @property
    def key(self) -> tuple[str, int, int, int]:
        return self.suite, self.task_index, self.episode_id, self.seed_index


def episode_seed(base_seed: int, suite: str, task_index: int, episode_id: int) -> int:
    """A per-episode seed that does not depend on which worker runs the episode or in what order."""
    return zlib.crc32(f"{base_seed}/{suite}/{task_index}/{episode_id}".encode()) & 0x7FFFFFFF


def run_episode(env: TaskEnv, policy: Policy, adapter: ActionAdapter, spec: EpisodeSpec,
                on_chunk: Callable[[], None] | None = None) -> dict:
    """Run one episode until the task's own end or the step budget; the row carries the suite's metrics. Any
    exception (policy output, simulator) becomes the row's `error` (a failure), never propagates. `on_chunk` is
    called after every executed chunk (the runner's hang detection)."""
    t0, render0, physics0 = time.perf_counter(), env.render_seconds, env.physics_steps
    steps, end, error, instruction, metrics, info = 0, "budget", None, None, {"success": False}, {}
    try:
        policy.reset(spec.seed)
        obs = env.reset(spec.episode_id, spec.seed, **camera_request(policy), privileged=policy.needs_privileged)
        instruction = obs.instruction
        while steps < env.task.max_steps:
            result = env.step_chunk(adapter.to_native(policy.act(obs)), env.task.max_steps - steps)
            steps += result.steps
            if on_chunk is not None:
                on_chunk()
            if result.done:
                end = "done"
                break
            obs = result.observation
        metrics, info = env.episode_metrics(), env.episode_info()
    except Exception as e:  # noqa: BLE001 - one bad episode must not end the run
        error, end = f"{type(e).__name__}: {e}", "error"
        tb = traceback.format_exc(limit=6)
        retryable = isinstance(e, ConnectionError)  # e.g. a policy server restarted: the episode may be run again
    row = {
        "suite": spec.suite, "task_index": spec.task_index, "task": env.task.name, "episode_id": spec.episode_id,
        "instruction": instruction, "seed": spec.seed, "seed_index": spec.seed_index, **metrics, "steps": steps,
        "end": end, "seconds": round(time.perf_counter() - t0, 4), "physics_steps": env.physics_steps - physics0,
        "render_seconds": round(env.render_seconds - render0, 4), "info": info, "error": error,
    }
    if error:
        row["traceback"] = tb
        row["retryable"] = retryable
    return row
