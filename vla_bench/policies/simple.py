"""Baseline policies with no model: `zero` (hold still, gripper open) and `random` (uniform in [-1, 1])."""

from __future__ import annotations

import numpy as np

from vla_bench.actions import DEFAULT_K, pad_actions
from vla_bench.adapter import ActionChunk, Observation
from vla_bench.embodiment import EmbodimentSpec


class ZeroPolicy:
    """Zero motion with the grippers open (-1): what a harness costs with a free policy."""

    norm_stats = None
    needs_images = False
    needs_privileged = False

    def __init__(self, embodiment: EmbodimentSpec, chunk_size: int | None = None, needs_images: bool = False,
                 k: int = DEFAULT_K):
        self.embodiment, self.k = embodiment, k
        self.chunk_size = chunk_size or embodiment.chunk_size
        # Benchmarks ask for images to measure rendering cost with a policy that costs nothing.
        self.needs_images = needs_images

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: Observation) -> ActionChunk:
        native = np.zeros((self.chunk_size, self.embodiment.action_dim), dtype=np.float32)
        native[:, list(self.embodiment.binary_channels)] = -1.0
        return ActionChunk(*pad_actions(native, self.k))


class RandomPolicy(ZeroPolicy):
    """Uniform actions in [-1, 1] on the native channels, seeded per episode."""

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Observation) -> ActionChunk:
        native = self.rng.uniform(-1.0, 1.0, (self.chunk_size, self.embodiment.action_dim)).astype(np.float32)
        return ActionChunk(*pad_actions(native, self.k))
