"""The trainer: every stage runs and checkpoints, T2A freezes the backbone and drops images, learning happens, and
resume, gradient accumulation and DDP (2 gloo processes) reproduce one uninterrupted single-process run."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vla_bench import cli
from vla_bench.data.collect import CollectConfig, collect
from vla_bench.data.synthetic import write_corpus
from vla_bench.envs.toy import EMBODIMENT, ToyReachEnv
from vla_bench.policies.base import make_policy
from vla_bench.policies.flow_vla.checkpoint import read_config
from vla_bench.policies.flow_vla.backbone import PrefixInputs
from vla_bench.train import TrainConfig, train
from vla_bench.train.config import STAGES
from vla_bench.train.data import trim_padding
from vla_bench.metric_log import read_metrics
from vla_bench.train.optim import warmup_cosine
from vla_bench.train.trainer import Trainer, flow_noise

SYNTH_ROBOTS = ["bridge_widowx", "synth_xarm_eef_abs"]  # the two with the shortest synthetic episodes


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A toy_reach dataset of the scripted policy (4 tasks, with 16 px images) and a 2-robot synthetic corpus."""
    root = tmp_path_factory.mktemp("data")
    collect(CollectConfig(suites="toy_reach", policy="vla_bench.envs.toy:ToyScriptedPolicy", out=str(root / "toy"),
                          episodes=3, image_size=16, flush_every=6), progress=False)
    write_corpus(root / "synthetic", episodes=3, seed=0, robots=SYNTH_ROBOTS, progress=False)
    return {"toy": str(root / "toy"), "synthetic": str(root / "synthetic")}


def config(data, out, **kw) -> TrainConfig:
    kw = {"stage": "sft", "data": [data["toy"]], "out": str(out), "steps": 4, "batch_size": 4, "save_every": 2,
          "log_every": 1, "warmup_steps": 2, "lr": 1e-3, "threads": 1, "progress": False, "max_len": 96, **kw}
    return TrainConfig(**kw)


def weights(out) -> dict[str, torch.Tensor]:
    return load_file(Path(out) / "model.safetensors")


def assert_same_weights(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0.0 if atol == 0.0 else 1e-5, msg=k)


def test_stage_defaults():
    assert STAGES["t2a"].trainable == ("expert",) and STAGES["t2a"].targets == "full"
    assert STAGES["cpt"].trainable is None and STAGES["sft"].balance == "task"
    with pytest.raises(ValueError, match="drops images"):
        TrainConfig(stage="t2a", data=["x"], out="y", images=True)
    with pytest.raises(ValueError, match="multiple of grad_accum"):
        TrainConfig(stage="sft", data=["x"], out="y", batch_size=5, grad_accum=2)


