"""The PPO loop: rollout -> GAE -> update -> log -> checkpoint, one iteration at a time; resumes after a kill.

Run directory (`RLConfig.out`):
  policy/          the latest checkpoint (config.json, model.safetensors, norm_stats.json: `vla-bench eval --policy
                   <out>/policy`), its lineage.json (parent: the --init checkpoint's lineage) and rl_state.pt
                   (heads, optimizer, iteration, counters, RNG) written with it
  rl_config.json   the run's config; a resumed run must match it (except the budget and speed knobs)
  metrics.csv      one row per iteration (+ TensorBoard events when available)
A checkpoint is written to policy.tmp/ and swapped in by renames, so a kill at any moment leaves a whole one.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vla_bench.adapter import ActionAdapter
from vla_bench.embodiment import get_embodiment
from vla_bench.envs.registry import list_tasks
from vla_bench.lineage import make_lineage, write_lineage
from vla_bench.metric_log import MetricLogger
from vla_bench.policies.flow_vla.checkpoint import ALL_STATS_FILE, load_checkpoint, save_checkpoint
from vla_bench.policies.flow_vla.policy import FlowVLAPolicy
from vla_bench.rl.agent import ChunkAgent
from vla_bench.rl.buffer import RolloutBuffer, compute_gae
from vla_bench.rl.config import RLConfig
from vla_bench.rl.ppo import ppo_update
from vla_bench.rl.rollout import collect_rollout
from vla_bench.rl.vec_env import make_task_envs

POLICY_DIR, STATE_FILE, CONFIG_FILE = "policy", "rl_state.pt", "rl_config.json"
METRICS = (
    "charts/success", "charts/episodic_return", "charts/episode_length", "charts/episodes", "charts/env_steps",
    "charts/env_steps_per_s", "charts/rollout_seconds", "charts/update_seconds", "charts/lr_actor",
    "charts/noise_std", "losses/policy", "losses/value", "losses/entropy", "losses/old_approx_kl",
    "losses/approx_kl", "losses/clipfrac", "losses/explained_variance", "losses/epochs",
)


@dataclass
class RunState:
    iteration: int = 0
    env_steps: int = 0
    episodes_done: list[int] | None = None  # per env slot, so init states continue in order after a resume
    generator_state: torch.Tensor | None = None


def latest_checkpoint(out: Path) -> Path | None:
    """The run's last whole checkpoint (policy/, or policy.prev/ if a kill hit between the two renames)."""
    for name in (POLICY_DIR, POLICY_DIR + ".prev"):
        if (out / name / STATE_FILE).is_file():
            return out / name
    return None


def save_iteration(out: Path, agent: ChunkAgent, ckpt, optimizer, state: RunState, config: RLConfig) -> Path:
    tmp, final, prev = out / (POLICY_DIR + ".tmp"), out / POLICY_DIR, out / (POLICY_DIR + ".prev")
    shutil.rmtree(tmp, ignore_errors=True)
    save_checkpoint(agent.model, tmp, ckpt.norm_stats, ckpt.embodiments)
    if (Path(config.init) / ALL_STATS_FILE).is_file():  # the other embodiments' stats: still evaluable on them
        shutil.copy(Path(config.init) / ALL_STATS_FILE, tmp / ALL_STATS_FILE)
    done = state.env_steps >= config.total_env_steps
    write_lineage(tmp, make_lineage(
        "rl", final, data={"suite": config.suite, "tasks": config.tasks, "env_options": config.env_kwargs()},
        config=config.to_dict(), parent_path=config.init,
        progress={"iteration": state.iteration, "env_steps": state.env_steps,
                  "total_env_steps": config.total_env_steps, "complete": done},
        label=config.extra.get("label"), pipeline=config.extra.get("pipeline")))
    heads = {k: v for k, v in agent.state_dict().items() if not k.startswith("model.")}
    torch.save({"heads": heads, "optimizer": optimizer.state_dict(), "run": state.__dict__}, tmp / STATE_FILE)
    shutil.rmtree(prev, ignore_errors=True)
    if final.exists():
        final.rename(prev)
    tmp.rename(final)
    shutil.rmtree(prev, ignore_errors=True)
    return final


