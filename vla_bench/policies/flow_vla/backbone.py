"""The backbone protocol: images by view tag + embodiment prompt + state -> prefix tokens and their padding mask."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from vla_bench.policies.flow_vla.config import HfBackboneConfig, TinyBackboneConfig


@dataclass
class PrefixInputs:
    """One batch of what conditions the action chunk."""

    prompts: list[str]  # embodiment prompts (vla_bench.embodiment.embodiment_prompt), one per sample
    state: torch.Tensor  # float [B, S], normalized; zero-padded by the backbone to its state_dim
    images: dict[str, torch.Tensor] = field(default_factory=dict)  # view tag -> uint8 [B, H, W, 3]
    # view tag -> bool [B]: False where a sample has no such camera (a batch mixing embodiments: LIBERO's two views
    # beside SimplerEnv's one); its image is padding and its tokens are masked. Missing tag: valid everywhere.
    image_valid: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self):
        b = len(self.prompts)
        for tag, valid in self.image_valid.items():
            if tag not in self.images or valid.shape != (b,) or valid.dtype != torch.bool:
                raise ValueError(f"image_valid[{tag!r}] must be bool [B={b}] for a view present in images")
        if self.state.ndim != 2 or self.state.shape[0] != b:
            raise ValueError(f"state must be [B={b}, S], got {tuple(self.state.shape)}")
        for tag, img in self.images.items():
            if img.ndim != 4 or img.shape[0] != b or img.shape[-1] != 3 or img.dtype != torch.uint8:
                raise ValueError(f"image {tag!r} must be uint8 [B={b}, H, W, 3], got {img.dtype} {tuple(img.shape)}")

    @property
    def batch_size(self) -> int:
        return len(self.prompts)

    def to(self, device: torch.device | str) -> "PrefixInputs":
        return PrefixInputs(self.prompts, self.state.to(device), {k: v.to(device) for k, v in self.images.items()},
                            {k: v.to(device) for k, v in self.image_valid.items()})


class Backbone(Protocol):
    """Encodes the conditioning into prefix tokens. Implementations are `torch.nn.Module`s."""

    width: int  # D of the prefix tokens
    use_images: bool  # False: `inputs.images` is ignored
    state_dim: int  # longest state accepted

    def encode(self, inputs: PrefixInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix tokens float [B, L, D] and their validity mask bool [B, L] (False = padding)."""


def pad_state(state: torch.Tensor, state_dim: int) -> torch.Tensor:
    """Zero-pad a [B, S] state to [B, state_dim]; a longer state is an error, not silently cut."""
    if state.shape[-1] > state_dim:
        raise ValueError(f"state has {state.shape[-1]} dims, the backbone takes at most {state_dim}")
    return torch.nn.functional.pad(state.float(), (0, state_dim - state.shape[-1]))


def build_backbone(config: TinyBackboneConfig | HfBackboneConfig, pretrained: bool = True) -> torch.nn.Module:
    """The backbone for a config. `pretrained=False` builds an `hf` VLM from its config only (weights come from a
    checkpoint); transformers is imported only here, so the tiny backbone works without it."""
    if isinstance(config, TinyBackboneConfig):
        from vla_bench.policies.flow_vla.backbone_tiny import TinyBackbone

        return TinyBackbone(config)
    from vla_bench.policies.flow_vla.backbone_hf import HfBackbone

    return HfBackbone(config, pretrained=pretrained)
