"""A from-scratch baseline: stable-baselines3 PPO with an MLP on state observations (`vla-bench rl-baseline`).

Training: one `TaskGymEnv` per env slot (slots = tasks x envs_per_task; worker processes for simulators, this process
for toy_reach). The observation is the env state followed by a one-hot of the task among the trained tasks: the
stand-in for the instruction, without which a state-only MLP cannot tell two tasks of one scene apart. SB3's PPO
defaults apply, except `n_steps` (and `batch_size` to divide the rollout), which shrink so that a small env-step budget
still gives several updates.

Outputs in the run directory: `sb3_ppo.zip` (the model, replaced atomically, also the resume point: rerun with the
same --out to continue), `sb3_ppo.json` (suite, tasks, their instructions, the observation layout, progress) and
`metrics.csv` (success rate per rollout). `vla-bench eval --policy <out> --replan-steps 1` evaluates it through
`load_policy`: one native action per call, chosen deterministically.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vla_bench.actions import pad_actions
from vla_bench.adapter import ActionChunk, Observation
from vla_bench.atomic_write import replace_atomically, write_json_atomically
from vla_bench.embodiment import EmbodimentSpec, get_embodiment
from vla_bench.envs.registry import check_task_indices, expand_suites, list_tasks, wants_worker_processes
from vla_bench.metric_log import MetricLogger

MISSING = ("stable-baselines3 is not installed: `pip install -e '.[baselines]'` (or `bash scripts/setup.sh`, which "
           "installs it next to the CPU torch)")
try:
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv
except ImportError as e:  # the `baselines` extra is optional
    raise ImportError(MISSING) from e

from vla_bench.rl.gym_env import TaskGymEnv  # noqa: E402  (needs gymnasium, checked above)

MODEL_FILE = "sb3_ppo.zip"
META_FILE = "sb3_ppo.json"
METRICS = ("charts/success", "charts/episodes", "charts/episode_length", "charts/env_steps_per_s")
MAX_N_STEPS = 2048  # SB3's default rollout length per env
TARGET_UPDATES = 8  # the fewest PPO updates a budget should give, where n_steps can shrink that far


@dataclass
class BaselineConfig:
    suite: str  # one suite, e.g. libero_object or toy_reach
    out: str  # run directory
    tasks: list[int] | None = None  # task indices within the suite; None: all
    env_steps: int = 100_000  # budget of env steps (native actions over all slots)
    envs_per_task: int = 4  # env slots per task
    seed: int = 0
    threads: int | None = None  # torch CPU threads; default: torch's
    workers: bool | None = None  # env slots in worker processes; default: yes except toy_reach
    n_steps: int | None = None  # steps per env per rollout; default: see `auto_n_steps`
    save_every_s: float = 60.0  # checkpoint at the first rollout boundary after this many seconds
    tensorboard: bool = True  # TensorBoard events beside the CSV, where the package is importable
    progress: bool = True

    def __post_init__(self):
        suites = expand_suites(self.suite)
        if len(suites) != 1:
            raise ValueError(f"the baseline trains on one suite; {self.suite!r} is {', '.join(suites)}")
        self.suite = suites[0]
        n = len(list_tasks(self.suite))
        self.tasks = list(range(n)) if self.tasks is None else [int(t) for t in self.tasks]
        if not self.tasks:
            raise ValueError("at least one task is needed")
        check_task_indices(self.suite, self.tasks)
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"duplicate task indices in {self.tasks}")
        if self.env_steps < 1 or self.envs_per_task < 1 or (self.n_steps is not None and self.n_steps < 2):
            raise ValueError("env_steps and envs_per_task must be >= 1, n_steps >= 2")
        if self.workers is None:
            self.workers = wants_worker_processes(self.suite)

    @property
    def num_envs(self) -> int:
        return len(self.tasks) * self.envs_per_task

    # Fields that must match for a rerun with the same --out to continue the run.
    IDENTITY = ("suite", "tasks", "envs_per_task", "seed")


def auto_n_steps(env_steps: int, num_envs: int) -> int:
    """Steps per env per rollout: a power of two in [16, 2048] giving about TARGET_UPDATES updates for the budget."""
    per_env = env_steps // (num_envs * TARGET_UPDATES)
    return int(min(MAX_N_STEPS, max(16, 2 ** int(math.log2(max(per_env, 1))))))


def task_observation(state: np.ndarray, position: int, num_tasks: int) -> np.ndarray:
    """The policy's input: state (float32) then a one-hot of the task's position among the trained tasks."""
    onehot = np.zeros(num_tasks, dtype=np.float32)
    if position >= 0:
        onehot[position] = 1.0
    return np.concatenate([np.asarray(state, dtype=np.float32).ravel(), onehot])


class TaskOneHot(gym.ObservationWrapper):
    """Appends the one-hot of the env's task (its position among the trained tasks) to the state observation."""

    def __init__(self, env: gym.Env, position: int, num_tasks: int):
        super().__init__(env)
        self.position, self.num_tasks = position, num_tasks
        dim = env.observation_space.shape[0] + num_tasks
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)

    def observation(self, observation):
        return task_observation(observation, self.position, self.num_tasks)


