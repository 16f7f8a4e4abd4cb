"""The suite contract on the micro-envs (toy_reach, toy_stop), which stand in for simulators here: an end that is not
a success, episode ids that are not 0..N-1, instructions drawn per episode, a mean metric beside success, and env
workers started with another interpreter."""

import json
import math
import stat
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from vla_bench import cli
from vla_bench.envs.registry import get_suite, list_tasks, suites
from vla_bench.envs.toy import STOP_EPISODE_IDS
from vla_bench.eval.runner import EvalConfig, evaluate
from vla_bench.eval.table import markdown_table

SCRIPTED = "vla_bench.envs.toy:ToyScriptedPolicy"


def _eval(tmp_path, suite="toy_stop", policy=SCRIPTED, name="run", **kw):
    kw.setdefault("workers", 1)
    return evaluate(EvalConfig(suites=suite, policy=policy, run_dir=str(tmp_path / name), **kw), progress=False)


def test_specs_are_complete_and_readable_without_a_simulator():
    for name, spec in suites().items():
        try:
            tasks = spec.list_tasks()
        except FileNotFoundError as e:  # a task table read from a data file the user names (R2R's episodes)
            assert "--episodes-file" in str(e), name
            continue
        assert tasks and spec.metrics[0].name == "success" and spec.cameras, name
        for t in tasks:
            assert t.suite == name and t.max_steps > 0 and 0 < t.default_episodes <= len(t.episode_ids)
    assert len(list_tasks("libero_90")) == 90 and list_tasks("libero_10")[0].max_steps == 520
    simpler = list_tasks("simpler")
    assert [t.max_steps for t in simpler] == [60, 60, 60, 120] and len(simpler[3].episode_ids) == 64
    assert all(t.default_episodes == 24 for t in simpler)


def test_an_end_that_is_not_a_success(tmp_path):
    res = _eval(tmp_path, policy="tests.faulty_policies:StopAtOncePolicy")
    rows = res["episodes"]
    assert len(rows) == 4 * 10 and all(r["end"] == "done" and r["steps"] == 1 for r in rows)
    assert res["metrics"]["overall"]["successes"] == 0  # the episode ended; that is no success
    good = _eval(tmp_path, name="good")
    assert all(r["end"] == "done" and r["success"] for r in good["episodes"])


def test_episode_ids_and_per_episode_instructions(tmp_path):
    res = _eval(tmp_path, tasks=[1])
    rows = res["episodes"]
    assert [r["episode_id"] for r in rows] == list(STOP_EPISODE_IDS[:10])  # the protocol's 10, not 0..9
    assert len({r["instruction"] for r in rows}) == 3 and {r["task_index"] for r in rows} == {1}
    assert list(res["metrics"]["tasks"]) == ["toy_stop/1"]  # grouped by task id, not by instruction
    first = _eval(tmp_path, name="first3", tasks=[1], episodes=3)
    assert [r["episode_id"] for r in first["episodes"]] == [100, 103, 106]
    named = _eval(tmp_path, name="named", tasks=[1], episode_ids=[172, 103])
    assert sorted(r["episode_id"] for r in named["episodes"]) == [103, 172]
    with pytest.raises(IndexError, match="episode ids 100, 103"):
        _eval(tmp_path, name="bad", tasks=[1], episode_ids=[101])


def test_mean_metric_is_aggregated_with_its_standard_error(tmp_path):
    res = _eval(tmp_path, suite="toy_reach", policy="zero", episodes=6, tasks=[0, 3])
    values = [r["final_distance"] for r in res["episodes"]]
    from vla_bench.envs.toy import TARGETS

    for r in res["episodes"]:  # the env's facts beside its metrics: the final position, under "info"
        target = np.array(TARGETS[r["task"].replace("_", " ")])
        assert np.linalg.norm(np.array(r["info"]["final_position"]) - target) == pytest.approx(r["final_distance"],
                                                                                                abs=1e-5)
    m = res["metrics"]["overall"]["metrics"]["final_distance"]
    sd = float(np.std(values, ddof=1))
    assert m["kind"] == "mean" and m["n"] == 12 and not m["higher_is_better"]
    assert m["value"] == pytest.approx(np.mean(values)) and m["stderr"] == pytest.approx(sd / math.sqrt(12))
    assert res["metrics"]["overall"]["metrics"]["success"]["value"] == 0.0
    assert res["suites"]["toy_reach"]["metrics"][1]["name"] == "final_distance"
    table = markdown_table([tmp_path / "run"], metric="final_distance")
    assert f"{np.mean(values):.3g} \u00b1 {sd / math.sqrt(12):.3g} (n=12)" in table
    with pytest.raises(KeyError, match="no run has the metric"):
        markdown_table([tmp_path / "run"], metric="spl")


