"""Training samples from a mixture of datasets: named sources with proportions, balanced sampling, per-source stats.

A `Source` is one or more datasets under a name, drawn with a given share of the samples. Within a source, a sample
is a frame (chunk mode: the action chunk starting there) or an episode (full-trajectory mode, for T2A), drawn
uniformly or balanced over tasks and/or embodiments (each group weighted by the inverse of its frequency, so rare
tasks are seen as often as common ones: the SFT setting). Actions and states are normalized with quantile
statistics fitted per (source, embodiment): the `NormStats` a checkpoint trained on that source must carry.

Draw `i` of a sampler is a pure function of (seed, i): training resumes at any step and DDP ranks split the draws
by index, with no sampler state to save.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla_bench.actions import DEFAULT_K, NormStats, QuantileNormalizer, pad_actions
from vla_bench.data.lerobot import DatasetReader
from vla_bench.embodiment import EMBODIMENTS, embodiment_prompt

BALANCE_MODES = ("none", "task", "embodiment", "embodiment_task")

# Pretraining mixes by source category. Qwen-VLA (arXiv 2605.30280) names its pretraining categories (robot
# manipulation trajectories, human egocentric demonstrations, synthetic simulation, vision-and-language navigation,
# trajectory supervision, and vision-language data without actions) but we found no proportions for them, so:
# - "qwen_vla_t2a" is the paper's best T2A ablation setting as DESIGN.md quotes it: full-sequence T2A on 20%
#   synthetic + 80% real trajectories (SFT success on Simpler-WidowX 60.9% -> 71.1%);
# - "cpt_placeholder" is OUR PLACEHOLDER for continued pretraining (robot data central, the others as coverage),
#   not the paper's numbers; replace it when the figures are known.
PRETRAINING_MIXES: dict[str, dict[str, float]] = {
    "qwen_vla_t2a": {"synthetic": 0.2, "robot": 0.8},
    "cpt_placeholder": {"robot": 0.6, "human_ego": 0.15, "synthetic": 0.15, "navigation": 0.1},
}


@dataclass
class Source:
    name: str  # also the key of its normalization statistics
    datasets: list[DatasetReader]
    weight: float = 1.0  # share of the draws, normalized over the sampler's sources
    balance: str = "none"  # "none" (every frame/episode alike), "task", "embodiment" or "embodiment_task"

    def __post_init__(self):
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"source {self.name!r}: balance must be one of {BALANCE_MODES}, got {self.balance!r}")
        if self.weight <= 0 or not self.datasets:
            raise ValueError(f"source {self.name!r} needs a positive weight and at least one dataset")
        missing = [f"{d.root} (robot_type {d.info.get('robot_type')!r})" for d in self.datasets if d.embodiment is None]
        if missing:
            raise ValueError(f"source {self.name!r}: no embodiment for {', '.join(missing)}: name one with "
                             "`vla-bench train --embodiment NAME` (or DatasetReader(root, embodiment=NAME)); "
                             f"registered: {', '.join(sorted(EMBODIMENTS))}")


def preset_sources(preset: str, datasets: dict[str, list[DatasetReader]], balance: str = "none") -> list[Source]:
    """The sources of a pretraining mix; categories without datasets are left out (the rest keep their ratios)."""
    if preset not in PRETRAINING_MIXES:
        raise KeyError(f"unknown mix {preset!r}; presets: {', '.join(PRETRAINING_MIXES)}")
    unknown = set(datasets) - set(PRETRAINING_MIXES[preset])
    if unknown:
        raise KeyError(f"mix {preset!r} has no categories {sorted(unknown)}; it has {list(PRETRAINING_MIXES[preset])}")
    return [Source(name, datasets[name], weight, balance)
            for name, weight in PRETRAINING_MIXES[preset].items() if datasets.get(name)]


@dataclass
class Sample:
    """One training example; actions and state are normalized and padded (`mask` / `state_mask` mark what is real)."""

    source: str
    embodiment: str
    instruction: str
    prompt: str  # the embodiment prompt, asking for H actions (full-trajectory mode: the episode's length)
    state: np.ndarray  # float32 [state_dim]: the state at the first action, zero-padded
    state_mask: np.ndarray  # bool [state_dim]
    actions: np.ndarray  # float32 [H, K] (chunk) or [max_len, K] (full trajectory)
    mask: np.ndarray  # bool, as `actions`: valid timesteps x the embodiment's channels
    images: dict[str, np.ndarray] = field(default_factory=dict)  # view -> uint8 [H, W, 3] (chunk mode, if asked)


def _group_weights(emb_ids: np.ndarray, task_ids: np.ndarray, balance: str) -> np.ndarray:
    """Per-unit weights making each group (task, embodiment, or task within embodiment) equally likely."""
    _, emb_inv, emb_count = np.unique(emb_ids, return_inverse=True, return_counts=True)
    _, task_inv, task_count = np.unique(task_ids, return_inverse=True, return_counts=True)
    if balance == "none":
        return np.ones(len(emb_ids))
    if balance == "task":
        return 1.0 / task_count[task_inv]
    if balance == "embodiment":
        return 1.0 / emb_count[emb_inv]
    tasks_per_emb = np.array([len(np.unique(task_inv[emb_inv == e])) for e in range(len(emb_count))])
    return 1.0 / (task_count[task_inv] * tasks_per_emb[emb_inv])


class MixtureSampler:
    """Draws `Sample`s from sources; chunk mode (H actions from a frame) or full-trajectory mode (whole episodes)."""

    def __init__(self, sources: list[Source], horizon: int = 10, k: int = DEFAULT_K, seed: int = 0,
                 full_trajectory: bool = False, max_len: int = 512, images: bool = False, state_dim: int = DEFAULT_K):
        if not sources or len({s.name for s in sources}) != len(sources):
            raise ValueError("a mixture needs at least one source and unique source names")
        self.sources, self.horizon, self.k, self.seed = sources, horizon, k, seed
        self.full_trajectory, self.max_len, self.images, self.state_dim = full_trajectory, max_len, images, state_dim
        weights = np.array([s.weight for s in sources], dtype=np.float64)
        self.proportions = weights / weights.sum()
        self._source_cdf = np.cumsum(self.proportions)
        if images and not full_trajectory:
            _check_images_decodable(sources)
        self.norm_stats = {key: stats for s in sources for key, stats in self._fit_stats(s).items()}
        self.too_long: dict[str, int] = {}  # full-trajectory mode: episodes left out per source (longer than max_len)
        self._units = [self._index_units(s) for s in sources]

    def _fit_stats(self, source: Source) -> dict[tuple[str, str], NormStats]:
        out = {}
        for name in dict.fromkeys(d.embodiment.name for d in source.datasets):
            group = [d for d in source.datasets if d.embodiment.name == name]
            spec, state = group[0].embodiment, np.concatenate([d.state for d in group])
            action = QuantileNormalizer.fit(np.concatenate([d.action for d in group]), binary=spec.binary_channels)
            out[(source.name, name)] = NormStats(embodiment=name, action=action,
                                                 state=QuantileNormalizer.fit(state) if state.shape[1] else None)
        return out

    def _index_units(self, source: Source) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dataset index, row or episode, cumulative weight) of every unit a draw can land on."""
        ds_ids, positions, emb_ids, task_ids = [], [], [], []
        for i, d in enumerate(source.datasets):
            if self.full_trajectory:
                keep = np.flatnonzero(d.episode_lengths <= self.max_len)
                self.too_long[source.name] = self.too_long.get(source.name, 0) + d.num_episodes - len(keep)
                tasks = np.array([d.episode_task(e) for e in keep], dtype=object)
            else:
                keep = np.arange(d.num_frames)
                tasks = np.array(d.tasks, dtype=object)[d.task_index]
            ds_ids.append(np.full(len(keep), i))
            positions.append(keep)
            emb_ids.append(np.full(len(keep), d.embodiment.name, dtype=object))
            task_ids.append(np.array([f"{d.embodiment.name}\n{t}" for t in tasks], dtype=object))
        positions = np.concatenate(positions)
        if not len(positions):
            raise ValueError(f"source {source.name!r} has nothing to draw (full trajectories longer than "
                             f"max_len={self.max_len}?)")
        weights = _group_weights(np.concatenate(emb_ids), np.concatenate(task_ids), source.balance)
        return np.concatenate(ds_ids), positions, np.cumsum(weights)

    def draw(self, i: int) -> Sample:
        """Sample number `i` (a pure function of the seed and `i`)."""
        rng = np.random.default_rng([self.seed, i])
        s = _pick(self._source_cdf, rng)
        ds_ids, positions, cdf = self._units[s]
        u = _pick(cdf, rng)
        source, d = self.sources[s], self.sources[s].datasets[ds_ids[u]]
        if self.full_trajectory:
            ep = int(positions[u])
            start, n = int(d.episode_starts[ep]), int(d.episode_lengths[ep])
            rows, length, chunk = slice(start, start + n), self.max_len, n
        else:
            start = int(positions[u])
            ep = int(d.episode_of_row[start])
            stop = min(start + self.horizon, int(d.episode_starts[ep] + d.episode_lengths[ep]))
            rows, length, chunk = slice(start, stop), self.horizon, self.horizon
        stats = self.norm_stats[(source.name, d.embodiment.name)]
        actions, mask = pad_actions(stats.action.normalize(d.action[rows]), self.k)
        state = d.state[start] if stats.state is None else stats.state.normalize(d.state[start])
        instruction = d.tasks[d.task_index[start]]
        images = {v: d.image(v, start) for v in d.view_tags} if self.images and not self.full_trajectory else {}
        return Sample(source=source.name, embodiment=d.embodiment.name, instruction=instruction,
                      prompt=embodiment_prompt(d.embodiment, instruction, chunk),
                      state=_pad(state, self.state_dim), state_mask=_pad(np.ones(len(state), bool), self.state_dim),
                      actions=_pad(actions, length), mask=_pad(mask, length), images=images)

    def batch(self, step: int, batch_size: int, rank: int = 0, world_size: int = 1) -> dict:
        """Batch `step` of rank `rank`: draws (step * world_size + rank) * batch_size + j, stacked."""
        first = (step * world_size + rank) * batch_size
        return collate([self.draw(first + j) for j in range(batch_size)])


