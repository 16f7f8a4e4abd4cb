"""The policy shipped in checkpoints/ (the README's main command evaluates it): small, with its whole lineage, an
image policy for LIBERO, and it runs the README's command on real LIBERO."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vla_bench.adapter import Observation
from vla_bench.embodiment import get_embodiment
from vla_bench.lineage import chain, read_lineage
from vla_bench.policies.base import make_policy

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints" / "tiny_libero_images"


def test_small_and_with_a_lineage_back_to_t2a():
    size = sum(f.stat().st_size for f in SHIPPED.rglob("*") if f.is_file())
    assert size <= 20 * 2**20, f"{size / 2**20:.1f} MB"
    records = chain(read_lineage(SHIPPED))
    assert [r["stage"] for r in records][:3] == ["t2a", "cpt", "sft"]
    assert {r["pipeline"] for r in records} == {"cpu_repro"}
    assert records[0]["data"]["targets"] == "full" and records[1]["data"]["images"]
    assert not (SHIPPED / "train_state.pt").exists() and not (SHIPPED / "rl_state.pt").exists()  # weights only


def test_an_image_policy_for_libero():
    spec = get_embodiment("libero_panda")
    policy = make_policy(str(SHIPPED), spec)
    assert policy.needs_images
    rng = np.random.default_rng(0)
    images = {tag: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for tag in spec.view_tags}
    obs = Observation(images=images, state=np.zeros(spec.state_dim, np.float32),
                      instruction="pick up the alphabet soup and place it in the basket", embodiment=spec)
    policy.reset(0)
    chunk = policy.act(obs)
    assert np.isfinite(chunk.actions).all() and chunk.actions.shape[0] >= 5


@pytest.mark.libero
@pytest.mark.skipif(importlib.util.find_spec("libero") is None, reason="LIBERO not installed (scripts/setup.sh)")
def test_the_readme_main_command_runs_it(tmp_path):
    readme = (REPO / "README.md").read_text()
    assert "--policy checkpoints/tiny_libero_images" in readme.split("Set up and run the tests")[0]
    done = subprocess.run([sys.executable, "-m", "vla_bench.cli", "eval", "--suite", "libero_object", "--tasks", "0",
                           "--episodes", "1", "--image-size", "64", "--policy", str(SHIPPED), "--workers", "1",
                           "--run-dir", str(tmp_path / "run"), "--no-progress"],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert done.returncode == 0, done.stderr
    row = json.loads((tmp_path / "run" / "episodes.jsonl").read_text().splitlines()[0])
    assert row["end"] in ("done", "budget") and not row.get("error")
