"""The RL agent: a FlowVLA plus a value head (and, for Flow-Noise, a noise head). It samples a whole denoising chain
with noise injected into chosen Euler transitions, and re-evaluates a stored chain's log-probability.

`sample` and `evaluate` build each transition with the same functions (vla_bench.rl.noise), so with unchanged
parameters the recomputed log-probability equals the stored one and the first PPO ratio is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vla_bench.policies.flow_vla.backbone import PrefixInputs
from vla_bench.policies.flow_vla.flow import euler_timesteps
from vla_bench.policies.flow_vla.model import FlowVLA
from vla_bench.rl.noise import (MODES, NoiseHead, gaussian_entropy, masked_log_prob, ode_mean, sde_moments,
                                sde_sigma)
from vla_bench.rl.value import ValueHead, pooled_prefix


@dataclass
class ChunkSample:
    """One sampled chunk per batch element, with what PPO must store."""

    chain: torch.Tensor  # [B, N + 1, H, K]: chain[:, 0] initial noise ... chain[:, N] the chunk
    stochastic: torch.Tensor  # bool [B, N]: transitions k that were sampled from a Gaussian (carry log-prob)
    log_prob: torch.Tensor  # [B]
    value: torch.Tensor  # [B]

    @property
    def actions(self) -> torch.Tensor:
        return self.chain[:, -1]


class ChunkAgent(nn.Module):
    """Actor (FlowVLA [+ NoiseHead]) and critic (ValueHead) over action chunks."""

    def __init__(self, model: FlowVLA, mode: str = "flow_sde", replan_steps: int = 5, num_steps: int | None = None,
                 sde_a: float = 0.5, s_min: float = 0.05, s_max: float = 0.3, value_hidden: int = 256,
                 value_trunk_grad: bool = False):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown noise mode {mode!r}; valid: {', '.join(MODES)}")
        self.model, self.mode, self.replan_steps = model, mode, replan_steps
        self.num_steps = num_steps or model.config.flow.num_steps
        self.sde_a, self.value_trunk_grad = sde_a, value_trunk_grad
        width = model.expert.width
        self.value_head = ValueHead(width, value_hidden)
        self.noise_head = NoiseHead(width, model.config.action_dim, s_min, s_max) if mode == "flow_noise" else None
        self.register_buffer("times", euler_timesteps(self.num_steps), persistent=False)
        self.register_buffer("sigmas", sde_sigma(self.times, sde_a), persistent=False)

    # -- pieces -------------------------------------------------------------------------------------------------
    def executed_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """The entries that reach the env: valid channels of the first `replan_steps` timesteps. [B, H, K]."""
        h = torch.arange(mask.shape[1], device=mask.device)
        return mask & (h < self.replan_steps)[None, :, None]

    def _features(self, inputs: PrefixInputs):
        cache = self.model.encode_prefix(inputs)
        return cache, pooled_prefix(cache)

    def _value(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.value_head(pooled if self.value_trunk_grad else pooled.detach())

    def _noise_std(self, pooled: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        # The noise head reads the prefix without sending gradient into it: the trunk learns from the mean only.
        return self.noise_head(pooled.detach(), self.times[k])

    def _transition(self, x: torch.Tensor, v: torch.Tensor, k: torch.Tensor, pooled: torch.Tensor):
        """Mean and std of transition k ([B] step indices) under this agent's noise mode."""
        t, delta = self.times[k], self.times[k] - self.times[k + 1]
        if self.mode == "flow_sde":
            return sde_moments(x, v, t, delta, self.sigmas[k])
        mean = ode_mean(x, v, delta)
        if self.mode == "flow_noise":
            return mean, self._noise_std(pooled, k).expand_as(mean)
        return mean, torch.zeros_like(mean)

    def _stochastic_steps(self, batch: int, generator: torch.Generator | None, device) -> torch.Tensor:
        n = self.num_steps
        if self.mode == "flow_sde":  # piRL: one random denoising index per chunk
            k = torch.randint(0, n, (batch,), generator=generator, device=device)
            return torch.nn.functional.one_hot(k, n).bool()
        return torch.full((batch, n), self.mode == "flow_noise", dtype=torch.bool, device=device)

    # -- rollout ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def value(self, inputs: PrefixInputs) -> torch.Tensor:
        return self._value(self._features(inputs)[1])

    @torch.no_grad()
    def sample(self, inputs: PrefixInputs, mask: torch.Tensor, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None) -> ChunkSample:
        """Sample a chain from `noise` (drawn from `generator` if not given); masked entries stay 0 throughout."""
        cache, pooled = self._features(inputs)
        b, device = mask.shape[0], mask.device
        if noise is None:
            noise = torch.randn(mask.shape, generator=generator, device=device)
        stochastic = self._stochastic_steps(b, generator, device)
        valid = self.executed_mask(mask)
        x, xs, log_prob = torch.where(mask, noise, 0.0), [], torch.zeros(b, device=device)
        xs.append(x)
        for k in range(self.num_steps):
            ks = torch.full((b,), k, dtype=torch.long, device=device)
            v = self.model.velocity(x, self.times[k], cache, mask)
            mean, std = self._transition(x, v, ks, pooled)
            eps = torch.randn(mask.shape, generator=generator, device=device)
            noisy = stochastic[:, k, None, None] & mask
            x_next = torch.where(noisy, mean + std * eps, torch.where(mask, ode_mean(x, v, self.times[k] -
                                                                                      self.times[k + 1]), 0.0))
            if self.mode != "ode" and (self.mode != "flow_sde" or self.sde_a > 0):
                log_prob += masked_log_prob(x_next, mean, std, valid & stochastic[:, k, None, None])
            x = x_next
            xs.append(x)
        return ChunkSample(chain=torch.stack(xs, 1), stochastic=stochastic, log_prob=log_prob,
                           value=self._value(pooled))

    # -- update -------------------------------------------------------------------------------------------------
    def evaluate(self, inputs: PrefixInputs, chain: torch.Tensor, stochastic: torch.Tensor, mask: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Differentiable (log_prob [B], value [B], entropy [B]) of stored chains under the current parameters.

        Only the stored stochastic transitions are recomputed (one model call per chunk for flow_sde, N for
        flow_noise); entropy is the mean per-entry Gaussian entropy of the noise head (0 for flow_sde)."""
        cache, pooled = self._features(inputs)
        b, device = chain.shape[0], chain.device
        valid = self.executed_mask(mask)
        log_prob, entropy = torch.zeros(b, device=device), torch.zeros(b, device=device)
        rows = torch.arange(b, device=device)
        if self.mode == "flow_sde":
            k, has_noise = stochastic.float().argmax(1), stochastic.any(1)
            x = chain[rows, k]
            mean, std = self._transition(x, self.model.velocity(x, self.times[k], cache, mask), k, pooled)
            log_prob = masked_log_prob(chain[rows, k + 1], mean, std, valid & has_noise[:, None, None])
        elif self.mode == "flow_noise":
            counted = valid.flatten(1).sum(-1).clamp_min(1)
            for k in range(self.num_steps):
                ks = torch.full((b,), k, dtype=torch.long, device=device)
                x = chain[:, k]
                mean, std = self._transition(x, self.model.velocity(x, self.times[k], cache, mask), ks, pooled)
                step_valid = valid & stochastic[:, k, None, None]
                log_prob = log_prob + masked_log_prob(chain[:, k + 1], mean, std, step_valid)
                ent = torch.where(step_valid, gaussian_entropy(std), 0.0).flatten(1).sum(-1)
                entropy = entropy + ent / counted / self.num_steps
        return log_prob, self._value(pooled), entropy

    # -- parameter groups ---------------------------------------------------------------------------------------
    def actor_parameters(self, expert_only: bool = False) -> list[nn.Parameter]:
        """The actor's trainable parameters: the whole FlowVLA (or its action expert only) and the noise head."""
        params = list((self.model.expert if expert_only else self.model).parameters())
        if self.noise_head is not None:
            params += list(self.noise_head.parameters())
        return params

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.value_head.parameters())
