"""The action expert: a DiT with joint self-attention over [projected prefix ; H action tokens].

Two streams share each attention: the prefix stream (plain pre-LayerNorm, no time input) and the action stream
(AdaLN-Zero on the flow time t). Prefix queries see only prefix keys, so the prefix stream does not depend on the
noisy actions or on t: its keys/values are computed once per chunk (`PrefixCache`) and reused at every Euler step.
`velocity_uncached` runs the same blocks on the concatenated sequence with a block mask; both paths agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vla_bench.policies.flow_vla.config import ExpertConfig
from vla_bench.policies.flow_vla.layers import attend, merge_heads, mlp, split_qkv


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """[B] times in [0, 1] -> [B, dim] sin/cos features; t is scaled by 1000 so the frequencies resolve small steps."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


def _zero_linear(n_in: int, n_out: int) -> nn.Linear:
    """AdaLN-Zero: modulations and the output start at zero, so every block starts as the identity."""
    layer = nn.Linear(n_in, n_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


@dataclass
class TimeConditioning:
    """AdaLN modulations for one flow time per sample, each [B, D]: per block (shift1, scale1, gate1, shift2, scale2,
    gate2), then the final layer's (shift, scale)."""

    blocks: list[tuple[torch.Tensor, ...]]
    final: tuple[torch.Tensor, torch.Tensor]

    def split(self, size: int) -> list["TimeConditioning"]:
        """Cut the batch into consecutive pieces of `size` samples (one per Euler step when built for all steps)."""
        blocks = [[m.split(size) for m in mods] for mods in self.blocks]
        final = [m.split(size) for m in self.final]
        return [TimeConditioning([tuple(m[i] for m in mods) for mods in blocks], (final[0][i], final[1][i]))
                for i in range(len(final[0]))]


@dataclass
class PrefixCache:
    """The prefix, encoded once per chunk."""

    tokens: torch.Tensor  # projected prefix [B, L, D]: input of the expert's prefix stream
    valid: torch.Tensor  # bool [B, L]
    # Per block: keys and values of the prefix stream [B, heads, L, d]; None when only the tokens were kept.
    kv: list[tuple[torch.Tensor, torch.Tensor]] | None


class JointBlock(nn.Module):
    """One DiT block. The last block's prefix stream only produces keys/values (its output would go nowhere)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, last: bool):
        super().__init__()
        self.heads, self.last = heads, last
        self.p_norm1, self.p_qkv = nn.LayerNorm(width), nn.Linear(width, 3 * width)
        if not last:
            self.p_out, self.p_norm2, self.p_mlp = nn.Linear(width, width), nn.LayerNorm(width), mlp(width, mlp_ratio)
        self.a_norm1 = nn.LayerNorm(width, elementwise_affine=False)
        self.a_norm2 = nn.LayerNorm(width, elementwise_affine=False)
        self.a_qkv, self.a_out, self.a_mlp = nn.Linear(width, 3 * width), nn.Linear(width, width), mlp(width, mlp_ratio)
        self.ada = _zero_linear(width, 6 * width)

    def _prefix_qkv(self, p):
        return split_qkv(self.p_qkv(self.p_norm1(p)), self.heads)

    def _prefix_update(self, p, attn):
        p = p + self.p_out(merge_heads(attn))
        return p + self.p_mlp(self.p_norm2(p))

    def _action_qkv(self, x, mod):
        return split_qkv(self.a_qkv(modulate(self.a_norm1(x), mod[0], mod[1])), self.heads)

    def _action_update(self, x, attn, mod):
        x = x + mod[2][:, None] * self.a_out(merge_heads(attn))
        return x + mod[5][:, None] * self.a_mlp(modulate(self.a_norm2(x), mod[3], mod[4]))

    def forward_prefix(self, p: torch.Tensor, valid: torch.Tensor):
        """Prefix stream alone: (next prefix or None for the last block, (k, v))."""
        q, k, v = self._prefix_qkv(p)
        if self.last:
            return None, (k, v)
        return self._prefix_update(p, attend(q, k, v, valid[:, None, None, :])), (k, v)

    def forward_action(self, x: torch.Tensor, mod, kv, key_valid: torch.Tensor) -> torch.Tensor:
        """Action stream with cached prefix keys/values; `key_valid` [B, L + H] marks visible keys."""
        q, k, v = self._action_qkv(x, mod)
        k, v = torch.cat([kv[0], k], dim=2), torch.cat([kv[1], v], dim=2)
        return self._action_update(x, attend(q, k, v, key_valid[:, None, None, :]), mod)

    def forward_joint(self, p: torch.Tensor, x: torch.Tensor, mod, allowed: torch.Tensor):
        """Both streams in one attention over [p ; x]; `allowed` [B, 1, L + H, L + H] is the block mask."""
        n = p.shape[1]
        qp, kp, vp = self._prefix_qkv(p)
        qa, ka, va = self._action_qkv(x, mod)
        k, v = torch.cat([kp, ka], dim=2), torch.cat([vp, va], dim=2)
        if self.last:
            return None, self._action_update(x, attend(qa, k, v, allowed[:, :, n:]), mod)
        attn = attend(torch.cat([qp, qa], dim=2), k, v, allowed)
        return self._prefix_update(p, attn[:, :, :n]), self._action_update(x, attn[:, :, n:], mod)


class ActionExpert(nn.Module):
    """Velocity field v(x_t, t | prefix) for H x K action chunks."""

    def __init__(self, config: ExpertConfig, prefix_width: int, action_dim: int):
        super().__init__()
        w = config.width
        self.width, self.max_horizon = w, config.max_horizon
        self.prefix_proj = nn.Linear(prefix_width, w)
        # Input per step: the masked noisy action and the mask itself, so padded channels carry no signal.
        self.action_in = nn.Linear(2 * action_dim, w)
        self.action_pos = nn.Parameter(torch.randn(config.max_horizon, w) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(JointBlock(w, config.heads, config.mlp_ratio, last=i == config.depth - 1)
                                    for i in range(config.depth))
        self.final_norm = nn.LayerNorm(w, elementwise_affine=False)
        self.final_ada, self.final_out = _zero_linear(w, 2 * w), _zero_linear(w, action_dim)

    def cache_prefix(self, prefix: torch.Tensor, valid: torch.Tensor, kv: bool = True) -> PrefixCache:
        """Project backbone tokens [B, L, D_backbone] and, with `kv`, run the prefix stream once for its keys/values
        (`velocity_uncached` needs only the projected tokens)."""
        p = tokens = self.prefix_proj(prefix)
        if not kv:
            return PrefixCache(tokens=tokens, valid=valid, kv=None)
        kv = []
        for block in self.blocks:
            p, block_kv = block.forward_prefix(p, valid)
            kv.append(block_kv)
        return PrefixCache(tokens=tokens, valid=valid, kv=kv)

    def condition(self, t: torch.Tensor) -> TimeConditioning:
        """AdaLN modulations for times t [B]. It depends on t only, so a sampler computes all its steps in one
        batched call instead of re-reading these weights at every step."""
        c = F.silu(self.time_mlp(sinusoidal_embedding(t, self.width)))
        return TimeConditioning([block.ada(c).chunk(6, dim=-1) for block in self.blocks],
                                self.final_ada(c).chunk(2, dim=-1))

    def velocity(self, x_t: torch.Tensor, cond: TimeConditioning, cache: PrefixCache,
                 mask: torch.Tensor) -> torch.Tensor:
        """v [B, H, K] for noisy actions x_t [B, H, K], reusing the cached prefix. Masked (bool) entries of x_t are
        ignored and their velocity is 0."""
        if cache.kv is None:
            raise ValueError("this prefix cache holds no keys/values (built with kv=False)")
        x, key_valid = self._action_inputs(x_t, mask, cache.valid)
        for block, kv, mod in zip(self.blocks, cache.kv, cond.blocks):
            x = block.forward_action(x, mod, kv, key_valid)
        return self._output(x, cond, mask)

    def velocity_uncached(self, x_t: torch.Tensor, cond: TimeConditioning, cache: PrefixCache,
                          mask: torch.Tensor) -> torch.Tensor:
        """Same as `velocity`, recomputing the prefix stream jointly with the actions (uses only cache.tokens)."""
        x, key_valid = self._action_inputs(x_t, mask, cache.valid)
        n, total = cache.tokens.shape[1], key_valid.shape[1]
        rows = torch.arange(total, device=x.device)
        # Prefix rows (< n) see prefix keys only; action rows see every valid key.
        allowed = key_valid[:, None, None, :] & ((rows[:, None] >= n) | (rows[None, :] < n))
        p = cache.tokens
        for block, mod in zip(self.blocks, cond.blocks):
            p, x = block.forward_joint(p, x, mod, allowed)
        return self._output(x, cond, mask)

    def _action_inputs(self, x_t, mask, prefix_valid):
        h = x_t.shape[1]
        if h > self.max_horizon:
            raise ValueError(f"chunk of {h} actions exceeds the expert's max_horizon={self.max_horizon}")
        x = torch.cat([torch.where(mask, x_t, 0.0), mask.to(x_t.dtype)], dim=-1)
        # A timestep with no valid channel (padding of a shorter chunk in a mixed batch) is hidden as a key.
        return self.action_in(x) + self.action_pos[:h], torch.cat([prefix_valid, mask.any(dim=-1)], dim=1)

    def _output(self, x, cond, mask):
        shift, scale = cond.final
        return torch.where(mask, self.final_out(modulate(self.final_norm(x), shift, scale)), 0.0)
