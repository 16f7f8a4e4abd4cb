"""The flow VLA as a `Policy`: Observation -> prompt + normalized state (+ images) -> sampled chunk -> ActionChunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vla_bench.actions import NormStats
from vla_bench.adapter import ActionChunk, Observation
from vla_bench.embodiment import EmbodimentSpec, embodiment_prompt, get_embodiment
from vla_bench.policies.flow_vla.backbone import PrefixInputs
from vla_bench.policies.flow_vla.checkpoint import load_checkpoint
from vla_bench.policies.flow_vla.model import FlowVLA


class FlowVLAPolicy:
    """Samples one chunk per observation; noise comes from a generator seeded by `reset`, so episodes reproduce."""

    needs_privileged = False

    def __init__(self, model: FlowVLA, embodiment: EmbodimentSpec, norm_stats: NormStats | None = None,
                 num_steps: int | None = None, chunk_size: int | None = None, use_prefix_cache: bool = True,
                 seed: int = 0):
        model.check_embodiment(embodiment, chunk_size)
        if norm_stats is not None and norm_stats.embodiment != embodiment.name:
            raise ValueError(f"norm stats are for {norm_stats.embodiment!r}, the policy acts for {embodiment.name!r}")
        self.model = model.eval()
        self.embodiment, self.norm_stats = embodiment, norm_stats
        self.needs_images = model.config.use_images
        self.num_steps = num_steps or model.config.flow.num_steps
        self.chunk_size = chunk_size or embodiment.chunk_size
        self.use_prefix_cache = use_prefix_cache
        self.device = next(model.parameters()).device
        self.mask = model.action_mask(embodiment, self.chunk_size)
        self.reset(seed)

    def reset(self, seed: int) -> None:
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def prefix_inputs(self, obs: Observation) -> PrefixInputs:
        """A batch of one: the embodiment prompt, the normalized state and, if the model uses them, the images in the
        embodiment's view order."""
        if obs.embodiment.name != self.embodiment.name:
            raise ValueError(f"observation of embodiment {obs.embodiment.name!r}, policy built for "
                             f"{self.embodiment.name!r}")
        state = np.asarray(obs.state, dtype=np.float32)
        if self.norm_stats is not None and self.norm_stats.state is not None:
            state = self.norm_stats.state.normalize(state)
        images = {}
        if self.needs_images:
            missing = [t for t in self.embodiment.view_tags if t not in obs.images]
            if missing:
                raise ValueError(f"observation lacks views {missing}; it has {sorted(obs.images)}")
            images = {t: torch.from_numpy(np.ascontiguousarray(obs.images[t]))[None] for t in self.embodiment.view_tags}
        prompt = embodiment_prompt(obs.embodiment, obs.instruction, self.chunk_size)
        return PrefixInputs([prompt], torch.from_numpy(state)[None], images).to(self.device)

    @torch.inference_mode()
    def act(self, obs: Observation) -> ActionChunk:
        chunk = self.model.sample(self.prefix_inputs(obs), self.mask, num_steps=self.num_steps,
                                  generator=self.generator, use_cache=self.use_prefix_cache)
        return ActionChunk(actions=chunk[0].float().cpu().numpy(), mask=self.mask[0].cpu().numpy())


def load_policy(path: str | Path, embodiment: EmbodimentSpec | str, device: str = "cpu", **options) -> FlowVLAPolicy:
    """Load a checkpoint directory as a policy for `embodiment` (what `vla-bench eval --policy <dir>` calls).

    Options: num_steps, chunk_size, use_prefix_cache, seed (see `FlowVLAPolicy`), device."""
    spec = get_embodiment(embodiment) if isinstance(embodiment, str) else embodiment
    ckpt = load_checkpoint(path, spec, device=device)
    return FlowVLAPolicy(ckpt.model, spec, ckpt.norm_stats, **options)
