"""`vla-bench table --by stage`: rows from the checkpoints' lineage, the three formats, reference rows, the plots."""

import csv
import io
import json
import re
from dataclasses import asdict

import pytest

from vla_bench import cli
from vla_bench.envs.registry import get_suite
from vla_bench.eval import stage_table as st
from vla_bench.eval.results import load_results, write_results
from vla_bench.eval.runner import EvalConfig
from vla_bench.lineage import make_lineage, read_lineage, write_lineage

SUITES = ("libero_object", "simpler")
# successes out of 20 episodes, per stage and suite
SUCCESSES = {"cpt": {"libero_object": 9, "simpler": 5}, "sft": {"libero_object": 14, "simpler": 8},
             "rl": {"libero_object": 17}}
NOT_COMPARABLE = "stand-in assets: not comparable to published numbers"
PNG = b"\x89PNG\r\n\x1a\n"


def _checkpoint(root, stage, parent=None, pipeline="demo"):
    path = root / "ckpt" / (pipeline or "solo") / stage
    path.mkdir(parents=True)
    write_lineage(path, make_lineage(stage, path, data=[], config={}, progress={}, parent_path=parent,
                                     pipeline=pipeline))
    return path


def _evaluate(run_dir, checkpoint, suite, successes, episodes=20, seeds=1):
    """A results.json with the real schema: rows -> write_results, plus the checkpoint's lineage."""
    rows = [{"suite": suite, "task_index": i % 2, "task": f"task {i % 2}", "episode_id": i, "seed_index": k,
             "success": (i + k) % episodes < successes, "error": None}
            for i in range(episodes) for k in range(seeds)]
    record = {"metrics": [asdict(m) for m in get_suite(suite).metrics]}
    if suite == "simpler":
        record |= {"comparable_to_published": False, "note": NOT_COMPARABLE}
    config = EvalConfig(suites=[suite], policy=str(checkpoint), run_dir=str(run_dir), workers=1)
    run_dir.mkdir(parents=True)
    write_results(run_dir, config, rows, wall_seconds=1.0, complete=True, suites={suite: record})
    results = json.loads((run_dir / "results.json").read_text())
    results["policy_lineage"] = read_lineage(checkpoint)
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir / "results.json"


@pytest.fixture
def pipeline(tmp_path):
    """A pipeline run's layout: <run>/eval/<stage>/<suite>/results.json for cpt, sft (both suites) and rl."""
    parent = None
    for stage in ("cpt", "sft", "rl"):
        parent = _checkpoint(tmp_path, stage, parent)
        for suite, k in SUCCESSES[stage].items():
            _evaluate(tmp_path / "run" / "eval" / stage / suite, parent, suite, k)
    return tmp_path / "run"


def _expected(path, suite):
    m = load_results(path)["metrics"]["suites"][suite]["metrics"]["success"]
    return 100 * m["value"], 100 * m["ci95"][0], 100 * m["ci95"][1], m["n"]


def test_markdown_rows_columns_and_cells_follow_the_results(pipeline):
    text = st.render(st.stage_table([pipeline]), "markdown")
    lines = text.splitlines()
    assert lines[0] == "| stage | lineage | libero_object | simpler |"
    rows = [line.split(" | ") for line in lines[2:5]]
    assert [r[0].strip("| ") for r in rows] == ["CPT", "+ SFT", "+ RL"]
    assert [r[1] for r in rows] == ["cpt", "cpt > sft", "cpt > sft > rl"]
    for r, stage in zip(rows, ("cpt", "sft", "rl"), strict=True):
        for cell, suite in zip(r[2:], SUITES, strict=True):
            cell = cell.strip("| ")
            if suite not in SUCCESSES[stage]:
                assert cell == "-"
                continue
            value, lo, hi, n = _expected(pipeline / "eval" / stage / suite / "results.json", suite)
            assert cell.startswith(f"{value:.1f} [{lo:.0f}, {hi:.0f}] n={n}")
            assert cell.endswith(st.NOT_COMPARABLE) == (suite == "simpler")
    assert f"{st.NOT_COMPARABLE} simpler: {NOT_COMPARABLE}" in text
    assert "Qwen" not in text  # no reference unless asked


