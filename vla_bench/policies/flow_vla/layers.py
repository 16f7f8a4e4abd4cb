"""Small building blocks shared by the tiny backbone and the DiT: multi-head attention helpers and the MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp(width: int, ratio: float) -> nn.Sequential:
    hidden = int(width * ratio)
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))


def split_qkv(qkv: torch.Tensor, heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[B, L, 3D] -> q, k, v, each [B, heads, L, D / heads]."""
    b, length, three_d = qkv.shape
    return qkv.view(b, length, 3, heads, three_d // (3 * heads)).permute(2, 0, 3, 1, 4).unbind(0)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, heads, L, d] -> [B, L, heads * d]."""
    b, h, length, d = x.shape
    return x.transpose(1, 2).reshape(b, length, h * d)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention; `allowed` (bool, broadcast to [B, heads, Lq, Lk]) marks the visible keys.
    Every query must see at least one key (callers guarantee it: the state token is always valid)."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)


class EncoderBlock(nn.Module):
    """Pre-LayerNorm transformer block; padding tokens are hidden as keys."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = mlp(width, mlp_ratio)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        q, k, v = split_qkv(self.qkv(self.norm1(x)), self.heads)
        x = x + self.out(merge_heads(attend(q, k, v, valid[:, None, None, :])))
        return x + self.mlp(self.norm2(x))