def test_warmup_then_cosine():
    assert warmup_cosine(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(99, 100, 10, 0.1) == pytest.approx(0.1)
    mid = warmup_cosine(10 + 89 // 2, 100, 10, 0.1)
    assert 0.5 < mid < 0.6  # halfway through the decay: (1 + 0.1) / 2, up to the half-step offset


@pytest.mark.parametrize("stage", ["t2a", "cpt", "sft"])
def test_each_stage_trains_and_writes_a_loadable_checkpoint(data, tmp_path, stage):
    synthetic = data["synthetic"] if stage != "sft" else None
    record = train(config(data, tmp_path / stage, stage=stage, synthetic=synthetic, steps=3))
    assert record["stage"] == stage and record["step"] == 3 and record["complete"]
    assert record["samples_seen"] == 12 and record["train"]["batch_size"] == 4
    sources = {s["name"]: s for s in record["data"]["sources"]}
    if stage == "sft":
        assert list(sources) == ["downstream"] and sources["downstream"]["balance"] == "task"
    else:  # the preset mix: robot data (the toy set) and the synthetic corpus, with their proportions
        assert set(sources) == {"robot", "synthetic"}
        assert sum(record["samples_per_source"].values()) == 12
        emb = {d["embodiment"] for d in sources["synthetic"]["datasets"]}
        assert emb == set(SYNTH_ROBOTS)
    if stage == "t2a":
        assert sources["synthetic"]["proportion"] == pytest.approx(0.2)
        assert record["data"]["targets"] == "full" and record["model"]["max_horizon"] >= 96
    rows = read_metrics(tmp_path / stage / "logs")
    assert [r["step"] for r in rows] == [1, 2, 3] and all(math.isfinite(r["losses/flow"]) for r in rows)
    assert all(r["charts/samples_per_s"] > 0 and r["charts/lr"] > 0 for r in rows)
    assert list((tmp_path / stage / "logs").glob("events.out.tfevents.*"))  # TensorBoard
    # The run directory is a checkpoint `vla-bench eval --policy <dir>` loads (make_policy is what eval calls).
    policy = make_policy(str(tmp_path / stage), EMBODIMENT)
    env = ToyReachEnv("toy_reach", 0)
    chunk = policy.act(env.reset(0, 0, images=policy.needs_images))
    assert chunk.actions.shape == (EMBODIMENT.chunk_size, 32) and np.isfinite(chunk.actions).all()
    assert chunk.mask[:, :EMBODIMENT.action_dim].all() and not chunk.mask[:, EMBODIMENT.action_dim:].any()
    if stage == "cpt":  # trained on two embodiments: each one un-normalizes with its own source's stats
        from vla_bench.embodiment import get_embodiment
        from vla_bench.policies.flow_vla.checkpoint import load_checkpoint

        widowx = load_checkpoint(tmp_path / stage, get_embodiment("bridge_widowx")).norm_stats
        by_source = json.loads((tmp_path / stage / "norm_stats_by_source.json").read_text())
        np.testing.assert_allclose(widowx.action.q99, by_source["synthetic/bridge_widowx"]["action"]["q99"])
        assert load_checkpoint(tmp_path / stage, EMBODIMENT).norm_stats.embodiment == EMBODIMENT.name


def test_t2a_freezes_the_backbone_drops_images_and_records_its_parent(data, tmp_path):
    parent = tmp_path / "sft_images"
    train(config(data, parent, images=True, steps=2))
    assert read_config(parent)[0].use_images
    t2a = tmp_path / "t2a"
    # max_len within the parent's max_horizon (64 for the preset); toy episodes are at most 60 steps.
    record = train(config(data, t2a, stage="t2a", init=str(parent), max_len=64, steps=3))
    before, after = weights(parent), weights(t2a)
    backbone = [k for k in after if k.startswith("backbone.")]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)
    assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith("expert."))
    # Images dropped: the model has no image encoder left, the data no frames.
    assert not read_config(t2a)[0].use_images and not any(k.startswith("backbone.patches.") for k in after)
    assert record["init"]["dropped"] and all(k.startswith("backbone.patches.") for k in record["init"]["dropped"])
    assert record["data"]["images"] is False and record["model"]["parameters"]["frozen"] > 0
    assert record["parent"]["path"] == str(parent.resolve()) and record["parent"]["stage"] == "sft"
    # The next stage records the chain; SFT trains everything, images back on (a fresh image encoder).
    sft = train(config(data, tmp_path / "sft", init=str(t2a), images=True, steps=2))
    assert sft["parent"]["stage"] == "t2a" and sft["parent"]["parent"]["path"] == str(parent.resolve())
    assert sft["model"]["parameters"]["frozen"] == 0 and sft["init"]["new"]
    assert not torch.equal(weights(tmp_path / "sft")["backbone.state_proj.weight"], after["backbone.state_proj.weight"])


def test_trimming_full_trajectory_padding_changes_nothing(data, tmp_path):
    trainer = Trainer(config(data, tmp_path, stage="t2a", max_len=96), _single())
    batch = trainer.sampler.batch(0, 4)
    length = trim_padding(batch["actions"], batch["mask"])
    assert length < 96 and batch["mask"][:, length:].sum() == 0 and batch["mask"][:, length - 1].any()
    noise, t = flow_noise(0, 0, 4, 96, 32, trainer.model)
    inputs = PrefixInputs(batch["prompt"], torch.from_numpy(batch["state"]))
    full = trainer.model.loss(inputs, torch.from_numpy(batch["actions"]), torch.from_numpy(batch["mask"]), noise, t)
    cut = trainer.model.loss(inputs, torch.from_numpy(batch["actions"][:, :length]),
                             torch.from_numpy(batch["mask"][:, :length]), noise[:, :length], t)
    torch.testing.assert_close(full, cut)