def _make_env(suite: str, task_index: int, position: int, num_tasks: int) -> gym.Env:
    return TaskOneHot(TaskGymEnv(suite, task_index), position, num_tasks)


def make_vec_env(config: BaselineConfig):
    """One env per slot, task-major; a SubprocVecEnv (spawned: MuJoCo contexts do not survive fork) or DummyVecEnv."""
    fns = [functools.partial(_make_env, config.suite, task, pos, len(config.tasks))
           for pos, task in enumerate(config.tasks) for _ in range(config.envs_per_task)]
    return SubprocVecEnv(fns, start_method="spawn") if config.workers else DummyVecEnv(fns)


def _metadata(config: BaselineConfig, n_steps: int, batch_size: int, num_timesteps: int) -> dict:
    tasks = list_tasks(config.suite)
    spec = get_embodiment(tasks[0].embodiment)
    return {
        "algorithm": "stable-baselines3 PPO MlpPolicy (from scratch)",
        "suite": config.suite, "tasks": config.tasks, "instructions": [tasks[t].instruction for t in config.tasks],
        "embodiment": spec.name,
        "observation": {"layout": ["state", "task_one_hot"], "state_dim": spec.state_dim,
                        "num_tasks": len(config.tasks), "dim": spec.state_dim + len(config.tasks)},
        "action": {"dim": spec.action_dim, "range": [-1.0, 1.0], "per_call": 1},
        "n_steps": n_steps, "batch_size": batch_size, "num_timesteps": num_timesteps,
        "config": {k: v for k, v in asdict(config).items() if k not in ("progress",)},
    }