def _check_resume(out: Path, config: RLConfig) -> None:
    path = out / CONFIG_FILE
    if path.is_file():
        problems = config.resume_mismatch(json.loads(path.read_text()))
        if problems:
            raise ValueError(f"{path} was written by a different run config; cannot resume it: {'; '.join(problems)}")


def _write_config(out: Path, config: RLConfig) -> None:
    """Written once the starting checkpoint has loaded: a command refused for a bad --init leaves nothing behind."""
    (out / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=1))


def build_agent(config: RLConfig, start: str | Path):
    """The checkpoint at `start`, wrapped as an RL agent, plus the eval-style policy used for inputs and masks."""
    tasks = list_tasks(config.suite, config.env_options)
    spec = get_embodiment(tasks[config.tasks[0]].embodiment)
    ckpt = load_checkpoint(start, spec, device=config.device)
    agent = ChunkAgent(ckpt.model, mode=config.noise, replan_steps=config.replan_steps,
                       num_steps=config.num_denoise_steps, sde_a=config.sde_a, s_min=config.noise_min,
                       s_max=config.noise_max, value_trunk_grad=config.value_trunk_grad).to(config.device)
    # PPO tunes the policy for this many Euler steps: the saved checkpoint must evaluate with the same chain.
    ckpt.model.config.flow.num_steps = agent.num_steps
    policy = FlowVLAPolicy(ckpt.model, spec, ckpt.norm_stats, num_steps=agent.num_steps)
    return agent, policy, ckpt


def make_optimizer(agent: ChunkAgent, config: RLConfig) -> tuple[torch.optim.Optimizer, list]:
    """Adam with separate actor and critic learning rates; with `expert_only` the backbone is frozen."""
    if config.expert_only:
        agent.model.backbone.requires_grad_(False)
    actor = [p for p in agent.actor_parameters(config.expert_only) if p.requires_grad]
    critic = agent.critic_parameters()
    groups = [{"params": actor, "lr": config.lr_actor, "name": "actor"},
              {"params": critic, "lr": config.lr_critic, "name": "critic"}]
    return torch.optim.Adam(groups, eps=1e-5), actor + critic


def _episode_metrics(episodes: list[dict], gamma: float, replan_steps: int) -> dict[str, float]:
    if not episodes:
        return {"charts/episodes": 0.0}
    success = np.array([e["success"] for e in episodes], dtype=float)
    chunks = np.ceil(np.array([e["length"] for e in episodes]) / replan_steps)
    return {"charts/success": float(success.mean()), "charts/episodes": float(len(episodes)),
            "charts/episodic_return": float((success * gamma ** (chunks - 1)).mean()),
            "charts/episode_length": float(np.mean([e["length"] for e in episodes]))}