def held_loss(model, sampler, batches: int = 4, size: int = 16) -> float:
    """Flow loss on fixed draws with fixed noise and times: comparable across models, low variance."""
    losses = []
    with torch.no_grad():
        for b in range(batches):
            batch = sampler.batch(1000 + b, size)
            noise, t = flow_noise(123, b, size, batch["actions"].shape[1], 32, model)
            inputs = PrefixInputs(batch["prompt"], torch.from_numpy(batch["state"]))
            losses.append(model.loss(inputs, torch.from_numpy(batch["actions"]), torch.from_numpy(batch["mask"]),
                                     noise, t).item())
    return float(np.mean(losses))


def test_loss_decreases_when_overfitting(data, tmp_path):
    cfg = config(data, tmp_path, steps=80, batch_size=8, log_every=10, save_every=80, warmup_steps=5, lr=3e-3)
    fresh = Trainer(cfg, _single())  # the model the run starts from (same seed), before any step
    before = held_loss(fresh.model, fresh.sampler)
    train(cfg)
    fresh.model.load_state_dict(weights(tmp_path))
    after = held_loss(fresh.model, fresh.sampler)
    assert after < 0.75 * before, (before, after)
    losses = [r["losses/flow"] for r in read_metrics(tmp_path / "logs")]
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)  # one row per 10 steps (batch losses are noisy)


def test_resume_after_a_kill_matches_an_uninterrupted_run(data, tmp_path, monkeypatch):
    whole = train(config(data, tmp_path / "whole", steps=6))
    original = Trainer.train_step

    def killed_at_step_5(self, step):
        if step == 5:
            raise KeyboardInterrupt("killed")
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", killed_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(config(data, tmp_path / "resumed", steps=6))
    monkeypatch.setattr(Trainer, "train_step", original)
    assert (tmp_path / "resumed" / "stage.json").exists()  # the checkpoint of step 4
    resumed = train(config(data, tmp_path / "resumed", steps=6))
    assert resumed["resumed_from"] == [4] and resumed["step"] == 6 and resumed["samples_seen"] == 24
    assert resumed["samples_per_source"] == whole["samples_per_source"]
    assert_same_weights(weights(tmp_path / "whole"), weights(tmp_path / "resumed"))
    steps = [r["step"] for r in read_metrics(tmp_path / "resumed" / "logs")]
    assert steps == [1, 2, 3, 4, 5, 6]  # the row of the lost step 5 was dropped, not duplicated
    with pytest.raises(ValueError, match="another config"):
        train(config(data, tmp_path / "resumed", steps=6, lr=5e-4))


def test_two_micro_batches_equal_one_batch_of_twice_the_size(data, tmp_path):
    train(config(data, tmp_path / "one", steps=3, batch_size=8, grad_accum=1))
    train(config(data, tmp_path / "two", steps=3, batch_size=8, grad_accum=2))
    assert_same_weights(weights(tmp_path / "one"), weights(tmp_path / "two"), atol=1e-6)


def test_ddp_with_two_gloo_processes_equals_one_process_with_the_doubled_batch(data, tmp_path):
    single = train(config(data, tmp_path / "single", stage="cpt", synthetic=data["synthetic"], steps=3, batch_size=8))
    args = ["train", "--stage", "cpt", "--data", data["toy"], "--synthetic", data["synthetic"], "--out",
            str(tmp_path / "ddp"), "--steps", "3", "--batch-size", "4", "--save-every", "2", "--log-every", "1",
            "--warmup-steps", "2", "--lr", "1e-3", "--threads", "1", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--standalone", "-m", "vla_bench.cli", *args],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "ddp" / "stage.json").read_text())
    assert record["world_size"] == 2 and record["ddp_weights_in_sync"] is True
    # Both ranks drew their shards: 3 steps x 4 samples x 2 ranks, split over sources as the single run's draws.
    assert record["samples_seen"] == 24 and record["samples_per_source"] == single["samples_per_source"]
    assert_same_weights(weights(tmp_path / "single"), weights(tmp_path / "ddp"), atol=2e-5)


def test_cli_train_runs_a_stage(data, tmp_path, capsys):
    rc = cli.main(["train", "--stage", "sft", "--data", data["toy"], "--out", str(tmp_path / "cli"), "--steps", "2",
                   "--batch-size", "2", "--threads", "1", "--no-progress"])
    assert rc == 0 and '"step": 2' in capsys.readouterr().out
    assert (tmp_path / "cli" / "model.safetensors").exists()


def _single():
    from vla_bench.train.distributed import setup

    return setup("cpu", 1)