def _check_images_decodable(sources: list[Source]) -> None:
    """Images were asked for: no dataset may store its camera views as video (their frames would be left out of the
    batches without a word)."""
    for s in sources:
        for d in s.datasets:
            videos = [v for v in d.view_tags if v not in d.image_views]
            if videos:
                raise ValueError(f"{d.root}: camera views {videos} are stored as video, which vla-bench does "
                                 "not decode; train without --images, or re-encode the dataset with image features")


def _pick(cdf: np.ndarray, rng: np.random.Generator) -> int:
    """Index i with probability (cdf[i] - cdf[i-1]) / cdf[-1]."""
    # min(): float rounding can put rng.random() * cdf[-1] on cdf[-1] itself
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(cdf) - 1)


def _pad(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad (False-pad) the first axis of `x` to length `n`."""
    if len(x) > n:
        raise ValueError(f"{len(x)} entries do not fit in {n}")
    return np.concatenate([x, np.zeros((n - len(x), *x.shape[1:]), dtype=x.dtype)])


def collate(samples: list[Sample]) -> dict:
    """Stack samples: arrays [B, ...], strings as lists, images by view. Samples of embodiments with other cameras
    share a batch: a view a sample lacks is a black frame marked absent in `image_valid` (its tokens are masked)."""
    batch = {key: [getattr(s, key) for s in samples] for key in ("source", "embodiment", "instruction", "prompt")}
    batch.update({key: np.stack([getattr(s, key) for s in samples])
                  for key in ("state", "state_mask", "actions", "mask")})
    views = sorted({v for s in samples for v in s.images})
    batch["images"], batch["image_valid"] = {}, {}
    for v in views:
        shape = next(s.images[v].shape for s in samples if v in s.images)
        present = np.array([v in s.images for s in samples])
        batch["images"][v] = np.stack([s.images[v] if v in s.images else np.zeros(shape, np.uint8) for s in samples])
        if not present.all():
            batch["image_valid"][v] = present
    return batch