def train(config: RLConfig) -> dict:
    """Run (or resume) PPO until the env-step budget is spent; returns the last iteration's metrics."""
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    _check_resume(out, config)
    resume_from = latest_checkpoint(out)
    agent, policy, ckpt = build_agent(config, resume_from or config.init)
    out.mkdir(parents=True, exist_ok=True)
    _write_config(out, config)
    optimizer, params = make_optimizer(agent, config)
    state = RunState()
    generator = torch.Generator().manual_seed(config.seed)
    if resume_from is not None:
        saved = torch.load(resume_from / STATE_FILE, map_location=config.device, weights_only=False)
        agent.load_state_dict({**agent.state_dict(), **saved["heads"]})
        optimizer.load_state_dict(saved["optimizer"])
        state = RunState(**saved["run"])
        generator.set_state(state.generator_state)
    adapter = ActionAdapter(policy.embodiment, policy.norm_stats, config.replan_steps)
    slot_tasks = [t for t in config.tasks for _ in range(config.envs_per_task)]
    slots = [dict(suite=config.suite, task_index=task, seed=config.seed, slot=i, images=policy.needs_images,
                  env_options=config.env_kwargs(),
                  episodes_done=state.episodes_done[i] if state.episodes_done else 0)
             for i, task in enumerate(slot_tasks)]
    envs = make_task_envs(slots, workers=config.workers, backend=config.backend, ray_address=config.ray_address)
    logger = MetricLogger(out, METRICS, step_name="iteration", resume_step=state.iteration,
                          tensorboard=config.tensorboard)
    bar = tqdm(total=config.total_env_steps, initial=min(state.env_steps, config.total_env_steps), unit="step",
               desc="rl", disable=not config.progress, dynamic_ncols=True)
    metrics: dict[str, float] = {}
    try:
        observations = envs.reset()
        mask = policy.mask[0]
        while state.env_steps < config.total_env_steps and (config.max_iterations is None
                                                            or state.iteration < config.max_iterations):
            warmup = state.iteration < config.critic_warmup_iterations
            optimizer.param_groups[0]["lr"] = 0.0 if warmup else config.lr_actor
            buffer = RolloutBuffer(config.rollout_steps, len(envs), (agent.num_steps + 1, *mask.shape),
                                   agent.num_steps, policy.embodiment.state_dim, mask,
                                   task_ids=[f"{config.suite}/{t}" for t in slot_tasks])
            observations, next_value, rollout = collect_rollout(agent, policy, adapter, envs, buffer, observations,
                                                                generator)
            advantages, returns = compute_gae(buffer.rewards, buffer.values, buffer.terminated, buffer.truncated,
                                              buffer.final_values, next_value, config.gamma, config.gae_lambda)
            t_update = time.perf_counter()
            metrics = ppo_update(agent, optimizer, buffer, advantages, returns, config, generator, params,
                                 config.device)
            update_seconds = time.perf_counter() - t_update
            state.iteration += 1
            state.env_steps += rollout.env_steps
            state.episodes_done, state.generator_state = envs.episodes_done(), generator.get_state()
            metrics.update(_episode_metrics(rollout.episodes, config.gamma, config.replan_steps))
            metrics.update({"charts/env_steps": float(state.env_steps),
                            "charts/env_steps_per_s": rollout.env_steps / (rollout.seconds + update_seconds),
                            "charts/rollout_seconds": rollout.seconds, "charts/update_seconds": update_seconds,
                            "charts/lr_actor": optimizer.param_groups[0]["lr"],
                            "charts/noise_std": _noise_std(agent, buffer)})
            logger.log(state.iteration, metrics)
            save_iteration(out, agent, ckpt, optimizer, state, config)
            bar.update(rollout.env_steps)
            bar.set_postfix(it=state.iteration, success=f"{metrics.get('charts/success', float('nan')):.2f}",
                            kl=f"{metrics['losses/approx_kl']:.3f}")
    finally:
        bar.close()
        logger.close()
        envs.close()
    return {"iteration": state.iteration, "env_steps": state.env_steps, **metrics}


@torch.no_grad()
def _noise_std(agent: ChunkAgent, buffer: RolloutBuffer) -> float:
    """Mean std of the stochastic transitions (flow_sde: sqrt(delta) * sigma of the chosen steps; flow_noise: the
    noise head's output on a few stored steps)."""
    if agent.mode == "flow_sde":
        delta = agent.times[:-1] - agent.times[1:]
        per_step = torch.sqrt(delta) * agent.sigmas
        return float(per_step[buffer.flat("stochastic").float().argmax(1)].mean())
    idx = torch.arange(min(8, buffer.steps * buffer.envs))
    pooled = agent._features(buffer.inputs(idx, agent.times.device))[1]
    stds = torch.stack([agent._noise_std(pooled, torch.full((len(idx),), k, dtype=torch.long))
                        for k in range(agent.num_steps)])
    return float(stds[..., buffer.mask[0]].mean())
