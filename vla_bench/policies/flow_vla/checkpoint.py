"""Checkpoint directories: config.json (architecture, K, embodiment specs), model.safetensors, norm_stats.json.

An `hf` backbone also writes its VLM config and processor files under `backbone/`, so the directory is
self-contained. Every error names the file at fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vla_bench.actions import NORM_STATS_FILE, NormStats
from vla_bench.embodiment import EmbodimentSpec, get_embodiment
from vla_bench.policies.flow_vla.config import HfBackboneConfig, VLAConfig
from vla_bench.policies.flow_vla.model import FlowVLA

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# Quantile stats of every (source, embodiment) a stage trained on, in the stage's source order: a checkpoint trained on
# several embodiments un-normalizes a non-primary one with the stats of the first source that has it.
ALL_STATS_FILE = "norm_stats_by_source.json"
BACKBONE_DIR = "backbone"
FORMAT = "vla_bench.flow_vla/1"


class CheckpointError(ValueError):
    """A checkpoint file is malformed or does not fit the model or the embodiment; the message names the file."""


@dataclass
class Checkpoint:
    model: FlowVLA
    embodiments: list[EmbodimentSpec]  # the embodiments the model was trained for
    norm_stats: NormStats


def save_checkpoint(model: FlowVLA, directory: str | Path, norm_stats: NormStats,
                    embodiments: Sequence[EmbodimentSpec] | None = None) -> Path:
    """Write a checkpoint directory. `embodiments` defaults to the registered spec of `norm_stats.embodiment`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    specs = list(embodiments) if embodiments else [get_embodiment(norm_stats.embodiment)]
    if norm_stats.embodiment not in {s.name for s in specs}:
        raise ValueError(f"norm stats are for {norm_stats.embodiment!r}, not one of the checkpoint's embodiments")
    config = model.config
    if isinstance(config.backbone, HfBackboneConfig):
        model.backbone.save_files(directory / BACKBONE_DIR)
        config = replace(config, backbone=replace(config.backbone, path=BACKBONE_DIR))
    doc = {"format": FORMAT, "model": config.to_dict(), "embodiments": [s.to_dict() for s in specs]}
    (directory / CONFIG_FILE).write_text(json.dumps(doc, indent=1))
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, directory / WEIGHTS_FILE)
    norm_stats.save(directory)
    return directory


def read_config(directory: str | Path) -> tuple[VLAConfig, list[EmbodimentSpec]]:
    """The model config and embodiment specs of a checkpoint; a relative `hf` path is resolved against it."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint config not found: {path}")
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r} is not {FORMAT!r}")
        config = VLAConfig.from_dict(doc["model"])
        specs = [EmbodimentSpec.from_dict(d) for d in doc["embodiments"]]
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: malformed checkpoint config ({e})") from e
    if isinstance(config.backbone, HfBackboneConfig) and not Path(config.backbone.path).is_absolute():
        config = replace(config, backbone=replace(config.backbone, path=str(Path(directory) / config.backbone.path)))
    return config, specs


def load_checkpoint(directory: str | Path, embodiment: EmbodimentSpec | None = None,
                    device: torch.device | str = "cpu") -> Checkpoint:
    """Load a checkpoint; with `embodiment`, also check that the model and its norm stats are for it."""
    directory = Path(directory)
    config, specs = read_config(directory)
    if embodiment is not None:
        _check_trained_for(directory / CONFIG_FILE, specs, embodiment)
    norm_stats = load_norm_stats(directory, None if embodiment is None else embodiment.name)
    if embodiment is not None:
        _check_stats_fit(directory / NORM_STATS_FILE, norm_stats, embodiment)
    model = FlowVLA(config, pretrained=False)
    load_weights(model, directory / WEIGHTS_FILE)
    return Checkpoint(model=model.to(device), embodiments=specs, norm_stats=norm_stats)


def load_norm_stats(directory: Path, embodiment: str | None) -> NormStats:
    """norm_stats.json (the primary embodiment's), else the embodiment's entry in norm_stats_by_source.json."""
    primary = NormStats.load(directory)
    if embodiment is None or primary.embodiment == embodiment:
        return primary
    path = directory / ALL_STATS_FILE
    entries = json.loads(path.read_text()).values() if path.is_file() else []
    for d in entries:
        if d["embodiment"] == embodiment:
            return NormStats.from_dict(d)
    raise CheckpointError(f"{directory / NORM_STATS_FILE} holds statistics for embodiment {primary.embodiment!r}, "
                          f"and {path} none for {embodiment!r}")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a missing or unreadable (truncated, foreign) file is one clear error."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint weights not found: {path}")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: unreadable weights ({e})") from e


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load a safetensors file into `model`, listing missing, unexpected and mis-shaped tensors on mismatch."""
    state = read_weights(path)
    expected = model.state_dict()
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"{k} has shape {tuple(state[k].shape)}, the model {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CheckpointError(f"{path} does not fit the model built from {CONFIG_FILE}: {shown}")
    model.load_state_dict(state)


def _check_trained_for(path: Path, specs: list[EmbodimentSpec], embodiment: EmbodimentSpec) -> None:
    stored = {s.name: s for s in specs}
    if embodiment.name not in stored:
        raise CheckpointError(f"{path}: the model was trained for {sorted(stored)}, not {embodiment.name!r}")
    s = stored[embodiment.name]
    if (s.action_names, s.state_dim) != (embodiment.action_names, embodiment.state_dim):
        raise CheckpointError(f"{path}: embodiment {embodiment.name!r} was stored with actions {s.action_names} and "
                              f"state_dim {s.state_dim}; the given spec has {embodiment.action_names} and "
                              f"state_dim {embodiment.state_dim}")


def _check_stats_fit(path: Path, stats: NormStats, embodiment: EmbodimentSpec) -> None:
    if stats.action.dim != embodiment.action_dim:
        raise CheckpointError(f"{path}: {stats.action.dim} action channels, embodiment {embodiment.name} has "
                              f"{embodiment.action_dim}")
    if stats.state is not None and stats.state.dim != embodiment.state_dim:
        raise CheckpointError(f"{path}: {stats.state.dim} state dims, embodiment {embodiment.name} has "
                              f"{embodiment.state_dim}")
