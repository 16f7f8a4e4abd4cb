"""The flow-matching VLA: backbone -> prefix -> DiT action expert -> velocity; loss and sampler."""

from __future__ import annotations

import torch
from torch import nn

from vla_bench.actions import channel_mask
from vla_bench.embodiment import EmbodimentSpec
from vla_bench.policies.flow_vla.backbone import PrefixInputs, build_backbone
from vla_bench.policies.flow_vla.config import VLAConfig
from vla_bench.policies.flow_vla.dit import ActionExpert, PrefixCache
from vla_bench.policies.flow_vla.flow import (FlowChain, euler_sample, euler_timesteps, interpolate, masked_mse,
                                              sample_time)


class FlowVLA(nn.Module):
    """Backbone + action expert. Actions are [B, H, K] in the normalized K-wide space, masks bool [B, H, K]."""

    def __init__(self, config: VLAConfig, pretrained: bool = True):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, pretrained=pretrained)
        self.expert = ActionExpert(config.expert, self.backbone.width, config.action_dim)

    def check_embodiment(self, spec: EmbodimentSpec, chunk_size: int | None = None) -> None:
        """Raise ValueError if the model cannot act for `spec` (too many channels, too long a chunk or state)."""
        h = chunk_size or spec.chunk_size
        problems = []
        if spec.action_dim > self.config.action_dim:
            problems.append(f"{spec.action_dim} action channels > K={self.config.action_dim}")
        if h > self.config.expert.max_horizon:
            problems.append(f"chunk size {h} > max_horizon={self.config.expert.max_horizon}")
        if spec.state_dim > self.backbone.state_dim:
            problems.append(f"state of {spec.state_dim} dims > the backbone's state_dim={self.backbone.state_dim}")
        if problems:
            raise ValueError(f"the model cannot act for embodiment {spec.name}: {'; '.join(problems)}")

    def action_mask(self, spec: EmbodimentSpec, chunk_size: int | None = None, batch: int = 1) -> torch.Tensor:
        """bool [batch, H, K]: every timestep, the embodiment's c channels."""
        mask = channel_mask(chunk_size or spec.chunk_size, spec.action_dim, self.config.action_dim)
        return torch.from_numpy(mask).expand(batch, -1, -1).to(self.expert.action_pos.device)

    def encode_prefix(self, inputs: PrefixInputs, kv: bool = True) -> PrefixCache:
        """Backbone + the expert's prefix stream (keys/values for every block unless `kv=False`), once per chunk."""
        prefix, valid = self.backbone.encode(inputs)
        return self.expert.cache_prefix(prefix, valid, kv=kv)

    def velocity(self, x_t: torch.Tensor, t: torch.Tensor, cache: PrefixCache, mask: torch.Tensor) -> torch.Tensor:
        """v(x_t, t) [B, H, K] with the cached prefix, t [B] or scalar: one Euler step's model call (differentiable,
        for PPO)."""
        t = torch.as_tensor(t, dtype=torch.float32, device=x_t.device).reshape(-1).expand(x_t.shape[0])
        return self.expert.velocity(x_t, self.expert.condition(t), cache, mask)

    def loss(self, inputs: PrefixInputs, actions: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor | None = None,
             time: torch.Tensor | None = None) -> torch.Tensor:
        """Masked flow-matching MSE between v(x_t, t) and eps - a. Noise and time are drawn unless given."""
        noise = torch.randn_like(actions) if noise is None else noise
        time = sample_time(actions.shape[0], self.config.flow, actions.device) if time is None else time
        v = self.velocity(interpolate(actions, noise, time), time, self.encode_prefix(inputs), mask)
        return masked_mse(v, noise - actions, mask)

    def sample(self, inputs: PrefixInputs, mask: torch.Tensor, noise: torch.Tensor | None = None,
               num_steps: int | None = None, generator: torch.Generator | None = None, use_cache: bool = True,
               return_chain: bool = False) -> torch.Tensor | FlowChain:
        """Euler-integrate from noise (given, or drawn from `generator`) at t = 1 to a chunk at t = 0.

        Returns the chunk [B, H, K] (zero on masked entries), or with `return_chain` the whole `FlowChain`.
        `use_cache=False` recomputes the prefix stream at every step (for measurement and tests)."""
        cache = self.encode_prefix(inputs, kv=use_cache)
        if noise is None:
            noise = torch.randn(mask.shape, generator=generator, device=mask.device)
        noise = torch.where(mask, noise, 0.0)
        n, b = num_steps or self.config.flow.num_steps, mask.shape[0]
        # Every step's time is known up front, so all AdaLN modulations come from one batched call.
        conds = self.expert.condition(euler_timesteps(n, mask.device)[:-1].repeat_interleave(b)).split(b)
        step = self.expert.velocity if use_cache else self.expert.velocity_uncached
        return euler_sample(lambda x, k: step(x, conds[k], cache, mask), noise, n, return_chain=return_chain)
