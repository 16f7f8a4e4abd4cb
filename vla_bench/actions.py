"""The K-wide action space: padding with validity masks, and per-dataset quantile normalization.

An embodiment with c <= K native channels fills the prefix of each K-wide action; the rest is zero and masked out.
Normalization maps each channel's [q01, q99] to [-1, 1] (clipped); binary channels (grippers) pass through.
Statistics are an artifact saved as JSON beside a checkpoint (`norm_stats.json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_K = 32
NORM_STATS_FILE = "norm_stats.json"


def pad_actions(actions: np.ndarray, k: int = DEFAULT_K) -> tuple[np.ndarray, np.ndarray]:
    """Pad native actions [H, c] to [H, K] with zeros; return (padded, mask) where mask marks the valid prefix."""
    actions = np.asarray(actions, dtype=np.float32)
    if actions.ndim != 2:
        raise ValueError(f"actions must be [H, c], got shape {actions.shape}")
    h, c = actions.shape
    if c > k:
        raise ValueError(f"{c} action channels do not fit in K={k}")
    padded = np.zeros((h, k), dtype=np.float32)
    padded[:, :c] = actions
    mask = np.zeros((h, k), dtype=bool)
    mask[:, :c] = True
    return padded, mask


def channel_mask(horizon: int, channels: int, k: int = DEFAULT_K, valid_steps: int | None = None) -> np.ndarray:
    """Mask [H, K] for `channels` valid channels and the first `valid_steps` timesteps (all by default)."""
    mask = np.zeros((horizon, k), dtype=bool)
    mask[: horizon if valid_steps is None else valid_steps, :channels] = True
    return mask


@dataclass
class QuantileNormalizer:
    """Maps each channel's [q01, q99] to [-1, 1], clipped; channels in `binary` are left as they are."""

    q01: np.ndarray  # [c]
    q99: np.ndarray  # [c]
    binary: tuple[int, ...] = ()

    def __post_init__(self):
        self.q01 = np.asarray(self.q01, dtype=np.float32)
        self.q99 = np.asarray(self.q99, dtype=np.float32)
        if self.q01.shape != self.q99.shape or self.q01.ndim != 1:
            raise ValueError(f"q01 {self.q01.shape} and q99 {self.q99.shape} must be equal 1-D shapes")
        if np.any(self.q99 < self.q01):
            raise ValueError("q99 must be >= q01 on every channel")
        self.binary = tuple(int(i) for i in self.binary)
        self._passthrough = np.zeros(self.dim, dtype=bool)
        self._passthrough[list(self.binary)] = True

    @property
    def dim(self) -> int:
        return self.q01.shape[0]

    @classmethod
    def fit(cls, data: np.ndarray, binary: tuple[int, ...] = ()) -> "QuantileNormalizer":
        """Compute q01/q99 per channel over all rows of `data` [N, c] (leading dims are flattened)."""
        data = np.asarray(data, dtype=np.float64).reshape(-1, np.shape(data)[-1])
        if data.shape[0] == 0:
            raise ValueError("cannot fit normalization statistics on zero rows")
        q01, q99 = np.quantile(data, [0.01, 0.99], axis=0)
        return cls(q01=q01, q99=q99, binary=binary)

    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[-1] != self.dim:
            raise ValueError(f"expected {self.dim} channels, got shape {x.shape}")
        return x

    def normalize(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        # A constant channel (q99 == q01) maps to 0 rather than dividing by zero.
        span = np.where(self.q99 > self.q01, self.q99 - self.q01, 1.0)
        y = np.clip(2.0 * (x - self.q01) / span - 1.0, -1.0, 1.0)
        y = np.where(self.q99 > self.q01, y, 0.0)
        return np.where(self._passthrough, x, y).astype(np.float32)

    def unnormalize(self, y: np.ndarray) -> np.ndarray:
        y = self._check(y)
        x = (np.clip(y, -1.0, 1.0) + 1.0) / 2.0 * (self.q99 - self.q01) + self.q01
        return np.where(self._passthrough, y, x).astype(np.float32)

    def to_dict(self) -> dict:
        return {"q01": self.q01.tolist(), "q99": self.q99.tolist(), "binary": list(self.binary)}

    @classmethod
    def from_dict(cls, d: dict) -> "QuantileNormalizer":
        return cls(q01=np.asarray(d["q01"]), q99=np.asarray(d["q99"]), binary=tuple(d.get("binary", ())))


@dataclass
class NormStats:
    """Normalizers of one dataset / embodiment: actions and (optionally) the state."""

    embodiment: str
    action: QuantileNormalizer
    state: QuantileNormalizer | None = None

    def to_dict(self) -> dict:
        return {"embodiment": self.embodiment, "action": self.action.to_dict(),
                "state": None if self.state is None else self.state.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "NormStats":
        return cls(embodiment=d["embodiment"], action=QuantileNormalizer.from_dict(d["action"]),
                   state=None if d.get("state") is None else QuantileNormalizer.from_dict(d["state"]))

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / NORM_STATS_FILE
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, directory: str | Path, embodiment: str | None = None) -> "NormStats":
        path = Path(directory) / NORM_STATS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"normalization statistics not found: {path}")
        try:
            stats = cls.from_dict(json.loads(path.read_text()))
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"{path}: malformed normalization statistics ({e})") from e
        if embodiment is not None and stats.embodiment != embodiment:
            raise ValueError(f"{path} holds statistics for embodiment {stats.embodiment!r}, not {embodiment!r}")
        return stats
