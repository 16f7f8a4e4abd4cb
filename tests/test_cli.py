import json
import subprocess
import sys

import pytest

from vla_bench import cli
from vla_bench.envs import libero_setup


def test_help_and_core_imports_need_no_simulator_or_torch():
    code = ("import sys, vla_bench, vla_bench.cli, vla_bench.eval.runner, vla_bench.envs.libero\n"
            "try:\n    vla_bench.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('libero', 'robosuite', 'mujoco', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "vla-bench eval --suite" in out  # the examples are in --help
    assert out.strip().splitlines()[-1] == "[]"


def test_eval_ls_and_table_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["eval", "--suite", "toy_reach", "--policy", "vla_bench.envs.toy:ToyScriptedPolicy",
                     "--episodes", "3", "--tasks", "0,2", "--workers", "1", "--run-dir", str(run),
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| run | policy | toy_reach | overall |" in out and "100.0 [" in out and "(n=6)" in out
    res = json.loads((run / "results.json").read_text())
    assert {r["task_index"] for r in res["episodes"]} == {0, 2}
    assert cli.main(["ls", "--suite", "toy_reach"]) == 0
    assert "reach the red target" in capsys.readouterr().out
    assert cli.main(["table", str(run), str(run / "results.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[2] == lines[3]  # header, rule, and the same run read two ways


@pytest.mark.parametrize("argv,match", [
    (["eval", "--suite", "libero_100"], "valid suites: libero, libero_spatial"),
    (["eval", "--suite", "toy_reach", "--policy", "nope"], "unknown policy 'nope'"),
    (["eval", "--suite", "toy_reach", "--tasks", "7"], "tasks 0..3"),
    (["eval", "--suite", "toy_reach", "--resume"], "--resume needs the --run-dir"),
    (["table", "/nonexistent/run"], "no results at"),
])
def test_clear_errors(argv, match, capsys, tmp_path):
    if argv[0] == "eval" and "--resume" not in argv:
        argv = argv + ["--run-dir", str(tmp_path / "r")]
    assert cli.main(argv) == 2
    assert match in capsys.readouterr().err


def test_table_names_a_file_that_is_not_results_json(tmp_path, capsys):
    log = tmp_path / "eval.log"  # what `table runs/eval_*` picks up beside the run directories
    log.write_text("[robosuite WARNING] ...\n")
    assert cli.main(["table", str(log)]) == 2
    assert f"{log} is not a results.json" in capsys.readouterr().err


def test_missing_libero_names_the_setup_command(monkeypatch):
    monkeypatch.setattr(libero_setup, "_package_dir", lambda name: None)
    with pytest.raises(libero_setup.LiberoNotInstalled, match="scripts/setup.sh"):
        libero_setup.ensure_libero_ready()


def test_missing_assets_name_the_setup_command(monkeypatch, tmp_path):
    root = tmp_path / "libero" / "libero"
    (root / "bddl_files").mkdir(parents=True)
    monkeypatch.setattr(libero_setup, "_package_dir",
                        lambda name: tmp_path / "libero" if name == "libero" else None)
    monkeypatch.setenv("LIBERO_CONFIG_PATH", str(tmp_path / "cfg"))
    with pytest.raises(libero_setup.LiberoNotInstalled, match="assets are missing.*scripts/setup.sh"):
        libero_setup.ensure_libero_ready()
    assert (tmp_path / "cfg" / "config.yaml").read_text().startswith(f"benchmark_root: {root}")
