"""`vla-bench pipeline` on the toy_reach micro-env: every step runs once, resumes, is skipped when done and redone
when its config changes; the lineage of the RL checkpoint reaches its T2A ancestor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vla_bench.cli import main
from vla_bench.lineage import chain, describe, read_lineage
from vla_bench.pipeline import PipelineConfig, load_config_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOML = """
name = "toy"

[data.toy.collect]
suites = "toy_reach"
policy = "vla_bench.envs.toy:ToyScriptedPolicy"
episodes = 3
image_size = 0
tasks = "0-1"
flush_every = 6
[data.synthetic]
synth = { episodes = 3, robots = ["bridge_widowx"] }

[[stages]]
stage = "t2a"
data = ["toy"]
synthetic = "synthetic"
evaluate = false
train = { steps = 3, batch_size = 4, max_len = 96, warmup_steps = 1, threads = 1, save_every = 3, log_every = 1 }

[[stages]]
stage = "sft"
data = ["toy"]
train = { steps = 4, batch_size = 4, warmup_steps = 1, threads = 1, save_every = 2, log_every = 1 }

[[stages]]
stage = "rl"
rl = { suite = "toy_reach", tasks = [0], total_env_steps = 40, envs_per_task = 2, rollout_steps = 2, replan_steps = 2 }

