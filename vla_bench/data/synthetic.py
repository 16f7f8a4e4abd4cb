"""A synthetic text-action corpus for T2A pretraining: instructions paired with whole kinematic trajectories.

T2A teaches the action expert a language-conditioned motor prior before it sees images, so what matters is that
instructions, embodiments and motions co-vary plausibly, not physics. Each episode is:
- a task family (pick-place, push, drawer open/close, stack, pour, wipe) whose motion program is a list of
  Cartesian waypoints (randomized object poses, approach heights, yaw) and gripper events;
- randomized kinematics (mean speed, rotation speed, gripper timing), each move interpolated with a minimum-jerk
  profile at the robot's control rate; the sequence starts at rest and ends holding still after the retreat;
- an instruction from the family's templates with randomized object names and colours;
- rendered into a robot configuration's native convention: end-effector or joint space, delta or absolute,
  single or dual arm, binary or continuous gripper. Joint-space robots go through `inverse_kinematics`, an analytic
  map of a toy arm (base yaw, shoulder, elbow, wrist pitch, wrist roll split over the remaining joints), not the
  real robot's kinematics: it gives joint trajectories with the right structure and channel count.

Storage choice: one LeRobotDataset (no images) per robot configuration, `<out>/<embodiment>/`, because each
configuration has its own channel count and LeRobot features have fixed shapes. Episode extras: family, seed,
synthetic_index. Everything is a function of (seed, embodiment name, episode index): deterministic, and a rerun
with a larger --episodes appends the missing episodes.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vla_bench.data.lerobot import DatasetWriter, Episode
from vla_bench.embodiment import EmbodimentSpec, get_embodiment, register_embodiment
from vla_bench.rotations import quat_to_axis_angle

# The toy arm of the joint-space configurations (metres): shoulder height above the table, upper arm, forearm.
SHOULDER_Z, UPPER_ARM, FOREARM = 0.35, 0.45, 0.45
FINGER_OPEN = 0.04  # finger joint position of an open gripper (LIBERO-like state), metres
DUAL_ARM_BASE_Y = 0.3  # dual-arm robots: arm bases at y = +0.3 (left) and -0.3 (right)
END_HOLD_SECONDS = 0.3  # every episode ends holding still, so full-sequence targets show where a task ends


@dataclass(frozen=True)
class RobotConfig:
    """How one robot configuration turns a Cartesian track into its native actions and state."""

    embodiment: str  # registered EmbodimentSpec name (arms, control rate, channel names)
    space: str  # "eef": position + axis-angle per arm; "joint": joint positions of the toy arm per arm
    mode: str  # "delta": the change to the next pose; "absolute": the next pose itself
    gripper: str  # "binary": -1 open / +1 closed; "continuous": opening in [0, 1], 1 open
    joints: int = 0  # joints per arm (joint space; >= 5)
    pos_scale: float = 1.0  # native units per metre of an eef delta (LIBERO's OSC: 1 unit = 5 cm)
    rot_scale: float = 1.0  # native units per radian of an eef delta (LIBERO's OSC: 1 unit = 0.5 rad)


def _joint_names(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(n))


# Embodiments only the synthetic corpus uses. Their robot tags name the control convention, because the embodiment
# prompt is the model's only way to tell two conventions of the same robot apart.
SYNTHETIC_EMBODIMENTS = (
    EmbodimentSpec(name="synth_ur5e_joint_delta", robot_tag="UR5e (joint deltas)", arms=1, control_hz=10,
                   chunk_size=10, action_names=_joint_names("dq", 6) + ("gripper",), view_tags=("cam_front",),
                   state_dim=7, binary_channels=(6,), notes="synthetic: 6 joint deltas (rad) + gripper -1/+1"),
    EmbodimentSpec(name="synth_panda_joint_abs", robot_tag="Franka Panda (absolute joint positions)", arms=1,
                   control_hz=15, chunk_size=15, action_names=_joint_names("q", 7) + ("gripper",),
                   view_tags=("cam_front",), state_dim=8,
                   notes="synthetic: 7 absolute joint positions (rad) + gripper opening in [0, 1]"),
    EmbodimentSpec(name="synth_xarm_eef_abs", robot_tag="xArm 6 (absolute end-effector poses)", arms=1,
                   control_hz=10, chunk_size=10, action_names=("x", "y", "z", "rx", "ry", "rz", "gripper"),
                   view_tags=("cam_front",), state_dim=8, binary_channels=(6,),
                   notes="synthetic: eef position (m) + axis-angle + gripper -1/+1"),
    EmbodimentSpec(name="synth_dual_eef_delta", robot_tag="two Piper arms (end-effector deltas)", arms=2,
                   control_hz=20, chunk_size=20,
                   action_names=tuple(f"{s}_{k}" for s in ("left", "right")
                                      for k in ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")),
                   view_tags=("ego",), state_dim=16, binary_channels=(6, 13),
                   notes="synthetic: per arm eef delta position (m) + delta axis-angle + gripper -1/+1"),
)
for _spec in SYNTHETIC_EMBODIMENTS:
    register_embodiment(_spec)

ROBOTS: tuple[RobotConfig, ...] = (
    RobotConfig("libero_panda", "eef", "delta", "binary", pos_scale=1 / 0.05, rot_scale=1 / 0.5),
    RobotConfig("bridge_widowx", "eef", "delta", "binary"),
    RobotConfig("synth_xarm_eef_abs", "eef", "absolute", "binary"),
    RobotConfig("synth_dual_eef_delta", "eef", "delta", "binary"),
    RobotConfig("synth_ur5e_joint_delta", "joint", "delta", "binary", joints=6),
    RobotConfig("synth_panda_joint_abs", "joint", "absolute", "continuous", joints=7),
    RobotConfig("aloha_agilex", "joint", "absolute", "continuous", joints=6),
)

# ---------------------------------------------------------------------------------------------------------------
# Rotations: quaternions (x, y, z, w) as robosuite writes them; the tool points down and turns by yaw about the
# vertical, and a pour tilts it by `tilt` about its own x axis.


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of quaternion arrays [..., 4] (x, y, z, w)."""
    av, aw, bv, bw = a[..., :3], a[..., 3:], b[..., :3], b[..., 3:]
    return np.concatenate([aw * bv + bw * av + np.cross(av, bv), aw * bw - np.sum(av * bv, -1, keepdims=True)], -1)


