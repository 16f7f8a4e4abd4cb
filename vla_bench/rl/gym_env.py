"""A Gymnasium 1.x view of one task env with state observations, for from-scratch baselines (stable-baselines3 PPO).

Observation: the env's proprioceptive state (LIBERO: eef position, axis-angle, finger qpos; toy: position, target,
gripper), float32. Action: the c native channels in [-1, 1] (binary channels snapped to -1 / +1 by sign, as the
action adapter does). One gym step = one native action. Reward 1 on success, which terminates the episode; the
task's step budget truncates it. `reset(seed=...)` draws the episode's fixed init state from the task's init states.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from vla_bench.adapter import snap_binary_channels
from vla_bench.envs.registry import make_task_env


class TaskGymEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, suite: str, task_index: int, init_indices: list[int] | None = None, **env_options):
        self.env = make_task_env(suite, task_index, **env_options)
        self.task, spec = self.env.task, self.env.embodiment
        self.binary = spec.binary_channels
        self.init_indices = list(init_indices) if init_indices is not None else list(range(self.task.num_init_states))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (spec.state_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (spec.action_dim,), np.float32)
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        init = int(self.np_random.choice(self.init_indices)) if not options or "init_index" not in options \
            else int(options["init_index"])
        obs = self.env.reset(init, seed=int(self.np_random.integers(2**31)), images=False)
        self.steps, self.last_state = 0, obs.state
        return obs.state.astype(np.float32), {"init_index": init}

    def step(self, action):
        native = snap_binary_channels(np.clip(np.asarray(action, np.float32), -1, 1)[None], self.binary)
        result = self.env.step_chunk(native, self.task.max_steps - self.steps)
        self.steps += result.steps
        terminated = bool(result.success)
        truncated = not terminated and self.steps >= self.task.max_steps
        if result.observation is not None:
            self.last_state = result.observation.state
        info = {"is_success": terminated}
        return self.last_state.astype(np.float32), float(terminated), terminated, truncated, info

    def close(self):
        self.env.close()
