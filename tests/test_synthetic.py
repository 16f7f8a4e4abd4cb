"""The synthetic T2A corpus: deterministic, 6 families x 7 robot conventions, trajectories that reach their end."""

import json

import numpy as np
import pytest

from vla_bench import cli
from vla_bench.data.lerobot import DatasetReader
from vla_bench.data.synthetic import (FAMILIES, ROBOTS, DUAL_ARM_BASE_Y, forward_kinematics, inverse_kinematics,
                                      rotvec_to_quat, synthesize_episode, tool_quaternion, write_corpus, _qmul)
from vla_bench.rotations import quat_to_axis_angle
from vla_bench.embodiment import get_embodiment

ROBOT_IDS = [r.embodiment for r in ROBOTS]


def test_coverage_of_families_and_control_conventions():
    assert len(FAMILIES) >= 6 and len(ROBOTS) >= 6
    conventions = {(r.space, r.mode, get_embodiment(r.embodiment).arms) for r in ROBOTS}
    assert {c[0] for c in conventions} == {"eef", "joint"} and {c[1] for c in conventions} == {"delta", "absolute"}
    assert {c[2] for c in conventions} == {1, 2} and len(conventions) >= 6
    for robot in ROBOTS:
        spec = get_embodiment(robot.embodiment)
        eps = [synthesize_episode(robot, 0, i) for i in range(len(FAMILIES))]
        assert {e.family for e in eps} == set(FAMILIES)
        for ep in eps:
            assert ep.action.shape == (len(ep.action), spec.action_dim) and ep.state.shape[1] == spec.state_dim
            assert ep.action.dtype == np.float32 and np.all(np.isfinite(ep.action)) and len(ep.action) > 10
            for b in spec.binary_channels:
                assert set(np.unique(ep.action[:, b])) <= {-1.0, 1.0}


@pytest.mark.parametrize("robot", ROBOTS, ids=ROBOT_IDS)
def test_deterministic_per_seed(robot):
    a, b, c = (synthesize_episode(robot, s, 7) for s in (3, 3, 4))
    assert a.instruction == b.instruction and np.array_equal(a.action, b.action) and np.array_equal(a.state, b.state)
    assert not (a.action.shape == c.action.shape and np.array_equal(a.action, c.action))