def tool_quaternion(yaw: np.ndarray, tilt: np.ndarray) -> np.ndarray:
    """Orientation of a downward tool turned by `yaw` and tilted by `tilt`: qz(yaw) * qx(pi + tilt)."""
    yaw, tilt = np.asarray(yaw, np.float64), np.asarray(tilt, np.float64)
    zero = np.zeros_like(yaw)
    qz = np.stack([zero, zero, np.sin(yaw / 2), np.cos(yaw / 2)], -1)
    half = (math.pi + tilt) / 2
    qx = np.stack([np.sin(half), zero, zero, np.cos(half)], -1)
    return _qmul(qz, qx)


def rotation_delta(q_from: np.ndarray, q_to: np.ndarray) -> np.ndarray:
    """World-frame rotation vector taking q_from to q_to (the shortest way)."""
    conj = q_from * np.array([-1.0, -1.0, -1.0, 1.0])
    d = _qmul(q_to, conj)
    d = np.where(d[..., 3:] < 0, -d, d)
    norm = np.linalg.norm(d[..., :3], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(norm, d[..., 3:])
    return np.where(norm > 1e-12, d[..., :3] * angle / np.maximum(norm, 1e-12), 0.0)


def rotvec_to_quat(v: np.ndarray) -> np.ndarray:
    """Rotation vector -> quaternion (x, y, z, w)."""
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    axis = np.where(angle > 1e-12, v / np.maximum(angle, 1e-12), 0.0)
    return np.concatenate([axis * np.sin(angle / 2), np.cos(angle / 2)], -1)


# ---------------------------------------------------------------------------------------------------------------
# The toy arm: analytic inverse and forward kinematics in the arm's base frame.


def inverse_kinematics(pos: np.ndarray, yaw: np.ndarray, tilt: np.ndarray, joints: int) -> np.ndarray:
    """Joint positions [N, joints] that put the wrist at `pos` [N, 3] with the tool's yaw and tilt.

    Base yaw q0 points the arm at the target; shoulder q1 and elbow q2 solve the planar two-link problem; wrist
    pitch q3 keeps the tool vertical (plus the tilt); the yaw left over is split evenly over the roll joints."""
    if joints < 5:
        raise ValueError(f"the toy arm needs >= 5 joints, got {joints}")
    x, y, z = np.asarray(pos, np.float64).T
    q0 = np.arctan2(y, x)
    r, h = np.hypot(x, y), z - SHOULDER_Z
    c2 = (r**2 + h**2 - UPPER_ARM**2 - FOREARM**2) / (2 * UPPER_ARM * FOREARM)
    if np.any(np.abs(c2) > 1):
        raise ValueError("target out of the toy arm's reach")
    q2 = np.arccos(c2)
    q1 = np.arctan2(h, r) - np.arctan2(FOREARM * np.sin(q2), UPPER_ARM + FOREARM * np.cos(q2))
    q3 = -math.pi / 2 - q1 - q2 + tilt
    rolls = np.repeat(((yaw - q0) / (joints - 4))[:, None], joints - 4, axis=1)
    return np.column_stack([q0, q1, q2, q3, rolls])


def forward_kinematics(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wrist position [N, 3], yaw [N], tilt [N]) of joint positions [N, joints]: the inverse of the above."""
    q0, q1, q2, q3 = np.asarray(q, np.float64)[:, :4].T
    r = UPPER_ARM * np.cos(q1) + FOREARM * np.cos(q1 + q2)
    h = UPPER_ARM * np.sin(q1) + FOREARM * np.sin(q1 + q2)
    pos = np.column_stack([r * np.cos(q0), r * np.sin(q0), SHOULDER_Z + h])
    return pos, q0 + q[:, 4:].sum(1), q3 + math.pi / 2 + q1 + q2


# ---------------------------------------------------------------------------------------------------------------
# Motion programs. A pose is (x, y, z, yaw, tilt, closed): `closed` is the gripper's closedness in [0, 1].


@dataclass
class Kinematics:
    """Randomized timing of one episode."""

    hz: float  # control rate (from the embodiment)
    speed: float  # mean Cartesian speed of a move, m/s
    rot_speed: float  # mean rotation speed, rad/s
    grip_seconds: float  # time to open or close the gripper


def _min_jerk(s: np.ndarray) -> np.ndarray:
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def run_program(start: np.ndarray, program: list[tuple], kin: Kinematics, rng: np.random.Generator) -> np.ndarray:
    """The pose track [T+1, 6] of a program of ("move", xyz, yaw, tilt, slow), ("grip", closed), ("wait", s)."""
    track = [np.asarray(start, np.float64)]
    for op in program:
        pose = track[-1]
        if op[0] == "move":
            _, xyz, yaw, tilt, slow = op
            goal = np.array([*xyz, yaw, tilt, pose[5]])
            speed = kin.speed * (0.5 if slow else 1.0) * rng.uniform(0.85, 1.15)
            seconds = max(np.linalg.norm(goal[:3] - pose[:3]) / speed,
                          np.abs(goal[3:5] - pose[3:5]).max() / kin.rot_speed, 1 / kin.hz)
            n = math.ceil(seconds * kin.hz)
            track += list(pose + _min_jerk(np.arange(1, n + 1) / n)[:, None] * (goal - pose))
        elif op[0] == "grip":
            n = math.ceil(kin.grip_seconds * kin.hz)
            goal = np.array([*pose[:5], float(op[1])])
            track += list(pose + (np.arange(1, n + 1) / n)[:, None] * (goal - pose))
        else:  # "wait"
            track += [pose] * math.ceil(op[1] * kin.hz)
    return np.stack(track)


def _move(xy, z: float, yaw: float, tilt: float = 0.0, slow: bool = False) -> tuple:
    return ("move", (float(xy[0]), float(xy[1]), float(z)), float(yaw), float(tilt), slow)


def _pick(xy, z: float, yaw: float) -> list[tuple]:
    return [_move(xy, z + 0.12, yaw), _move(xy, z, yaw, slow=True), ("grip", 1), _move(xy, z + 0.15, yaw)]


def _place(xy, z: float, yaw: float) -> list[tuple]:
    return [_move(xy, z + 0.12, yaw), _move(xy, z, yaw, slow=True), ("grip", 0), _move(xy, z + 0.12, yaw)]


@dataclass
class Workspace:
    """Where objects of one episode may lie (the active arm's side of the table for dual-arm robots)."""

    x: tuple[float, float]
    y: tuple[float, float]

    def place(self, rng: np.random.Generator, n: int, min_dist: float = 0.12) -> list[np.ndarray]:
        """`n` object positions (x, y) at least `min_dist` apart."""
        while True:
            pts = [np.array([rng.uniform(*self.x), rng.uniform(*self.y)]) for _ in range(n)]
            if all(np.linalg.norm(a - b) >= min_dist for i, a in enumerate(pts) for b in pts[i + 1:]):
                return pts


COLORS = ("red", "green", "blue", "yellow", "orange", "purple", "white", "black", "pink", "brown")
OBJECTS = ("apple", "banana", "mug", "cup", "soda can", "bottle", "toy car", "tennis ball", "marker", "block")
RECEPTACLES = (("plate", "on"), ("bowl", "in"), ("basket", "in"), ("tray", "on"), ("box", "into"), ("pan", "in"))
DIRECTIONS = {"to the left": (0.0, 1.0), "to the right": (0.0, -1.0), "away from the robot": (1.0, 0.0),
              "toward the robot": (-1.0, 0.0)}  # phrase -> push direction (x away from the robot, y to its left)


def _pick_place(rng, ws: Workspace) -> tuple[str, list[tuple]]:
    obj, target = ws.place(rng, 2)
    color, name = rng.choice(COLORS), rng.choice(OBJECTS)
    receptacle, prep = RECEPTACLES[rng.integers(len(RECEPTACLES))]
    text = rng.choice(["pick up the {c} {o} and place it {p} the {r}", "put the {c} {o} {p} the {r}",
                       "move the {c} {o} {p} the {r}"]).format(c=color, o=name, p=prep, r=receptacle)
    yaw = rng.uniform(-0.6, 0.6)
    return text, _pick(obj, 0.03, yaw) + _place(target, 0.06, yaw + rng.uniform(-0.3, 0.3))


def _push(rng, ws: Workspace) -> tuple[str, list[tuple]]:
    (obj,) = ws.place(rng, 1)
    direction = rng.choice(list(DIRECTIONS))
    vec, dist, yaw = np.array(DIRECTIONS[direction]), rng.uniform(0.08, 0.18), rng.uniform(-0.3, 0.3)
    start, end = obj - 0.07 * vec, obj + dist * vec
    text = rng.choice(["push the {c} {o} {d}", "slide the {c} {o} {d}",
                       "nudge the {c} {o} {d}"]).format(c=rng.choice(COLORS), o=rng.choice(OBJECTS), d=direction)
    return text, [("grip", 1), _move(start, 0.12, yaw), _move(start, 0.03, yaw, slow=True),
                  _move(end, 0.03, yaw, slow=True), _move(end, 0.12, yaw)]


def _drawer(rng, ws: Workspace) -> tuple[str, list[tuple]]:
    level = rng.choice(["top", "middle", "bottom"])
    z = {"top": 0.26, "middle": 0.17, "bottom": 0.08}[level] + rng.uniform(-0.01, 0.01)
    hx, y, pull = rng.uniform(0.52, 0.62), rng.uniform(*ws.y), rng.uniform(0.12, 0.2)
    furniture = rng.choice(["cabinet", "desk", "dresser", "nightstand"])
    if rng.random() < 0.5:
        text = rng.choice(["open the {l} drawer of the {f}", "pull the {l} drawer of the {f} open"])
        ops = [_move((hx - 0.08, y), z, 0.0), _move((hx, y), z, 0.0, slow=True), ("grip", 1),
               _move((hx - pull, y), z, 0.0, slow=True), ("grip", 0), _move((hx - pull - 0.08, y), z + 0.05, 0.0)]
    else:
        text = rng.choice(["close the {l} drawer of the {f}", "push the {l} drawer of the {f} shut"])
        ops = [("grip", 1), _move((hx - pull - 0.08, y), z, 0.0), _move((hx - pull, y), z, 0.0, slow=True),
               _move((hx, y), z, 0.0, slow=True), _move((hx - 0.1, y), z + 0.05, 0.0)]
    return text.format(l=level, f=furniture), ops


def _stack(rng, ws: Workspace) -> tuple[str, list[tuple]]:
    top, base = ws.place(rng, 2)
    ca, cb = rng.choice(COLORS, size=2, replace=False)
    text = rng.choice(["stack the {a} block on the {b} block", "put the {a} cube on top of the {b} cube",
                       "place the {a} block onto the {b} one"]).format(a=ca, b=cb)
    yaw = rng.uniform(-0.6, 0.6)
    return text, _pick(top, 0.02, yaw) + _place(base, 0.065, yaw)


def _pour(rng, ws: Workspace) -> tuple[str, list[tuple]]:
    cup, bowl = ws.place(rng, 2, min_dist=0.16)
    tilt, yaw = rng.uniform(1.5, 2.0), rng.uniform(-0.4, 0.4)
    above = bowl + np.array([0.0, rng.choice([-0.05, 0.05])])
    text = rng.choice(["pour the {l} from the {c} into the {t}", "empty the {c} of {l} into the {t}"]).format(
        l=rng.choice(["water", "juice", "coffee", "milk", "tea"]), c=rng.choice(["cup", "mug", "glass", "pitcher"]),
        t=rng.choice(["bowl", "pot", "sink", "jar"]))
    pour = [_move(above, 0.22, yaw), _move(above, 0.22, yaw, tilt), ("wait", rng.uniform(0.5, 1.2)),
            _move(above, 0.22, yaw, 0.0)]
    return text, _pick(cup, 0.05, yaw) + pour + _place(cup, 0.05, yaw)


def _wipe(rng, ws: Workspace) -> tuple[str, list[tuple]]:
    sponge, area = ws.place(rng, 2, min_dist=0.18)
    strokes, amp, yaw = int(rng.integers(3, 6)), rng.uniform(0.06, 0.12), rng.uniform(-0.3, 0.3)
    templates = ["wipe the {s} with the {t}", "clean the {s} using the {t}", "scrub the {s} with the {t}"]
    text = rng.choice(templates).format(
        s=rng.choice(["table", "counter", "tray", "plate", "cutting board"]),
        t=rng.choice(["sponge", "cloth", "towel", "rag"]))
    wipes = [_move(area + np.array([0.015 * k, amp * (1 if k % 2 else -1)]), 0.025, yaw) for k in range(strokes)]
    ops = (_pick(sponge, 0.02, yaw) + [_move(area, 0.1, yaw), _move(area, 0.025, yaw, slow=True)] + wipes
           + [_move(area, 0.1, yaw)] + _place(sponge, 0.02, yaw))
    return text, ops


FAMILIES = {"pick_place": _pick_place, "push": _push, "drawer": _drawer, "stack": _stack, "pour": _pour,
            "wipe": _wipe}

# ---------------------------------------------------------------------------------------------------------------
# From Cartesian tracks to a robot's native actions and state.


def _gripper(closed: np.ndarray, kind: str) -> np.ndarray:
    return np.where(closed > 0.5, 1.0, -1.0) if kind == "binary" else 1.0 - closed


def _arm_channels(track: np.ndarray, robot: RobotConfig, base_y: float) -> tuple[np.ndarray, np.ndarray]:
    """(actions [T, c_arm], state [T, s_arm]) of one arm's pose track [T+1, 6]."""
    grip = _gripper(track[1:, 5], robot.gripper)[:, None]
    if robot.space == "eef":
        quat = tool_quaternion(track[:, 3], track[:, 4])
        pose = np.hstack([track[:, :3], quat_to_axis_angle(quat)])
        fingers = FINGER_OPEN * (1 - track[:-1, 5:6]) * np.array([1.0, -1.0])
        state = np.hstack([pose[:-1], fingers])
        if robot.mode == "delta":
            motion = np.hstack([np.diff(track[:, :3], axis=0) * robot.pos_scale,
                                rotation_delta(quat[:-1], quat[1:]) * robot.rot_scale])
        else:
            motion = pose[1:]
    else:
        local = track[:, :3] - np.array([0.0, base_y, 0.0])
        q = inverse_kinematics(local, track[:, 3], track[:, 4], robot.joints)
        state = np.hstack([q[:-1], 1.0 - track[:-1, 5:6]])
        motion = np.diff(q, axis=0) if robot.mode == "delta" else q[1:]
    return np.hstack([motion, grip]), state


@dataclass
class SyntheticEpisode:
    family: str
    instruction: str
    state: np.ndarray  # float32 [T, S]
    action: np.ndarray  # float32 [T, c]
    tracks: np.ndarray  # [arms, T+1, 6] Cartesian pose tracks (x, y, z, yaw, tilt, closed) the actions encode


def episode_rng(seed: int, embodiment: str, index: int) -> np.random.Generator:
    """The generator of one episode: independent of which other episodes or robots are generated."""
    return np.random.default_rng([seed, zlib.crc32(embodiment.encode()), index])


def synthesize_episode(robot: RobotConfig, seed: int, index: int) -> SyntheticEpisode:
    """Episode `index` of `robot`'s corpus for `seed`; families cycle with the index, so any 6 consecutive episodes
    cover every family."""
    spec = get_embodiment(robot.embodiment)
    rng = episode_rng(seed, robot.embodiment, index)
    family = list(FAMILIES)[index % len(FAMILIES)]
    kin = Kinematics(hz=spec.control_hz, speed=rng.uniform(0.12, 0.28), rot_speed=rng.uniform(0.8, 1.6),
                     grip_seconds=rng.uniform(0.3, 0.6))
    bases = [0.0] if spec.arms == 1 else [DUAL_ARM_BASE_Y, -DUAL_ARM_BASE_Y]
    active = 0 if spec.arms == 1 else int(rng.integers(2))
    if spec.arms == 1:
        ws = Workspace(x=(0.38, 0.62), y=(-0.22, 0.22))
    else:  # objects on the active arm's half of the table
        ws = Workspace(x=(0.38, 0.62), y=(0.05, 0.45) if bases[active] > 0 else (-0.45, -0.05))
    text, program = FAMILIES[family](rng, ws)
    homes = [np.array([rng.uniform(0.3, 0.4), 0.8 * b + rng.uniform(-0.05, 0.05), rng.uniform(0.28, 0.38),
                       rng.uniform(-0.2, 0.2), 0.0, 0.0]) for b in bases]
    moving = run_program(homes[active], program + [("wait", END_HOLD_SECONDS)], kin, rng)
    tracks = np.stack([moving if a == active else np.repeat(homes[a][None], len(moving), 0) for a in range(len(bases))])
    parts = [_arm_channels(tracks[a], robot, bases[a]) for a in range(len(bases))]
    action = np.hstack([p[0] for p in parts]).astype(np.float32)
    state = np.hstack([p[1] for p in parts]).astype(np.float32)
    if action.shape[1] != spec.action_dim or state.shape[1] != spec.state_dim:
        raise ValueError(f"{robot.embodiment}: synthesized {action.shape[1]} action / {state.shape[1]} state "
                         f"channels, the embodiment has {spec.action_dim} / {spec.state_dim}")
    return SyntheticEpisode(family=family, instruction=str(text), state=state, action=action, tracks=tracks)


def write_corpus(out: str | Path, episodes: int, seed: int = 0, robots: list[str] | None = None,
                 progress: bool = True) -> dict[str, int]:
    """Write `episodes` episodes per robot configuration to `<out>/<embodiment>/`; returns frames per dataset.

    An existing dataset of the same seed is extended to `episodes` episodes; one of another seed is an error."""
    chosen = [r for r in ROBOTS if robots is None or r.embodiment in robots]
    unknown = set(robots or ()) - {r.embodiment for r in ROBOTS}
    if unknown:
        raise KeyError(f"unknown synthetic robot configurations {sorted(unknown)}; "
                       f"valid: {', '.join(r.embodiment for r in ROBOTS)}")
    frames = {}
    for robot in tqdm(chosen, desc="robot configurations", disable=not progress):
        with DatasetWriter(Path(out) / robot.embodiment, get_embodiment(robot.embodiment), flush_every=200) as writer:
            seeds = {x.get("seed") for x in writer.recorded_extras()}
            if seeds - {seed}:
                raise ValueError(f"{writer.root} was generated with seed {sorted(seeds)}, not {seed}")
            for i in range(len(writer.recorded_extras()), episodes):
                ep = synthesize_episode(robot, seed, i)
                writer.add(Episode(task=ep.instruction, state=ep.state, action=ep.action,
                                   extras={"family": ep.family, "seed": seed, "synthetic_index": i}))
        frames[robot.embodiment] = writer.num_frames
    return frames
