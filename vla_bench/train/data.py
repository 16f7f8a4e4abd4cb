"""The data of a stage: datasets -> sources -> `MixtureSampler`, and sampler batches -> model tensors.

--data datasets are the "robot" category of a pretraining mix (T2A, CPT) or the single "downstream" source (SFT);
--synthetic datasets are the "synthetic" category. `--embodiment` names the embodiment of the --data datasets (for
datasets recorded elsewhere, e.g. by LeRobot, whose robot_type is not a registered embodiment). Norm stats are
fitted per (source, embodiment) by the sampler, from this stage's data only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vla_bench.actions import NormStats
from vla_bench.data.lerobot import INFO_PATH, DatasetReader
from vla_bench.data.mixture import MixtureSampler, Source, preset_sources
from vla_bench.embodiment import EmbodimentSpec
from vla_bench.policies.flow_vla.backbone import PrefixInputs
from vla_bench.train.config import TrainConfig

DOWNSTREAM = "downstream"  # source name of --data when the stage uses no mix


def dataset_dirs(path: str | Path) -> list[Path]:
    """A dataset directory itself, or the dataset directories directly under it (a `vla-bench synth` corpus)."""
    path = Path(path)
    if (path / INFO_PATH).is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if (p / INFO_PATH).is_file()) if path.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no LeRobotDataset v3 under {path} (expected {INFO_PATH} in it or in a subfolder)")
    return found


def build_sources(config: TrainConfig) -> list[Source]:
    """The sources of a stage: the mix's categories filled with --data (robot) and --synthetic."""
    robot = [DatasetReader(p, embodiment=config.embodiment) for d in config.data for p in dataset_dirs(d)]
    synthetic = [DatasetReader(p) for p in dataset_dirs(config.synthetic)] if config.synthetic else []
    if config.mix == "none":
        if synthetic:
            raise ValueError("--synthetic needs a mix with a 'synthetic' category (e.g. --mix qwen_vla_t2a)")
        return [Source(DOWNSTREAM, robot, 1.0, config.balance)]
    sources = preset_sources(config.mix, {"robot": robot, "synthetic": synthetic}, balance=config.balance)
    return sorted(sources, key=lambda s: s.name != "robot")  # --data first: it holds the primary embodiment


def primary_embodiment(sources: list[Source]) -> EmbodimentSpec:
    """The embodiment of the first --data dataset: its norm stats go into the checkpoint's norm_stats.json."""
    return sources[0].datasets[0].embodiment


def build_sampler(config: TrainConfig, sources: list[Source], state_dim: int) -> MixtureSampler:
    horizon = config.horizon or primary_embodiment(sources).chunk_size
    return MixtureSampler(sources, horizon=horizon, seed=config.seed, full_trajectory=config.targets == "full",
                          max_len=config.max_len, images=bool(config.images), state_dim=state_dim)


def target_length(config: TrainConfig, sources: list[Source]) -> int:
    """Action tokens per sample: the chunk length H, or max_len for full trajectories (the expert must cover it)."""
    return config.max_len if config.targets == "full" else config.horizon or primary_embodiment(sources).chunk_size


def checkpoint_norm_stats(sampler: MixtureSampler) -> NormStats:
    """Stats of (first source, primary embodiment): what `vla-bench eval --policy <ckpt>` un-normalizes with."""
    source = sampler.sources[0]
    return sampler.norm_stats[(source.name, source.datasets[0].embodiment.name)]


def embodiments(sources: list[Source]) -> list[EmbodimentSpec]:
    """Every embodiment in the data, the primary one first."""
    specs = {d.embodiment.name: d.embodiment for s in sources for d in s.datasets}
    return list(specs.values())


def data_record(config: TrainConfig, sampler: MixtureSampler) -> dict:
    """What the stage trained on: sources with proportions and their datasets (paths, sizes, tasks)."""
    sources = []
    for s, p in zip(sampler.sources, sampler.proportions):
        sources.append({
            "name": s.name, "proportion": float(p), "balance": s.balance,
            "too_long_episodes": sampler.too_long.get(s.name, 0),
            "datasets": [{"path": str(Path(d.root).resolve()), "embodiment": d.embodiment.name,
                          "episodes": d.num_episodes, "frames": d.num_frames, "tasks": len(d.tasks)}
                         for d in s.datasets]})
    return {"mix": config.mix, "targets": config.targets,
            "horizon": sampler.horizon if config.targets == "chunk" else None,
            "max_len": config.max_len if config.targets == "full" else None, "images": bool(config.images),
            "sources": sources}


def trim_padding(actions: np.ndarray, mask: np.ndarray) -> int:
    """Timesteps to keep: up to the last one with any valid entry in the batch. The rest are masked for every sample,
    so cutting them changes neither the loss nor its gradient (full-trajectory batches are mostly padding)."""
    valid_steps = np.flatnonzero(mask.any(axis=(0, 2)))
    return int(valid_steps[-1]) + 1 if len(valid_steps) else actions.shape[1]


def to_model_inputs(batch: dict, rows: slice, length: int, device: torch.device
                    ) -> tuple[PrefixInputs, torch.Tensor, torch.Tensor]:
    """Rows `rows` of a sampler batch as (PrefixInputs, actions [b, length, K], mask [b, length, K]) on `device`."""
    images = {v: torch.from_numpy(x[rows]) for v, x in batch["images"].items()}
    valid = {v: torch.from_numpy(x[rows]) for v, x in batch.get("image_valid", {}).items()}
    inputs = PrefixInputs(list(batch["prompt"][rows]), torch.from_numpy(batch["state"][rows]), images, valid)
    actions = torch.from_numpy(batch["actions"][rows, :length])
    mask = torch.from_numpy(batch["mask"][rows, :length])
    return inputs.to(device), actions.to(device), mask.to(device)