def final_pose_from_actions(robot, ep, arm):
    """Integrate (delta) or read (absolute) one arm's actions: (position, quaternion-or-None, yaw, tilt)."""
    spec = get_embodiment(robot.embodiment)
    width = spec.action_dim // spec.arms
    a = ep.action[:, arm * width:(arm + 1) * width].astype(np.float64)
    s0 = ep.state[0, arm * (spec.state_dim // spec.arms):].astype(np.float64)
    if robot.space == "eef":
        if robot.mode == "absolute":
            return a[-1, :3], a[-1, 3:6]
        pos = s0[:3] + a[:, :3].sum(0) / robot.pos_scale
        q = tool_quaternion(ep.tracks[arm, 0, 3], ep.tracks[arm, 0, 4])
        for dr in a[:, 3:6] / robot.rot_scale:
            q = _qmul(rotvec_to_quat(dr), q)
        return pos, q
    q = a[-1, :-1] if robot.mode == "absolute" else s0[:robot.joints] + a[:, :-1].sum(0)
    pos, yaw, tilt = forward_kinematics(q[None])
    base = 0.0 if spec.arms == 1 else (DUAL_ARM_BASE_Y if arm == 0 else -DUAL_ARM_BASE_Y)
    return pos[0] + [0.0, base, 0.0], (yaw[0], tilt[0])


@pytest.mark.parametrize("robot", ROBOTS, ids=ROBOT_IDS)
def test_trajectories_end_at_their_goal_and_at_rest(robot):
    spec = get_embodiment(robot.embodiment)
    for i in range(len(FAMILIES)):
        ep = synthesize_episode(robot, 1, i)
        for arm in range(spec.arms):
            goal = ep.tracks[arm, -1]
            pos, rot = final_pose_from_actions(robot, ep, arm)
            np.testing.assert_allclose(pos, goal[:3], atol=1e-5)
            if robot.space == "joint":
                np.testing.assert_allclose(rot, goal[3:5], atol=1e-5)
            elif robot.mode == "absolute":
                np.testing.assert_allclose(rot, quat_to_axis_angle(tool_quaternion(goal[3], goal[4])), atol=1e-5)
            else:
                q_goal = tool_quaternion(goal[3], goal[4])
                assert abs(abs(np.dot(rot, q_goal)) - 1) < 1e-6  # same rotation (q and -q)
        width = spec.action_dim // spec.arms
        grippers = [a * width + width - 1 for a in range(spec.arms)]
        # the episode ends holding still: its last actions are zero deltas / a repeated absolute target
        motion = np.delete(ep.action[-2:], grippers, axis=1)
        assert np.all(motion == 0) if robot.mode == "delta" else np.all(motion[0] == motion[1])
        # the gripper command of the last step is the gripper state the program ends in
        closed = ep.tracks[:, -1, 5]
        last = ep.action[-1, grippers]
        want = np.where(closed > 0.5, 1.0, -1.0) if robot.gripper == "binary" else 1.0 - closed
        np.testing.assert_allclose(last, want, atol=1e-6)


def test_libero_deltas_stay_in_the_controllers_range():
    robot = ROBOTS[ROBOT_IDS.index("libero_panda")]
    peak = max(np.abs(synthesize_episode(robot, 0, i).action[:, :6]).max() for i in range(24))
    assert 0.05 < peak <= 1.0


def test_kinematics_round_trip():
    rng = np.random.default_rng(0)
    pos = np.column_stack([rng.uniform(0.3, 0.7, 50), rng.uniform(-0.3, 0.3, 50), rng.uniform(0.0, 0.45, 50)])
    yaw, tilt = rng.uniform(-1, 1, 50), rng.uniform(0, 2, 50)
    for joints in (5, 6, 7):
        q = inverse_kinematics(pos, yaw, tilt, joints)
        assert q.shape == (50, joints)
        p, y, t = forward_kinematics(q)
        np.testing.assert_allclose(p, pos, atol=1e-9)
        np.testing.assert_allclose(y, yaw, atol=1e-9)
        np.testing.assert_allclose(t, tilt, atol=1e-9)
    with pytest.raises(ValueError, match="reach"):
        inverse_kinematics(np.array([[2.0, 0.0, 0.3]]), np.zeros(1), np.zeros(1), 6)


def test_written_corpus_is_deterministic_and_resumes(tmp_path):
    robots = ["bridge_widowx", "synth_dual_eef_delta"]
    write_corpus(tmp_path / "a", 8, seed=5, robots=robots, progress=False)
    write_corpus(tmp_path / "b", 3, seed=5, robots=robots, progress=False)
    write_corpus(tmp_path / "b", 8, seed=5, robots=robots, progress=False)  # appends episodes 3..7
    for name in robots:
        a, b = DatasetReader(tmp_path / "a" / name), DatasetReader(tmp_path / "b" / name)
        assert a.num_episodes == b.num_episodes == 8 and a.tasks == b.tasks
        np.testing.assert_array_equal(a.action, b.action)
        np.testing.assert_array_equal(a.state, b.state)
        assert [b.episode_extras(i)["synthetic_index"] for i in range(8)] == list(range(8))
        ep = synthesize_episode(ROBOTS[ROBOT_IDS.index(name)], 5, 6)
        np.testing.assert_array_equal(a.episode(6).action, ep.action)
        assert a.episode(6).task == ep.instruction and a.view_tags == []
    with pytest.raises(ValueError, match="seed"):
        write_corpus(tmp_path / "a", 9, seed=6, robots=robots, progress=False)


def test_cli_synth(tmp_path, capsys):
    assert cli.main(["synth", "--out", str(tmp_path), "--episodes", "6", "--seed", "2", "--no-progress"]) == 0
    frames = json.loads(capsys.readouterr().out)["frames"]
    assert sorted(frames) == sorted(ROBOT_IDS)
    for name in ROBOT_IDS:
        ds = DatasetReader(tmp_path / name)  # the embodiment comes from info.json, registered or not
        assert ds.embodiment.name == name and ds.num_frames == frames[name] and ds.num_episodes == 6
        assert {ds.episode_extras(i)["family"] for i in range(6)} == set(FAMILIES)
        assert ds.norm_stats().action.dim == get_embodiment(name).action_dim
    assert cli.main(["synth", "--out", str(tmp_path), "--robots", "nope", "--no-progress"]) == 2
