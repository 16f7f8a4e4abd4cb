"""`eval --seeds N`: every episode under seed indices 0..N-1 (base seed + k), resume per (episode, seed), and the
summaries' mean over seeds with an interval clustered by episode and widened to the per-seed spread."""

import json
import math

import numpy as np
import pytest

from vla_bench import cli
from vla_bench.actions import pad_actions
from vla_bench.adapter import ActionChunk
from vla_bench.envs.spec import MetricSpec
from vla_bench.envs.toy import ToyScriptedPolicy
from vla_bench.eval.episode import episode_seed
from vla_bench.eval.metrics import Z95, level_summary, summarize
from vla_bench.eval.results import load_episode_rows, load_results
from vla_bench.eval.runner import EvalConfig, evaluate
from vla_bench.eval.table import _cell, markdown_table

COIN = "tests.test_eval_seeds:CoinPolicy"


class CoinPolicy(ToyScriptedPolicy):
    """The toy scripted policy on episodes whose seed is even; on odd seeds it stands still with the gripper open and
    fails: success depends on the seed, as a stochastic VLA's does."""

    def reset(self, seed: int) -> None:
        self.gives_up = seed % 2 == 1

    def act(self, obs):
        if not self.gives_up:
            return super().act(obs)
        native = np.zeros((self.chunk_size, 4), dtype=np.float32)
        native[:, 3] = -1.0  # gripper open: never a success
        return ActionChunk(*pad_actions(native))


def config(tmp_path, name="run", **kw):
    kw.setdefault("episodes", 4)
    kw.setdefault("tasks", [0, 2])
    kw.setdefault("workers", 2)
    return EvalConfig(suites="toy_reach", policy=COIN, run_dir=str(tmp_path / name), **kw)


def outcome(row: dict) -> tuple:
    return row["task_index"], row["episode_id"], row["seed"], row["steps"], row["success"], row["final_distance"]


def test_each_episode_runs_under_base_seed_plus_k_and_seed_0_is_the_plain_run(tmp_path):
    res = evaluate(config(tmp_path, seed=7, seeds=3), progress=False)
    rows = res["episodes"]
    assert len(rows) == 2 * 4 * 3
    for r in rows:
        assert r["seed"] == episode_seed(7 + r["seed_index"], "toy_reach", r["task_index"], r["episode_id"])
    assert sorted((r["task_index"], r["episode_id"], r["seed_index"]) for r in rows) == \
        [(t, e, k) for t in (0, 2) for e in range(4) for k in range(3)]
    assert len({r["success"] for r in rows}) == 2  # the coin policy makes the seeds matter
    plain = evaluate(config(tmp_path, "plain", seed=7), progress=False)["episodes"]
    base8 = evaluate(config(tmp_path, "base8", seed=8), progress=False)["episodes"]
    assert sorted(map(outcome, plain)) == sorted(outcome(r) for r in rows if r["seed_index"] == 0)
    assert sorted(map(outcome, base8)) == sorted(outcome(r) for r in rows if r["seed_index"] == 1)
    assert res["seeds"]["base"] == 7 and res["seeds"]["count"] == 3 and "seed_index" in res["seeds"]["per_episode"]
    assert res["policy_lineage"] is None  # not a checkpoint

    overall = res["metrics"]["overall"]
    per_seed = [np.mean([r["success"] for r in rows if r["seed_index"] == k]) for k in range(3)]
    assert overall["seeds"] == 3 and overall["n_episodes"] == 8 and overall["episodes"] == 24
    assert overall["per_seed_success"] == pytest.approx(per_seed)
    assert overall["success_rate"] == pytest.approx(np.mean(per_seed))
    lo, hi = overall["ci95"]
    assert lo <= min(per_seed) and max(per_seed) <= hi
    distance = overall["metrics"]["final_distance"]
    assert distance["seeds"] == 3 and len(distance["per_seed"]) == 3 and distance["n"] == 24
    assert "per_seed_success" not in evaluate(config(tmp_path, "one"), progress=False)["metrics"]["overall"]


def _rows(success: dict[int, list[int]], distance: dict[int, list[float]] | None = None) -> list[dict]:
    """Synthetic rows: episode id -> its success (and final distance) under seed index 0, 1, ..."""
    return [{"suite": "toy_reach", "task_index": 0, "task": "t", "episode_id": e, "seed_index": k, "success": bool(s),
             "error": None, **({"final_distance": distance[e][k]} if distance else {})}
            for e, seeds in success.items() for k, s in enumerate(seeds)]


def test_interval_clusters_by_episode_then_widens_to_every_seed():
    # Seed 0 succeeds on episodes 0-7, seed 1 on 0-1: per-seed rates 0.8 and 0.2.
    rows = _rows({e: [int(e < 8), int(e < 2)] for e in range(10)})
    s = level_summary(rows, {})
    y = [1.0] * 2 + [0.5] * 6 + [0.0] * 2  # each episode's mean over its seeds
    se = float(np.std(y, ddof=1)) / math.sqrt(10)
    assert 0.5 - Z95 * se > 0.2 and 0.5 + Z95 * se < 0.8  # the cluster interval alone misses the seeds' spread
    assert s["success_rate"] == pytest.approx(0.5) and s["per_seed_success"] == pytest.approx([0.8, 0.2])
    assert s["ci95"] == pytest.approx([0.2, 0.8])
    assert (s["seeds"], s["episodes"], s["n_episodes"], s["successes"]) == (2, 20, 10, 10)
    assert s["metrics"]["success"]["ci95"] == pytest.approx([0.2, 0.8])

    # Seeds that agree: the cluster interval itself, clipped to [0, 1].
    rows = _rows({0: [1, 1], 1: [1, 0], 2: [0, 0], 3: [1, 0]})
    s = level_summary(rows, {})
    se = float(np.std([1, 0.5, 0, 0.5], ddof=1)) / 2
    assert s["per_seed_success"] == pytest.approx([0.75, 0.25])
    assert s["ci95"] == pytest.approx([0.5 - Z95 * se, 0.5 + Z95 * se])
    assert level_summary(_rows({0: [1, 1], 1: [1, 1], 2: [1, 0]}), {})["ci95"][1] == 1.0


