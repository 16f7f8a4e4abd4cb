"""Collect one iteration of chunk steps: observations -> batched chain sampling -> native actions -> envs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from vla_bench.adapter import ActionAdapter, ActionChunk, Observation
from vla_bench.policies.flow_vla.backbone import PrefixInputs
from vla_bench.policies.flow_vla.policy import FlowVLAPolicy
from vla_bench.rl.agent import ChunkAgent
from vla_bench.rl.buffer import RolloutBuffer


def collate(inputs: list[PrefixInputs]) -> PrefixInputs:
    """Concatenate batches of model inputs."""
    images = {tag: torch.cat([i.images[tag] for i in inputs]) for tag in inputs[0].images}
    return PrefixInputs([p for i in inputs for p in i.prompts], torch.cat([i.state for i in inputs]), images)


def observations_to_inputs(policy: FlowVLAPolicy, observations: list[Observation]) -> PrefixInputs:
    """The model inputs of a batch of observations (prompt, normalized state, images if the model uses them)."""
    return collate([policy.prefix_inputs(o) for o in observations])


@dataclass
class RolloutStats:
    episodes: list[dict] = field(default_factory=list)  # finished episodes: success, length, task, init
    env_steps: int = 0  # actions executed
    seconds: float = 0.0
    policy_seconds: float = 0.0  # time in the model (sampling and values)


def collect_rollout(agent: ChunkAgent, policy: FlowVLAPolicy, adapter: ActionAdapter, envs, buffer: RolloutBuffer,
                    observations: list[Observation], generator: torch.Generator
                    ) -> tuple[list[Observation], torch.Tensor, RolloutStats]:
    """Fill `buffer` with T chunk steps from every env; return the next observations, their values [E] (for the
    bootstrap after the last step) and the stats. Values of truncated episodes' final observations are computed
    here, while the observation is at hand."""
    stats, t0 = RolloutStats(), time.perf_counter()
    mask = policy.mask.expand(len(envs), -1, -1)
    for t in range(buffer.steps):
        tp = time.perf_counter()
        inputs = observations_to_inputs(policy, observations)
        sample = agent.sample(inputs, mask, generator)
        stats.policy_seconds += time.perf_counter() - tp
        chunks = sample.actions.cpu().numpy()
        native = [adapter.to_native(ActionChunk(actions=c, mask=policy.mask[0].cpu().numpy())) for c in chunks]
        step = envs.step(native)
        final_values = torch.zeros(len(envs))
        cut = [i for i, o in enumerate(step.final_observations) if o is not None]
        if cut:
            final_inputs = observations_to_inputs(policy, [step.final_observations[i] for i in cut])
            final_values[cut] = agent.value(final_inputs).cpu()
        buffer.add(t, inputs, sample, step.rewards, step.terminated, step.truncated, final_values)
        stats.env_steps += step.env_steps
        stats.episodes += step.episodes
        observations = step.observations
    tp = time.perf_counter()
    next_value = agent.value(observations_to_inputs(policy, observations)).cpu()
    stats.policy_seconds += time.perf_counter() - tp
    stats.seconds = time.perf_counter() - t0
    return observations, next_value, stats