def test_csv_and_latex_carry_the_same_numbers(pipeline):
    table = st.stage_table([pipeline])
    lines = list(csv.DictReader(io.StringIO(st.render(table, "csv"))))
    assert len(lines) == 5 and {r["source"] for r in lines} == {"ours"}
    latex = st.render(table, "latex")
    for r in lines:
        value, lo, hi, n = _expected(r["file"], r["suite"])
        assert float(r["value"]) == pytest.approx(value, abs=1e-3)
        assert (float(r["ci95_low"]), float(r["ci95_high"])) == pytest.approx((lo, hi), abs=1e-3)
        assert int(r["n"]) == n and r["seeds"] == "1" and r["metric"] == "success"
        assert (r["note"] == NOT_COMPARABLE) == (r["suite"] == "simpler")
        row = next(line for line in latex.splitlines() if line.startswith(r["row"] + " &"))
        assert rf"{value:.1f} {{\scriptsize [{lo:.0f}, {hi:.0f}] n={n}}}" in row
    assert [(r["row"], r["lineage"]) for r in lines][::2] == [("CPT", "cpt"), ("+ SFT", "cpt > sft"),
                                                             ("+ RL", "cpt > sft > rl")]
    assert r"\toprule" in latex and r"libero\_object" in latex and r"$^\dagger$" in latex


def test_reference_rows_are_labeled_and_never_touch_our_cells(pipeline):
    plain, with_ref = st.stage_table([pipeline]), st.stage_table([pipeline], reference="qwen-vla")
    md = st.render(with_ref, "markdown")
    ours = st.render(plain, "markdown").split("\n\n")[0]
    assert md.startswith(ours + "\n")  # our rows are the same with and without the reference
    block = md.split("\n\n")[0].splitlines()[len(ours.splitlines()):]
    assert block[0].startswith("| **Qwen-VLA (paper), reference (not our runs)**")
    # Table 11 (LIBERO 90.8 / 97.8 / 97.9 with the mean-of-four footnote; Simpler) and the T2A ablation (Simpler only)
    assert block[1:] == ["| CPT | paper Table 11 | 90.8 \u2021 | 64.3 |",
                         "| + SFT | paper Table 11 | 97.8 \u2021 | 70.8 |",
                         "| + RL | paper Table 11 | 97.9 \u2021 | 73.7 |",
                         "| + SFT, no T2A | paper T2A ablation (Simpler-WidowX) | - | 60.9 |",
                         "| + SFT, full-sequence T2A (20% synthetic + 80% real) | paper T2A ablation (Simpler-WidowX)"
                         " | - | 71.1 |"]
    assert "mean over the four standard suites" in md
    plain_csv = list(csv.DictReader(io.StringIO(st.render(plain, "csv"))))
    ref_csv = list(csv.DictReader(io.StringIO(st.render(with_ref, "csv"))))
    assert [r for r in ref_csv if r["source"] == "ours"] == plain_csv
    refs = [r for r in ref_csv if r["source"] != "ours"]
    assert {r["source"] for r in refs} == {"reference:qwen-vla"} and len(refs) == 8
    assert all(r["n"] == "" and r["ci95_low"] == "" for r in refs)
    latex = st.render(with_ref, "latex")
    assert latex.count(r"\midrule") == 2 and r"\textit{Qwen-VLA (paper), reference (not our runs)}" in latex
    assert [c.value for r in with_ref.rows for c in r.cells.values()] == \
        [c.value for r in plain.rows for c in r.cells.values()]


def test_reference_numbers_are_the_papers(tmp_path):
    doc = json.loads((st.REFERENCE_DIR / "qwen_vla.json").read_text())
    table11 = {r["label"]: r["values"] for r in doc["rows"] if r["source"] == "paper Table 11"}
    assert table11["+ RL"] == {"Simpler": 73.7, "RoboCasa": 56.7, "RoboTwin-E": 86.1, "RoboTwin-H": 87.2,
                               "LIBERO": 97.9, "Simpler-OOD": 32.0, "DOMINO SR": 26.6}
    nav = st.load_reference("qwen-vla", "success", ["r2r", "rxr"])
    assert [(r.label, r.values) for r in nav.rows] == [("navigation", {"r2r": (57.5, "R2R SR (Val-Unseen)"),
                                                                       "rxr": (59.6, "RxR SR")})]
    assert st.load_reference("qwen-vla", "osr", ["r2r"]).rows[0].values == {"r2r": (69.0, "R2R OS (Val-Unseen)")}


def test_unknown_reference_and_uncovered_suites_are_errors(pipeline, tmp_path):
    with pytest.raises(KeyError, match="unknown reference 'gpt-vla'; known: qwen-vla"):
        st.stage_table([pipeline], reference="gpt-vla")
    with pytest.raises(ValueError, match="reports grasped on none of this table's suites"):
        st.stage_table([pipeline], metric="grasped", reference="qwen-vla")