def _save(model, out: Path, meta: dict) -> None:
    """Model first, then the JSON that records its step count: each file is either the old one or the new one."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            model.save(f)
    replace_atomically(out / MODEL_FILE, write)
    write_json_atomically(out / META_FILE, {**meta, "num_timesteps": int(model.num_timesteps)})


class _RolloutLog(BaseCallback):
    """Per rollout: success rate of the episodes it finished (from `info["is_success"]`) -> CSV; periodic saves."""

    def __init__(self, logger: MetricLogger, save, save_every_s: float, total: int, progress: bool):
        super().__init__()
        self.metric_logger, self.save, self.save_every_s = logger, save, save_every_s
        self.total, self.progress = total, progress

    def _on_training_start(self) -> None:
        from tqdm import tqdm
        self.lengths = np.zeros(self.training_env.num_envs, dtype=int)
        self.last_save = time.monotonic()
        self.bar = tqdm(total=self.total, initial=min(self.num_timesteps, self.total), unit="step",
                        desc="sb3-ppo", disable=not self.progress, dynamic_ncols=True)

    def _on_rollout_start(self) -> None:
        # The previous rollout's update is done here: a checkpoint now holds every step it counts.
        if time.monotonic() - self.last_save >= self.save_every_s:
            self.save()
            self.last_save = time.monotonic()
        self.episodes, self.t0, self.steps0 = [], time.perf_counter(), self.num_timesteps

    def _on_step(self) -> bool:
        self.lengths += 1
        for i, (done, info) in enumerate(zip(self.locals["dones"], self.locals["infos"])):
            if done:
                self.episodes.append((bool(info.get("is_success", False)), int(self.lengths[i])))
                self.lengths[i] = 0
        return True

    def _on_rollout_end(self) -> None:
        steps = self.num_timesteps - self.steps0
        metrics = {"charts/episodes": float(len(self.episodes)),
                   "charts/env_steps_per_s": steps / max(time.perf_counter() - self.t0, 1e-9)}
        if self.episodes:
            success, lengths = zip(*self.episodes)
            metrics |= {"charts/success": float(np.mean(success)), "charts/episode_length": float(np.mean(lengths))}
        self.metric_logger.log(self.num_timesteps, metrics)
        self.bar.update(steps)
        self.bar.set_postfix(success=f"{metrics.get('charts/success', float('nan')):.2f}")

    def _on_training_end(self) -> None:
        self.bar.close()


def train(config: BaselineConfig) -> dict:
    """Train (or continue, from `<out>/sb3_ppo.zip`) until `config.env_steps` env steps; returns the metadata."""
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / META_FILE).exists():
        saved = json.loads((out / META_FILE).read_text())
        mismatch = [f"{k}: saved {saved['config'].get(k)!r}, now {getattr(config, k)!r}"
                    for k in BaselineConfig.IDENTITY if saved["config"].get(k) != getattr(config, k)]
        if mismatch:
            raise ValueError(f"{out} holds another baseline run ({'; '.join(mismatch)}); use a new --out")
    envs = make_vec_env(config)
    try:
        if (out / MODEL_FILE).exists():  # resume: n_steps, optimizer state and step count come from the model
            model = PPO.load(out / MODEL_FILE, env=envs, device="cpu", force_reset=True)
            model.set_random_seed(config.seed + model.num_timesteps)
        else:
            n_steps = config.n_steps or auto_n_steps(config.env_steps, config.num_envs)
            batch_size = math.gcd(64, n_steps * config.num_envs)  # SB3's 64, or a divisor of the rollout
            model = PPO("MlpPolicy", envs, n_steps=n_steps, batch_size=batch_size, seed=config.seed, device="cpu",
                        verbose=0)
        meta = _metadata(config, model.n_steps, model.batch_size, int(model.num_timesteps))
        write_json_atomically(out / META_FILE, meta)  # the run's identity, written before any training
        done = int(model.num_timesteps)
        logger = MetricLogger(out, METRICS, step_name="env_steps", resume_step=done, tensorboard=config.tensorboard)
        save = functools.partial(_save, model, out, meta)
        try:
            if done < config.env_steps:
                callback = _RolloutLog(logger, save, config.save_every_s, config.env_steps, config.progress)
                model.learn(config.env_steps - done, callback=callback, reset_num_timesteps=False)
                save()
        finally:
            logger.close()
    finally:
        envs.close()
    return json.loads((out / META_FILE).read_text())


class SB3Policy:
    """A saved baseline as a `Policy`: state + task one-hot -> one deterministic native action per call.

    The task comes from matching the observation's instruction against the trained tasks' instructions. An
    instruction the model was not trained on raises, unless `unknown_task="zeros"` (an all-zero one-hot)."""

    norm_stats = None  # actions are native, in [-1, 1]
    needs_images = False
    needs_privileged = False

    def __init__(self, path: str | Path, embodiment: EmbodimentSpec, unknown_task: str = "error"):
        path = Path(path)
        self.meta = json.loads((path / META_FILE).read_text())
        if embodiment.name != self.meta["embodiment"]:
            raise ValueError(f"{path} was trained for embodiment {self.meta['embodiment']} "
                             f"({self.meta['suite']}), not {embodiment.name}")
        if unknown_task not in ("error", "zeros"):
            raise ValueError(f"unknown_task must be 'error' or 'zeros', got {unknown_task!r}")
        self.embodiment, self.unknown_task = embodiment, unknown_task
        self.model = PPO.load(path / MODEL_FILE, device="cpu")
        self.positions = {text: i for i, text in enumerate(self.meta["instructions"])}

    def reset(self, seed: int) -> None:
        pass  # deterministic

    def observation_vector(self, obs: Observation) -> np.ndarray:
        position = self.positions.get(obs.instruction, -1)
        if position < 0 and self.unknown_task == "error":
            raise ValueError(f"instruction {obs.instruction!r} is not one of the tasks {self.meta['tasks']} of "
                             f"{self.meta['suite']} this baseline was trained on (evaluate with --tasks "
                             f"{','.join(map(str, self.meta['tasks']))}, or --policy-option unknown_task=zeros)")
        return task_observation(obs.state, position, len(self.positions))

    def act(self, obs: Observation) -> ActionChunk:
        action, _ = self.model.predict(self.observation_vector(obs), deterministic=True)
        native = np.clip(np.asarray(action, dtype=np.float32).reshape(1, -1), -1.0, 1.0)
        return ActionChunk(*pad_actions(native))


def load_policy(path: str | Path, embodiment: EmbodimentSpec | str, **options) -> SB3Policy:
    """What `vla-bench eval --policy <dir holding sb3_ppo.zip>` calls. Option: unknown_task ('error' | 'zeros')."""
    spec = get_embodiment(embodiment) if isinstance(embodiment, str) else embodiment
    return SB3Policy(path, spec, **options)

