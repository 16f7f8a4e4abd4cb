"""The tiny backbone: a patch encoder per view (with a view-tag embedding), a hashed-word text transformer and a
state token, mixed by a few transformer blocks. From about 1M parameters, so it trains on a CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vla_bench.policies.flow_vla.backbone import PrefixInputs, pad_state
from vla_bench.policies.flow_vla.config import TinyBackboneConfig
from vla_bench.policies.flow_vla.layers import EncoderBlock
from vla_bench.policies.flow_vla.tokenizer import PAD_ID, HashedWordTokenizer, stable_bucket


def _embedding_param(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) * 0.02)


class PatchEncoder(nn.Module):
    """uint8 [B, H, W, 3] -> [B, P, D]: resize, non-overlapping patches, position and view-tag embeddings.

    One encoder serves every view; the hashed tag embedding tells views apart, so a new embodiment's views need no
    new parameters."""

    def __init__(self, config: TinyBackboneConfig):
        super().__init__()
        self.size, self.buckets = config.image_size, config.view_tag_buckets
        grid = config.image_size // config.patch_size
        self.proj = nn.Conv2d(3, config.width, config.patch_size, stride=config.patch_size)
        self.pos = _embedding_param(grid * grid, config.width)
        self.tag_embed = _embedding_param(config.view_tag_buckets, config.width)

    def forward(self, images: torch.Tensor, tag: str) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        x = self.proj(x).flatten(2).transpose(1, 2)
        return x + self.pos + self.tag_embed[stable_bucket(tag, self.buckets)]


class TinyBackbone(nn.Module):
    """Prefix = [view tokens per view ; prompt tokens ; state token], each sample padded to the batch's longest."""

    def __init__(self, config: TinyBackboneConfig):
        super().__init__()
        self.config = config
        self.width, self.use_images, self.state_dim = config.width, config.use_images, config.state_dim
        self.tokenizer = HashedWordTokenizer(config.vocab_size, config.max_text_tokens)
        self.token_embed = nn.Embedding(config.vocab_size, config.width, padding_idx=PAD_ID)
        nn.init.normal_(self.token_embed.weight, std=0.02)
        self.text_pos = _embedding_param(config.max_text_tokens, config.width)
        self.state_proj = nn.Linear(config.state_dim, config.width)
        self.state_type = _embedding_param(config.width)
        self.patches = PatchEncoder(config) if config.use_images else None
        self.blocks = nn.ModuleList(EncoderBlock(config.width, config.heads, config.mlp_ratio)
                                    for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.width)

    def encode(self, inputs: PrefixInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix tokens [B, L, D] and validity mask [B, L]; see `vla_bench.policies.flow_vla.backbone`."""
        device = self.state_proj.weight.device
        b = inputs.batch_size
        tokens, valid = self._image_tokens(inputs)
        ids, text_valid = self.tokenizer.batch(inputs.prompts, device)
        tokens.append(self.token_embed(ids) + self.text_pos[: ids.shape[1]])
        valid.append(text_valid)
        state = pad_state(inputs.state.to(device), self.state_dim)
        tokens.append((self.state_proj(state) + self.state_type)[:, None])
        valid.append(torch.ones(b, 1, dtype=torch.bool, device=device))
        x, mask = torch.cat(tokens, dim=1), torch.cat(valid, dim=1)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x), mask

    def _image_tokens(self, inputs: PrefixInputs) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if not self.use_images:
            return [], []
        if not inputs.images:
            raise ValueError("this backbone was configured with use_images=True but the inputs hold no images")
        tokens, valid = [], []
        for tag, img in inputs.images.items():
            t = self.patches(img.to(self.state_proj.weight.device), tag)
            present = inputs.image_valid.get(tag)
            tokens.append(t)
            valid.append(torch.ones(t.shape[:2], dtype=torch.bool, device=t.device) if present is None
                         else present.to(t.device)[:, None].expand(t.shape[:2]))
        return tokens, valid
