"""Flow matching (pi0 / RLinf convention: t = 1 is noise, t = 0 is data) and the Euler sampler.

x_t = t * eps + (1 - t) * a, target velocity v = eps - a, so x_0 = x_1 - v integrated from t = 1 down to 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from vla_bench.policies.flow_vla.config import FlowConfig

VelocityFn = Callable[[torch.Tensor, int], torch.Tensor]  # (x [B, H, K] at euler_timesteps[k], k) -> v [B, H, K]


def sample_time(n: int, config: FlowConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """Training times [n] in [t_min, 1]: Beta(alpha, beta) (pi0 favours noisy t) or uniform. Uses torch's global
    RNG (seed it with torch.manual_seed)."""
    if config.time_sampling == "uniform":
        u = torch.rand(n, device=device)
    else:
        beta = torch.distributions.Beta(torch.tensor(config.beta_alpha), torch.tensor(config.beta_beta))
        u = beta.sample((n,)).to(device)
    return config.t_min + (1.0 - config.t_min) * u


def interpolate(actions: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = t * noise + (1 - t) * actions, with t [B] broadcast over [B, H, K]."""
    t = t.reshape(-1, *([1] * (actions.ndim - 1)))
    return t * noise + (1.0 - t) * actions


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid entries only: padded channels and timesteps neither count nor get gradient."""
    m = mask.bool()
    if not m.any():
        raise ValueError("the mask has no valid entry")
    return (pred[m] - target[m]).square().mean()


def euler_timesteps(num_steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[num_steps + 1] times 1, 1 - 1/N, ..., 0."""
    return torch.linspace(1.0, 0.0, num_steps + 1, device=device)


@dataclass
class FlowChain:
    """A whole denoising chain, as PPO over flow policies needs it."""

    times: torch.Tensor  # [N + 1]: 1 = noise ... 0 = data
    xs: torch.Tensor  # [B, N + 1, H, K]: xs[:, 0] is the initial noise, xs[:, N] the sampled chunk
    velocities: torch.Tensor  # [B, N, H, K]: v(xs[:, k], times[k]); xs[:, k + 1] = xs[:, k] - delta * velocities[:, k]

    @property
    def actions(self) -> torch.Tensor:
        return self.xs[:, -1]


def euler_sample(velocity: VelocityFn, noise: torch.Tensor, num_steps: int,
                 return_chain: bool = False) -> torch.Tensor | FlowChain:
    """Integrate dx/dt = v from t = 1 (x = noise) to t = 0 in `num_steps` equal steps: x <- x - delta * v.
    `velocity` gets the step index k; step k is at time `euler_timesteps(num_steps)[k]`."""
    times = euler_timesteps(num_steps, noise.device)
    x, xs, vs = noise, [noise], []
    for k in range(num_steps):
        v = velocity(x, k)
        x = x - (times[k] - times[k + 1]) * v
        if return_chain:
            xs.append(x)
            vs.append(v)
    if not return_chain:
        return x
    return FlowChain(times=times, xs=torch.stack(xs, dim=1), velocities=torch.stack(vs, dim=1))