def test_mean_metric_over_seeds_has_the_cluster_standard_error():
    distance = {0: [1.0, 3.0], 1: [2.0, 2.0], 2: [0.0, 4.0]}
    rows = _rows({e: [0, 0] for e in distance}, distance)
    m = summarize(rows, {"toy_reach": [MetricSpec("success", "rate"), MetricSpec("final_distance", "mean", False)]})
    m = m["overall"]["metrics"]["final_distance"]
    assert m["per_seed"] == pytest.approx([1.0, 3.0]) and m["value"] == pytest.approx(2.0)
    assert m["stderr"] == pytest.approx(0.0)  # every episode's mean over its seeds is 2.0
    assert (m["n"], m["n_episodes"], m["seeds"]) == (6, 3, 2)


def test_resume_runs_only_the_missing_episode_seed_pairs(tmp_path):
    cfg = config(tmp_path, seeds=3)
    evaluate(cfg, progress=False)
    path = tmp_path / "run" / "episodes.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    kept = [r for r in rows if not (r["seed_index"] == 2 or (r["seed_index"] == 1 and r["episode_id"] == 3))]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    res = evaluate(cfg, resume=True, progress=False)
    new = path.read_text().splitlines()[len(kept):]
    assert sorted((r["task_index"], r["episode_id"], r["seed_index"]) for r in map(json.loads, new)) == \
        sorted([(t, e, 2) for t in (0, 2) for e in range(4)] + [(0, 3, 1), (2, 3, 1)])
    assert res["complete"] and len(res["episodes"]) == 24
    assert sorted(map(outcome, res["episodes"])) == sorted(map(outcome, rows))  # the same runs as before the loss


def test_resume_may_add_seeds_but_not_drop_them(tmp_path):
    evaluate(config(tmp_path, episodes=2), progress=False)
    path = tmp_path / "run" / "episodes.jsonl"
    res = evaluate(config(tmp_path, episodes=2, seeds=2), resume=True, progress=False)
    assert len(path.read_text().splitlines()) == 8  # 4 of seed 0, then only seed 1's 4
    assert res["metrics"]["overall"]["seeds"] == 2 and res["seeds"]["count"] == 2
    with pytest.raises(ValueError, match="--seeds 2 or more"):
        evaluate(config(tmp_path, episodes=2, seeds=1), resume=True, progress=False)
    with pytest.raises(ValueError, match="different evaluation config .seed changed"):
        evaluate(config(tmp_path, episodes=2, seeds=2, seed=8), resume=True, progress=False)
    with pytest.raises(ValueError, match="seeds"):
        config(tmp_path, seeds=0)


def test_rows_and_configs_of_older_runs_read_as_seed_index_0(tmp_path):
    evaluate(config(tmp_path, episodes=2), progress=False)
    run = tmp_path / "run"
    path, cfg_path = run / "episodes.jsonl", run / "config.json"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "seed_index"}) + "\n" for r in rows))
    saved = json.loads(cfg_path.read_text())
    del saved["identity"]["seeds"]  # written before `seeds` existed
    cfg_path.write_text(json.dumps(saved))
    assert {r["seed_index"] for r in load_episode_rows(path)} == {0}
    res = evaluate(config(tmp_path, episodes=2), resume=True, progress=False)
    assert len(path.read_text().splitlines()) == 4  # nothing run again
    assert res["complete"] and res["metrics"]["overall"]["seeds"] == 1
    results = json.loads((run / "results.json").read_text())
    for r in results["episodes"]:
        del r["seed_index"]
    (run / "results.json").write_text(json.dumps(results))
    assert {r["seed_index"] for r in load_results(run)["episodes"]} == {0}


def test_table_cell_shows_episodes_by_seeds_and_the_seed_spread(tmp_path, capsys):
    cell = _cell(level_summary(_rows({e: [int(e < 8), int(e < 2)] for e in range(10)}), {}), "success")
    assert cell == "50.0 [20, 80] (n=10x2, seeds 20-80)"
    partial = level_summary(_rows({0: [1, 0], 1: [1]}), {})
    assert "(n=3 of 2x2, seeds 0-100)" in _cell(partial, "success")
    one = _cell(level_summary(_rows({e: [int(e < 8)] for e in range(10)}), {}), "success")
    assert one == "80.0 [49, 94] (n=10)"  # one seed: as before

    run = tmp_path / "cli"
    assert cli.main(["eval", "--suite", "toy_reach", "--policy", COIN, "--tasks", "0", "--episodes", "3", "--seeds",
                     "2", "--workers", "1", "--run-dir", str(run), "--no-progress"]) == 0
    assert "(n=3x2, seeds " in capsys.readouterr().out
    assert "(n=3x2, seeds " in markdown_table([run], metric="final_distance")
    with pytest.raises(SystemExit):
        cli.main(["eval", "--suite", "toy_reach", "--seeds", "0", "--run-dir", str(tmp_path / "x")])
    assert "--seeds: expected an integer >= 1" in capsys.readouterr().err
