"""The critic: an MLP on the pooled prefix features (the expert's projected prefix tokens, mean over valid ones)."""

from __future__ import annotations

import torch
from torch import nn

from vla_bench.policies.flow_vla.dit import PrefixCache


def pooled_prefix(cache: PrefixCache) -> torch.Tensor:
    """Mean of the projected prefix tokens over the valid ones: [B, L, D] -> [B, D]."""
    valid = cache.valid.to(cache.tokens.dtype)[..., None]
    return (cache.tokens * valid).sum(1) / valid.sum(1).clamp_min(1.0)


class ValueHead(nn.Module):
    """V(observation) from pooled prefix features; the last layer starts at zero (V = 0 before training)."""

    def __init__(self, width: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """[B, D] -> [B]."""
        return self.net(pooled).squeeze(-1)
