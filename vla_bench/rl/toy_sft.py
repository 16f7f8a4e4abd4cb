"""A brief supervised warm start on the toy_reach micro-env: scripted demos -> flow-matching behaviour cloning.

It makes the SFT-like starting checkpoint that the RL pipeline is demonstrated and tested on where no simulator
checkpoint exists; `steps` sets how good it gets (a few hundred steps: partly successful, room for RL).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vla_bench.actions import NormStats, QuantileNormalizer, pad_actions
from vla_bench.embodiment import embodiment_prompt
from vla_bench.envs.toy import EMBODIMENT, ToyReachEnv, ToyScriptedPolicy
from vla_bench.policies.flow_vla.backbone import PrefixInputs
from vla_bench.policies.flow_vla.checkpoint import save_checkpoint
from vla_bench.policies.flow_vla.config import preset_config
from vla_bench.policies.flow_vla.model import FlowVLA


def collect_toy_demos(tasks: list[int], init_indices: range, replan_steps: int) -> dict[str, np.ndarray | list]:
    """Scripted chunks at every chunk boundary: states [M, S], native chunks [M, H, c], instructions [M]."""
    states, chunks, texts = [], [], []
    scripted = ToyScriptedPolicy()
    for task in tasks:
        env = ToyReachEnv("toy_reach", task)
        for init in init_indices:
            obs, steps = env.reset(init, seed=0, images=False), 0
            while obs is not None and steps < env.task.max_steps:
                native = scripted.act(obs).actions[:, :EMBODIMENT.action_dim]
                states.append(obs.state)
                chunks.append(native)
                texts.append(obs.instruction)
                result = env.step_chunk(native[:replan_steps], env.task.max_steps - steps)
                steps += result.steps
                obs = result.observation
    return {"states": np.stack(states), "chunks": np.stack(chunks), "instructions": texts}


def train_toy_sft(out: str | Path, tasks: list[int] = (0, 1), steps: int = 300, preset: str = "tiny-1m",
                  num_denoise_steps: int = 10, replan_steps: int = 4, demos_per_task: int = 20, batch_size: int = 64,
                  lr: float = 1e-3, seed: int = 0, save_at: tuple[int, ...] = ()) -> Path:
    """Behaviour-clone the scripted toy policy for `steps` Adam steps; save a checkpoint loadable by `vla-bench
    eval --policy <out>` and `vla-bench rl --init <out>`; `save_at` also saves <out>/step_<n> after step n."""
    torch.manual_seed(seed)
    demos = collect_toy_demos(list(tasks), range(demos_per_task), replan_steps)
    stats = NormStats(EMBODIMENT.name,
                      action=QuantileNormalizer.fit(demos["chunks"], binary=EMBODIMENT.binary_channels),
                      state=QuantileNormalizer.fit(demos["states"]))
    states = torch.from_numpy(stats.state.normalize(demos["states"]))
    padded = [pad_actions(stats.action.normalize(c)) for c in demos["chunks"]]
    actions = torch.from_numpy(np.stack([p[0] for p in padded]))
    mask = torch.from_numpy(np.stack([p[1] for p in padded]))
    prompts = [embodiment_prompt(EMBODIMENT, text) for text in demos["instructions"]]
    model = FlowVLA(preset_config(preset, num_steps=num_denoise_steps))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(prompts), (batch_size,), generator=rng)
        inputs = PrefixInputs([prompts[i] for i in idx.tolist()], states[idx])
        loss = model.loss(inputs, actions[idx], mask[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in save_at:
            save_checkpoint(model, Path(out) / f"step_{step}", stats)
    return save_checkpoint(model.eval(), out, stats)