def test_cli_episode_ids_alias_and_metric_table(tmp_path, capsys):
    run = tmp_path / "cli"
    assert cli.main(["eval", "--suite", "toy_stop", "--policy", SCRIPTED, "--tasks", "0", "--init-indices",
                     "100,106", "--workers", "1", "--run-dir", str(run), "--no-progress"]) == 0
    rows = json.loads((run / "results.json").read_text())["episodes"]
    assert [r["episode_id"] for r in rows] == [100, 106]
    assert cli.main(["table", "--metric", "final_distance", str(run)]) == 0
    assert "final_distance:" in capsys.readouterr().out
    assert cli.main(["eval", "--suite", "toy_stop", "--env-option", "hard_reset=true", "--run-dir",
                     str(tmp_path / "x")]) == 2
    assert "takes env options image_size; got hard_reset" in capsys.readouterr().err


def _wrapper_python(tmp_path) -> tuple[str, str]:
    """An 'interpreter' that records each start in a marker file, then runs this one: the suite's own environment."""
    marker = tmp_path / "started"
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\necho start >> {marker}\nexec {sys.executable} \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), str(marker)


@pytest.fixture
def toy_in_own_env(tmp_path, monkeypatch):
    python, marker = _wrapper_python(tmp_path)
    monkeypatch.setitem(suites(), "toy_reach", replace(get_suite("toy_reach"), python_env="toytest"))
    monkeypatch.setenv("VLA_BENCH_PYTHON_TOYTEST", python)
    return python, marker


def test_eval_workers_run_in_the_suites_own_interpreter(tmp_path, toy_in_own_env):
    python, marker = toy_in_own_env
    res = _eval(tmp_path, suite="toy_reach", episodes=3, workers=2)
    assert res["complete"] and res["metrics"]["overall"]["success_rate"] == 1.0
    assert open(marker).read().count("start") >= 2 + 1  # two workers + the version probe
    assert res["suites"]["toy_reach"]["python"] == python


def test_rl_env_slots_run_in_the_suites_own_interpreter(tmp_path, toy_in_own_env):
    from vla_bench.rl.vec_env import SubprocTaskEnvs

    python, marker = toy_in_own_env
    envs = SubprocTaskEnvs([dict(suite="toy_reach", task_index=t, seed=0, slot=t) for t in (0, 1)])
    try:
        obs = envs.reset()
        step = envs.step([np.zeros((4, 4), np.float32)] * 2)
        assert len(obs) == 2 and step.env_steps == 8
    finally:
        envs.close()
    assert open(marker).read().count("start") == 2


def test_missing_suite_environment_names_the_setup_step(tmp_path, monkeypatch):
    monkeypatch.setitem(suites(), "toy_reach", replace(get_suite("toy_reach"), python_env="nowhere"))
    monkeypatch.delenv("VLA_BENCH_PYTHON_NOWHERE", raising=False)
    with pytest.raises(RuntimeError, match="bash scripts/setup.sh --suite nowhere"):
        _eval(tmp_path, suite="toy_reach", episodes=1)


def test_rl_buffer_groups_by_task_id_not_instruction():
    from vla_bench.rl.buffer import RolloutBuffer
    from vla_bench.rl.ppo import normalize_per_group

    buffer = RolloutBuffer(2, 3, (2, 4, 32), 1, 7, torch.ones(4, 32, dtype=bool),
                           task_ids=["toy_stop/0", "toy_stop/0", "toy_stop/1"])
    buffer.prompts = [["reach a", "please reach a", "reach b"]] * 2  # two phrasings of task 0
    assert buffer.flat_task_ids() == ["toy_stop/0", "toy_stop/0", "toy_stop/1"] * 2
    adv = normalize_per_group(torch.tensor([1.0, 3.0, 5.0, 3.0, 5.0, 9.0]), buffer.flat_task_ids())
    task0 = adv[[0, 1, 3, 4]]
    assert task0.mean().abs() < 1e-6 and task0.std() == pytest.approx(1.0, abs=1e-5)


def test_named_episode_ids_go_to_the_tasks_that_have_them():
    """R2R's ids are unique across its tasks (one per scene): each task runs the named ids it has; LIBERO-style
    suites, where every task has every id, run them all in every task."""
    from vla_bench.envs.spec import TaskInfo, episodes_by_task

    def task(index, ids):
        return TaskInfo(suite="s", index=index, name=f"t{index}", instruction="go", max_steps=10,
                        episode_ids=tuple(ids), default_episodes=len(ids), embodiment="toy_reach")

    scenes = [task(0, range(1, 41)), task(1, range(41, 81))]
    assert episodes_by_task(scenes, ids=[3, 1, 45]) == {0: [3, 1], 1: [45]}
    assert episodes_by_task(scenes, ids=[2]) == {0: [2]}  # a scene without any named id is left out
    with pytest.raises(IndexError, match=r"no task of s has episode ids \[99\] \(task 0: 1..40; task 1: 41..80\)"):
        episodes_by_task(scenes, ids=[1, 99])
    shared = [task(0, range(50)), task(1, range(50))]
    assert episodes_by_task(shared, ids=[4, 9]) == {0: [4, 9], 1: [4, 9]}
    assert episodes_by_task(shared, count=2) == {0: [0, 1], 1: [0, 1]}
    with pytest.raises(IndexError, match="has episode ids 0..49"):
        episodes_by_task(shared[:1], ids=[60])
