"""One evaluation episode: reset to a fixed init state, then policy chunk -> adapter -> env until success or budget."""

from __future__ import annotations

import time
import traceback
import zlib
from dataclasses import dataclass

from vla_bench.adapter import ActionAdapter
from vla_bench.envs.base import TaskEnv
from vla_bench.policies.base import Policy


@dataclass(frozen=True)
class EpisodeSpec:
    suite: str
    task_index: int
    init_index: int
    seed: int
    task: str = ""  # the task's name, for rows written without the env (a crashed worker)

    @property
    def key(self) -> tuple[str, int, int]:
        return self.suite, self.task_index, self.init_index


def episode_seed(base_seed: int, suite: str, task_index: int, init_index: int) -> int:
    """A per-episode seed that does not depend on which worker runs the episode or in what order."""
    return zlib.crc32(f"{base_seed}/{suite}/{task_index}/{init_index}".encode()) & 0x7FFFFFFF


def run_episode(env: TaskEnv, policy: Policy, adapter: ActionAdapter, spec: EpisodeSpec) -> dict:
    """Run one episode; any exception (policy output, simulator) becomes the row's `error`, never propagates."""
    t0, render0, physics0 = time.perf_counter(), env.render_seconds, env.physics_steps
    steps, success, error = 0, False, None
    try:
        policy.reset(spec.seed)
        obs = env.reset(spec.init_index, spec.seed, images=policy.needs_images, privileged=policy.needs_privileged)
        while steps < env.task.max_steps:
            result = env.step_chunk(adapter.to_native(policy.act(obs)), env.task.max_steps - steps)
            steps += result.steps
            if result.success:
                success = True
                break
            obs = result.observation
    except Exception as e:  # noqa: BLE001 - one bad episode must not end the run
        error = f"{type(e).__name__}: {e}"
        tb = traceback.format_exc(limit=6)
    row = {
        "suite": spec.suite, "task_index": spec.task_index, "task": env.task.name, "init_index": spec.init_index,
        "seed": spec.seed, "success": success, "steps": steps, "seconds": round(time.perf_counter() - t0, 4),
        "physics_steps": env.physics_steps - physics0, "render_seconds": round(env.render_seconds - render0, 4),
        "error": error,
    }
    if error:
        row["traceback"] = tb
    return row