def test_two_results_for_one_cell_is_an_error_naming_both(pipeline, tmp_path):
    again = _evaluate(tmp_path / "again", tmp_path / "ckpt" / "demo" / "sft", "libero_object", 3)
    first = pipeline / "eval" / "sft" / "libero_object" / "results.json"
    with pytest.raises(ValueError, match="two results for stage 'sft' of demo on libero_object") as e:
        st.stage_table([pipeline, again])
    assert str(first) in str(e.value) and str(again) in str(e.value)


def test_results_without_lineage_name_the_file(pipeline, tmp_path):
    bare = tmp_path / "scripted" / "results.json"
    _evaluate(bare.parent, tmp_path / "ckpt" / "demo" / "cpt", "libero_object", 3)
    results = json.loads(bare.read_text())
    results["policy_lineage"] = None
    bare.write_text(json.dumps(results))
    with pytest.raises(ValueError, match=f"{re.escape(str(bare))}: the evaluated policy .* has no lineage"):
        st.stage_table([pipeline, bare])


def test_seeds_pipelines_and_order(tmp_path):
    cpt = _checkpoint(tmp_path, "cpt", pipeline="b")
    rl = _checkpoint(tmp_path, "rl", parent=_checkpoint(tmp_path, "sft", parent=cpt, pipeline="b"), pipeline="b")
    other = _checkpoint(tmp_path, "sft", pipeline="a")
    # given rl first: rows still follow the lineage's depth; pipelines in the order given
    files = [_evaluate(tmp_path / "b_rl", rl, "libero_object", 12, seeds=3),
             _evaluate(tmp_path / "b_cpt", cpt, "libero_object", 6), _evaluate(tmp_path / "a", other, "simpler", 4)]
    table = st.stage_table(files)
    assert [(r.group, r.title) for r in table.rows] == [("b", "CPT"), ("b", "+ RL"), ("a", "SFT")]
    md = st.render(table, "markdown").splitlines()
    assert md[0] == "| pipeline | stage | lineage | libero_object | simpler |"
    m = load_results(files[0])["metrics"]["suites"]["libero_object"]["metrics"]["success"]
    assert m["seeds"] == 3
    assert md[3] == (f"| b | + RL | cpt > sft > rl | {100 * m['value']:.1f} [{100 * m['ci95'][0]:.0f}, "
                     f"{100 * m['ci95'][1]:.0f}] n=20x3 | - |")
    assert "n=20$\\times$3" in st.render(table, "latex")


def test_cli_formats_out_plot_and_errors(pipeline, tmp_path, capsys):
    assert cli.main(["table", str(pipeline / "eval" / "cpt" / "simpler"), "--format", "latex"]) == 2
    assert "--format latex needs --by stage" in capsys.readouterr().err
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "t.csv", tmp_path / "stages.png"
    assert cli.main(["table", "--by", "stage", str(pipeline), "--format", "csv", "--out", str(out),
                     "--reference", "qwen-vla", "--plot", str(png)]) == 0
    assert out.read_text() == st.render(st.stage_table([pipeline], reference="qwen-vla"), "csv")
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000


def test_plot_rl_writes_a_png_and_skips_iterations_without_episodes(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from vla_bench.eval import plots

    run = tmp_path / "rl_run"
    run.mkdir()
    lines = ["iteration,charts/success,charts/episodic_return,charts/episodes,charts/env_steps"]
    lines += [f"{i},{'' if i % 4 == 0 else i / 40},{'' if i % 4 == 0 else i / 50},{0 if i % 4 == 0 else 3},"
              f"{1000 * i}" for i in range(1, 31)]
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    (run / "rl_config.json").write_text(json.dumps({"suite": "libero_object", "tasks": [0, 1], "noise": "flow_sde",
                                                    "sde_a": 0.5}))
    png = tmp_path / "rl.png"
    assert cli.main(["plot-rl", str(run), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000
    assert plots._moving_average([0.0, 100.0, 50.0], [1, 3, 1], window=3) == [75.0, 70.0, 87.5]  # centred, weighted
    assert cli.main(["plot-rl", str(tmp_path), "--out", str(png)]) == 2
    assert "not an RL run directory" in capsys.readouterr().err


def test_a_chain_of_single_commands_is_one_group(tmp_path):
    sft = _checkpoint(tmp_path, "sft", pipeline=None)  # `vla-bench train`, then `vla-bench rl --init`
    rl = _checkpoint(tmp_path, "rl", parent=sft, pipeline=None)
    table = st.stage_table([_evaluate(tmp_path / "e_rl", rl, "libero_object", 9),
                            _evaluate(tmp_path / "e_sft", sft, "libero_object", 5)])
    assert [(r.group, r.title, r.lineage) for r in table.rows] == [("sft (no pipeline)", "SFT", "sft"),
                                                                   ("sft (no pipeline)", "+ RL", "sft > rl")]
