"""Record successful episodes of a policy (usually the scripted reference) as a LeRobotDataset v3.

Per step: the observation before the action (images per view at the chosen size, state), the native action
executed, the episode's instruction; the embodiment is the dataset's, and each episode's extras keep the suite, the
task id and the episode id beside the instruction (suites may draw a different instruction per episode). The env is
stepped one action at a time so that every step has its observation (the envs render only when `step_chunk` returns
an observation with images), while the policy is queried every `replan_steps` actions exactly as under evaluation.
An episode runs until the task's own end or its step budget and is kept only if the suite judges it a success
(SimplerEnv: at the final step).

Resumable: a rerun with the same output directory skips the (suite, task, episode id) triples already recorded and
those that failed before (logged in meta/vla_bench_failed.jsonl), and stops a task once it has `episodes`
successes. Episodes are flushed in batches (see `vla_bench.data.lerobot`), so a kill loses at most one batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vla_bench.adapter import ActionAdapter
from vla_bench.data.lerobot import DatasetWriter, Episode
from vla_bench.embodiment import get_embodiment
from vla_bench.envs.base import TaskEnv
from vla_bench.envs.registry import check_task_indices, expand_suites, get_suite, list_tasks, make_task_env
from vla_bench.envs.spec import episodes_by_task
from vla_bench.eval.episode import episode_seed
from vla_bench.policies.base import Policy, make_policy

FAILED_FILE = "meta/vla_bench_failed.jsonl"


@dataclass
class CollectConfig:
    suites: list[str]  # suite names or a group ('libero'); all must share one embodiment
    policy: str  # registered policy name or "module:factory" (see vla_bench.policies.base.policy_factory)
    out: str  # dataset directory; reused to resume
    episodes: int = 50  # successful episodes wanted per task (episode ids are tried in order)
    episode_ids: list[int] | None = None  # the ids tried, in this order (default: all of the task's); naming them
    #                                       keeps evaluation ids out of the demonstrations
    tasks: list[int] | None = None  # task indices within each suite; None = all
    image_size: int = 128  # camera height = width; 0 records no images
    replan_steps: int = 5  # actions executed per policy query
    seed: int = 7  # base seed; each episode's seed derives from it and the episode's identity
    flush_every: int = 10  # episodes per data file (what a kill can lose)
    policy_options: dict = field(default_factory=dict)
    env_options: dict = field(default_factory=dict)  # the suite's own env options (e.g. asset_dir)

    def __post_init__(self):
        self.suites = expand_suites(self.suites)
        for suite in self.suites:
            get_suite(suite).check_env_options(self.env_options)
        if self.episodes < 1 or self.replan_steps < 1 or self.image_size < 0:
            raise ValueError("episodes and replan_steps must be >= 1 and image_size >= 0")


def record_episode(env: TaskEnv, policy: Policy, adapter: ActionAdapter, episode_id: int, seed: int,
                   images: bool) -> Episode | None:
    """Run one episode, one env step per action; the episode if the suite judges it a success, else None."""
    policy.reset(seed)
    obs = env.reset(episode_id, seed, images=images, privileged=policy.needs_privileged)
    instruction = obs.instruction
    states, actions, frames = [], [], {tag: [] for tag in obs.images}
    ended = False
    while not ended:
        for action in adapter.to_native(policy.act(obs)):
            states.append(obs.state)
            actions.append(action)
            for tag, img in obs.images.items():
                frames[tag].append(img)
            result = env.step_chunk(action[None], 1)  # the step budget is counted here
            ended = result.done or len(actions) >= env.task.max_steps
            if ended:
                break
            obs = result.observation
    if not env.episode_metrics()["success"]:
        return None
    return Episode(task=instruction, state=np.stack(states), action=np.stack(actions),
                   images={tag: np.stack(f) for tag, f in frames.items()})


def _read_failed(path: Path) -> set[tuple]:
    if not path.exists():
        return set()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]
    return {(r["suite"], r["task"], r["episode_id"]) for r in rows}


def _log_failed(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def collect(config: CollectConfig, progress: bool = True) -> dict:
    """Record up to `config.episodes` successful episodes per task; return counts {recorded, failed, ...}."""
    plan = []
    for suite in config.suites:
        check_task_indices(suite, config.tasks or (), config.env_options)
        tasks = list_tasks(suite, config.env_options)
        plan += [(suite, t) for t in tasks if config.tasks is None or t.index in config.tasks]
    tried: dict[tuple[str, int], list[int]] = {}  # named ids go to the tasks that have them (R2R: unique ids)
    if config.episode_ids:
        for suite in config.suites:
            own = [t for s, t in plan if s == suite]
            tried |= {(suite, i): ids for i, ids in episodes_by_task(own, None, config.episode_ids).items()}
        plan = [(s, t) for s, t in plan if (s, t.index) in tried]
    embodiments = {t.embodiment for _, t in plan}
    if len(embodiments) != 1:
        raise ValueError(f"one dataset holds one embodiment; these suites use {sorted(embodiments)}")
    spec = get_embodiment(embodiments.pop())
    out, failed_path = Path(config.out), Path(config.out) / FAILED_FILE
    writer = DatasetWriter(out, spec, image_size=config.image_size, flush_every=config.flush_every)
    done = {(x.get("suite"), x.get("task"), x.get("episode_id")) for x in writer.recorded_extras()}
    failed = _read_failed(failed_path)
    policy = make_policy(config.policy, spec, **config.policy_options)
    if policy.needs_images and not config.image_size:
        raise ValueError("the policy needs images: pass an --image-size > 0")
    adapter = ActionAdapter(spec, policy.norm_stats, config.replan_steps)
    env_options = {**config.env_options, **({"image_size": config.image_size} if config.image_size else {})}
    counts = {"recorded": 0, "failed": 0, "already_recorded": len(done), "tasks_short": 0}
    bar = tqdm(total=len(plan) * config.episodes, desc="successful episodes", unit="ep", disable=not progress,
               dynamic_ncols=True)
    with writer:
        for suite, task in plan:
            have = sum(1 for s, t, _ in done if (s, t) == (suite, task.index))
            bar.update(min(have, config.episodes))
            todo = [i for i in tried.get((suite, task.index), task.episode_ids)
                    if (suite, task.index, i) not in done and (suite, task.index, i) not in failed]
            env = None  # built on the first episode needed: a LIBERO env costs seconds, a finished task none
            try:
                for episode_id in todo:
                    if have >= config.episodes:
                        break
                    env = env or make_task_env(suite, task.index, **env_options)
                    seed = episode_seed(config.seed, suite, task.index, episode_id)
                    ep = record_episode(env, policy, adapter, episode_id, seed, images=config.image_size > 0)
                    ids = {"suite": suite, "task": task.index, "episode_id": episode_id, "seed": seed}
                    if ep is None:
                        _log_failed(failed_path, ids)
                        counts["failed"] += 1
                        continue
                    ep.extras = {**ids, "policy": config.policy}
                    writer.add(ep)
                    have, counts["recorded"] = have + 1, counts["recorded"] + 1
                    bar.update(1)
                    bar.set_postfix(failed=counts["failed"])
            finally:
                if env is not None:
                    env.close()
            counts["tasks_short"] += int(have < config.episodes)
    bar.close()
    return {**counts, "episodes_in_dataset": len(writer.episodes), "frames_in_dataset": writer.num_frames,
            "out": str(out)}