[evaluation]
workers = 1
[evaluation.suites.toy_reach]
tasks = "0-1"
episodes = 2
"""


def write_config(tmp_path: Path, text: str = TOML) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


def test_pipeline_runs_resumes_skips_and_records_lineage(tmp_path, capsys):
    out = tmp_path / "run"
    config = write_config(tmp_path)
    assert main(["pipeline", str(config), "--out", str(out), "--no-progress"]) == 0
    state = json.loads((out / "pipeline.json").read_text())
    steps = state["steps"]
    assert list(steps) == ["data/toy", "data/synthetic", "stage/t2a", "stage/sft", "eval/sft/toy_reach",
                           "stage/rl", "eval/rl/toy_reach"]
    assert all(s["status"] == "done" and s["sessions"] == 1 for s in steps.values())
    # The RL checkpoint's lineage reaches T2A through SFT, and names the pipeline and its stage labels.
    lineage = read_lineage(out / "stages" / "rl" / "policy")
    assert [r["stage"] for r in chain(lineage)] == ["t2a", "sft", "rl"]
    assert describe(lineage) == "t2a > sft > rl" and {r["pipeline"] for r in chain(lineage)} == {"toy"}
    assert chain(lineage)[0]["data"]["targets"] == "full"  # the T2A record is the whole one, embedded
    assert lineage["parent_path"] == str(out / "stages" / "sft")
    results = json.loads((out / "eval" / "rl" / "toy_reach" / "results.json").read_text())
    assert results["complete"] and results["metrics"]["overall"]["episodes"] == 4

    # A rerun skips every step: nothing is trained or evaluated again.
    capsys.readouterr()
    before = (out / "stages" / "sft" / "model.safetensors").stat().st_mtime_ns
    assert main(["pipeline", str(config), "--out", str(out), "--no-progress"]) == 0
    logged = capsys.readouterr().out
    assert logged.count("skipped") == len(steps) and "running" not in logged
    assert (out / "stages" / "sft" / "model.safetensors").stat().st_mtime_ns == before

    # A changed SFT config redoes SFT and everything after it, and leaves T2A alone.
    assert main(["pipeline", str(write_config(tmp_path, TOML.replace("steps = 4", "steps = 5"))), "--out", str(out),
                 "--no-progress"]) == 0
    logged = capsys.readouterr().out
    for key in ("stage/sft", "eval/sft/toy_reach", "stage/rl", "eval/rl/toy_reach"):
        assert f"{key}: running" in logged
    assert "stage/t2a: done" in logged and "stage/t2a: running" not in logged
    assert json.loads((out / "stages" / "sft" / "stage.json").read_text())["step"] == 5


def test_interrupted_stage_resumes_where_it_stopped(tmp_path, monkeypatch):
    out = tmp_path / "run"
    text = TOML.split("[[stages]]\nstage = \"rl\"")[0] + TOML.split("replan_steps = 2 }\n")[1]
    config = write_config(tmp_path, text)
    import vla_bench.train.trainer as trainer

    real_step, calls = trainer.Trainer.train_step, []

    def interrupted(self, step):  # Ctrl-C during SFT's third step
        calls.append(step)
        if self.config.stage == "sft" and step == 2 and len(calls) < 20:
            raise KeyboardInterrupt
        return real_step(self, step)

    monkeypatch.setattr(trainer.Trainer, "train_step", interrupted)
    assert main(["pipeline", str(config), "--out", str(out), "--no-progress"]) == 130
    state = json.loads((out / "pipeline.json").read_text())["steps"]
    assert state["stage/sft"]["status"] == "interrupted" and state["stage/t2a"]["status"] == "done"
    calls.clear()
    calls.extend([0] * 20)  # let the rerun pass
    assert main(["pipeline", str(config), "--out", str(out), "--no-progress"]) == 0
    state = json.loads((out / "pipeline.json").read_text())["steps"]
    assert state["stage/sft"]["status"] == "done" and state["stage/sft"]["sessions"] == 2
    assert state["stage/t2a"]["sessions"] == 1
    assert calls[20:] == [2, 3]  # the SFT checkpoint of step 2 was kept: only steps 2 and 3 ran again


@pytest.mark.parametrize("change, message", [
    ({"stages": [{"stage": "sft"}]}, "needs `data`"),
    ({"stages": [{"stage": "sft", "data": ["nope"]}]}, "no data entry 'nope'"),
    ({"stages": [{"stage": "sft", "data": ["toy"], "train": {"stepz": 3}}]}, "unknown keys \\['stepz'\\]"),
    ({"stages": [{"stage": "rl", "rl": {"suite": "toy_reach"}}]}, "starts from a checkpoint"),
    ({"stages": [{"stage": "xyz"}]}, "stage must be one of"),
    ({"stages": [{"stage": "sft", "data": ["toy"]}, {"stage": "sft", "data": ["toy"]}]}, "used twice"),
])
def test_bad_configs_are_one_clear_error(change, message):
    doc = {"name": "t", "data": {"toy": {"path": "x"}}, **change}
    with pytest.raises(ValueError, match=message):
        PipelineConfig.from_dict(doc)


def test_yaml_and_toml_read_alike(tmp_path):
    yaml_text = ("name: toy\ndata:\n  toy: {path: somewhere}\nstages:\n  - {stage: sft, data: [toy], train: "
                 "{steps: 3}}\nevaluation:\n  suites:\n    toy_reach: {episode_ids: 0-2}\n")
    toml_text = ('name = "toy"\n[data.toy]\npath = "somewhere"\n[[stages]]\nstage = "sft"\ndata = ["toy"]\n'
                 'train = { steps = 3 }\n[evaluation.suites.toy_reach]\nepisode_ids = "0-2"\n')
    (tmp_path / "p.yaml").write_text(yaml_text)
    (tmp_path / "p.toml").write_text(toml_text)
    a, b = (PipelineConfig.from_dict(load_config_file(tmp_path / f)) for f in ("p.yaml", "p.toml"))
    assert a.stages == b.stages and a.evaluation == b.evaluation == {"toy_reach": {"episode_ids": [0, 1, 2],
                                                                                   "tasks": None}}


def test_collect_entries_default_to_the_scripted_reference():
    doc = {"name": "t", "data": {"demos": {"collect": {"suites": "libero_object", "tasks": "0-1",
                                                       "episode_ids": "25-27"}}},
           "stages": [{"stage": "sft", "data": ["demos"]}]}
    entry = PipelineConfig.from_dict(doc).data["demos"]
    assert entry.options == {"suites": "libero_object", "policy": "scripted", "tasks": [0, 1],
                             "episode_ids": [25, 26, 27]}
    del doc["data"]["demos"]["collect"]["suites"]
    with pytest.raises(ValueError, match="`suites`"):
        PipelineConfig.from_dict(doc)
