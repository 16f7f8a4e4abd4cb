"""Run-directory files: the model checkpoint (flow_vla format), the stage record, and the resume state.

<out>/config.json, model.safetensors, norm_stats.json  the checkpoint `vla-bench eval --policy <out>` loads
<out>/norm_stats_by_source.json                        quantile stats of every (source, embodiment) of the stage
                                                       (eval un-normalizes a non-primary embodiment with them)
<out>/stage.json                                       stage, parent, data, train config, progress
<out>/lineage.json                                     the checkpoint's ancestry (vla_bench/lineage.py)
<out>/train_state.pt                                   model, optimizer, scheduler, step, sample counts (resume)
<out>/logs/                                            metrics.csv and TensorBoard events

Every file is replaced atomically (written beside, then renamed), and train_state.pt is written last: a kill
leaves the previous complete state to resume from.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from vla_bench.actions import NormStats
from vla_bench.atomic_write import replace_atomically, write_json_atomically
from vla_bench.embodiment import EmbodimentSpec
from vla_bench.eval.results import git_revision, package_versions
from vla_bench.lineage import make_lineage, write_lineage
from vla_bench.policies.flow_vla.checkpoint import (ALL_STATS_FILE, WEIGHTS_FILE, read_config, read_weights,
                                                    save_checkpoint)
from vla_bench.policies.flow_vla.config import TinyBackboneConfig, VLAConfig, preset_config
from vla_bench.policies.flow_vla.model import FlowVLA
from vla_bench.train.config import TrainConfig

STAGE_FILE = "stage.json"
STATE_FILE = "train_state.pt"
IMAGE_ONLY_PREFIX = "backbone.patches."  # weights that exist only in a model that uses images


def model_config(config: TrainConfig, actions_len: int) -> VLAConfig:
    """The parent's model config (images switched as the stage asks), or the preset; the expert covers the targets."""
    if config.init:
        model, _ = read_config(config.init)
        want_images = model.use_images if config.images is None else config.images
        if want_images != model.use_images:
            if not isinstance(model.backbone, TinyBackboneConfig):
                raise ValueError(f"{config.init}: switching images on or off is supported for the tiny backbone only")
            model = replace(model, backbone=replace(model.backbone, use_images=want_images))
        if model.expert.max_horizon < actions_len:
            raise ValueError(f"{config.init}: the expert's max_horizon {model.expert.max_horizon} is shorter than "
                             f"this stage's {actions_len} action steps (lower --max-len / --horizon)")
        return model
    model = preset_config(config.preset, use_images=bool(config.images))
    return replace(model, expert=replace(model.expert, max_horizon=max(model.expert.max_horizon, actions_len)))


def load_parent_weights(model: FlowVLA, parent: str | Path) -> dict:
    """Copy a parent checkpoint's weights into `model`. Only image-encoder weights may be missing (a stage that
    adds images) or left over (a stage that drops them); anything else that does not fit is an error."""
    state = read_weights(Path(parent) / WEIGHTS_FILE)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unused = [k for k in state if k not in expected]
    bad = [k for k in missing + unused if not k.startswith(IMAGE_ONLY_PREFIX)]
    bad += [k for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if bad:
        raise ValueError(f"{parent}/{WEIGHTS_FILE} does not fit the model: {bad[:5]}")
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)
    return {"new": missing, "dropped": unused}


def parent_record(parent: str | Path | None) -> dict | None:
    """Path of the parent checkpoint and, if it was trained here, its stage and step."""
    if parent is None:
        return None
    record = {"path": str(Path(parent).resolve())}
    stage_file = Path(parent) / STAGE_FILE
    if stage_file.is_file():
        doc = json.loads(stage_file.read_text())
        record.update(stage=doc.get("stage"), step=doc.get("step"), parent=doc.get("parent"))
    return record


def save_stage(out: Path, model: FlowVLA, norm_stats: NormStats, specs: list[EmbodimentSpec],
               all_stats: dict[tuple[str, str], NormStats], record: dict) -> None:
    """The checkpoint files, every source's stats, and the stage record."""
    save_checkpoint(model, out, norm_stats, specs)
    write_json_atomically(out / ALL_STATS_FILE, {f"{src}/{emb}": {"source": src, **s.to_dict()}
                                                for (src, emb), s in all_stats.items()})
    write_json_atomically(out / STAGE_FILE, {**record, "versions": package_versions(), "git_revision": git_revision()})
    train = record["train"]
    write_lineage(out, make_lineage(
        record["stage"], out, data=record["data"], config=train, parent_path=train["init"],
        progress={k: record[k] for k in ("step", "steps", "complete", "samples_seen")},
        label=train["extra"].get("label"), pipeline=train["extra"].get("pipeline")))


def save_train_state(out: Path, state: dict) -> None:
    replace_atomically(out / STATE_FILE, lambda p: torch.save(state, p))


def load_train_state(out: Path) -> dict | None:
    path = out / STATE_FILE
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None
