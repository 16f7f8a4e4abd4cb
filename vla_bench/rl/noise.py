"""Noise-injected Euler transitions of the flow sampler (t = 1 noise -> t = 0 data) and their Gaussian log-probs.

For a step at time t with size delta and velocity v: x0_hat = x_t - t*v, x1_hat = x_t + (1-t)*v.
- ODE:        mean = x_t - delta*v, std = 0.
- Flow-SDE:   sigma = a*sqrt(t/(1-t)) (at t = 1 the first t < 1 is used in the denominator),
              mean = x0_hat*(1-t+delta) + x1_hat*(t-delta - sigma^2*delta/(2t)), std = sqrt(delta)*sigma.
- Flow-Noise: ODE mean, std from a learned head bounded by tanh to [s_min, s_max].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vla_bench.policies.flow_vla.dit import sinusoidal_embedding

MODES = ("ode", "flow_sde", "flow_noise")
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(x; mean, std^2)."""
    return -((x - mean) ** 2) / (2.0 * std**2) - torch.log(std) - LOG_SQRT_2PI


def gaussian_entropy(std: torch.Tensor) -> torch.Tensor:
    """Elementwise entropy of N(., std^2): 0.5 * log(2 pi e std^2)."""
    return 0.5 + LOG_SQRT_2PI + torch.log(std)


def masked_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Sum of log N(x; mean, std^2) over the entries where `valid` is True, per sample: [B, ...] -> [B].

    Invalid entries are replaced before the log-prob is taken (not multiplied by zero afterwards), so whatever they
    hold (a zero std, a huge value) neither changes the sum nor sends NaN into the gradient."""
    safe_std = torch.where(valid, std, torch.ones_like(std))
    lp = gaussian_log_prob(torch.where(valid, x, mean), mean, safe_std)
    return torch.where(valid, lp, torch.zeros_like(lp)).flatten(1).sum(-1)


def ode_mean(x_t: torch.Tensor, v: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The deterministic Euler step x_t - delta * v; delta broadcasts from [B] or a scalar."""
    return x_t - _bcast(delta, x_t) * v


def sde_sigma(times: torch.Tensor, a: float) -> torch.Tensor:
    """sigma_k = a * sqrt(t_k / (1 - t_k)) for the N step-start times `times[:-1]`; at t = 1 the denominator uses the
    first time below 1, so sigma stays finite. [N + 1] -> [N]."""
    t = times[:-1]
    first_below_one = times[times < 1.0][0]
    denom = torch.where(t >= 1.0, 1.0 - first_below_one, 1.0 - t)
    return a * torch.sqrt(t / denom)


def sde_moments(x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor, delta: torch.Tensor, sigma: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow-SDE transition mean and std (formulas in the module docstring); t, delta, sigma are [B] or scalars."""
    t, delta, sigma = _bcast(t, x_t), _bcast(delta, x_t), _bcast(sigma, x_t)
    x0_hat, x1_hat = x_t - t * v, x_t + (1.0 - t) * v
    mean = x0_hat * (1.0 - t + delta) + x1_hat * (t - delta - sigma**2 * delta / (2.0 * t))
    return mean, (torch.sqrt(delta) * sigma).expand_as(mean)


def _bcast(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return value.reshape(-1, *([1] * (like.ndim - 1))) if value.ndim else value


class NoiseHead(nn.Module):
    """Flow-Noise: per-channel std of one transition from the pooled prefix and the flow time, in [s_min, s_max].

    Its last layer starts at zero, so the initial std is the middle of the range for every input."""

    def __init__(self, width: int, action_dim: int, s_min: float, s_max: float, hidden: int = 128):
        super().__init__()
        if not 0.0 < s_min < s_max:
            raise ValueError(f"0 < s_min < s_max is required, got {s_min}, {s_max}")
        self.width, self.s_min, self.s_max = width, s_min, s_max
        self.net = nn.Sequential(nn.Linear(2 * width, hidden), nn.SiLU(), nn.Linear(hidden, action_dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, pooled: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """pooled [B, D], t [B] -> std [B, 1, K] (shared by the chunk's timesteps)."""
        raw = self.net(torch.cat([pooled, sinusoidal_embedding(t, self.width)], dim=-1))
        unit = 0.5 * (torch.tanh(raw) + 1.0)
        return (self.s_min + (self.s_max - self.s_min) * unit)[:, None, :]
