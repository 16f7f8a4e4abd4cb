"""`toy_reach`: a point robot that must reach a target and close its gripper. A micro-env with known answers.

It stands in for a simulator where one cannot run (tests of the runner, the RL loop and the CLI) and costs
microseconds a step. It follows the same TaskEnv interface as LIBERO: fixed init states per task, a step budget,
images only when asked, success ends the episode.
"""

from __future__ import annotations

import time

import numpy as np

from vla_bench.actions import pad_actions
from vla_bench.adapter import ActionChunk, Observation
from vla_bench.embodiment import get_embodiment
from vla_bench.envs.base import ChunkResult, TaskInfo

EMBODIMENT = get_embodiment("toy_point")
STEP_SIZE = 0.05  # metres moved per unit action per step
SUCCESS_RADIUS = 0.05
MAX_STEPS = 60
NUM_INIT_STATES = 50
IMAGE_PX = 32
TARGETS = {  # task name -> target position
    "reach the red target on the left": (-0.5, 0.3, 0.1),
    "reach the green target on the right": (0.5, 0.3, 0.1),
    "reach the blue target near the robot": (0.0, -0.4, 0.05),
    "reach the yellow target up high": (0.1, 0.2, 0.6),
}


def list_tasks(suite: str = "toy_reach") -> list[TaskInfo]:
    return [TaskInfo(suite=suite, index=i, name=name.replace(" ", "_"), instruction=name, max_steps=MAX_STEPS,
                     num_init_states=NUM_INIT_STATES, embodiment=EMBODIMENT.name) for i, name in enumerate(TARGETS)]


def init_position(task_index: int, init_index: int) -> np.ndarray:
    """The fixed start of episode `init_index`: a point in a 0.4 m cube around the origin."""
    return np.random.default_rng([task_index, init_index]).uniform(-0.2, 0.2, 3)


class ToyReachEnv:
    embodiment = EMBODIMENT

    def __init__(self, suite: str, task_index: int, image_size: int = IMAGE_PX, hard_reset: bool = False):
        tasks = list_tasks(suite)
        if not 0 <= task_index < len(tasks):
            raise KeyError(f"{suite} has tasks 0..{len(tasks) - 1}, not {task_index}")
        self.task = tasks[task_index]
        self.target = np.array(TARGETS[self.task.instruction])
        self.image_size = image_size
        self.render_seconds, self.physics_steps = 0.0, 0

    def _observation(self) -> Observation:
        images = {}
        if self._images:
            t = time.perf_counter()
            images = {"cam_front": self.render()}
            self.render_seconds += time.perf_counter() - t
        state = np.concatenate([self.pos, self.target, [self.gripper]]).astype(np.float32)
        return Observation(images=images, state=state, instruction=self.task.instruction, embodiment=self.embodiment,
                           privileged=self if self._privileged else None)

    def render(self) -> np.ndarray:
        """Top-down view: the robot white, the target red, on a black square."""
        img = np.zeros((self.image_size, self.image_size, 3), dtype=np.uint8)
        for p, color in ((self.target, (255, 0, 0)), (self.pos, (255, 255, 255))):
            i, j = (np.clip((p[:2] + 1) / 2, 0, 0.999) * self.image_size).astype(int)
            img[j, i] = color
        return img

    def reset(self, init_index: int, seed: int, images: bool = True, privileged: bool = False) -> Observation:
        if not 0 <= init_index < NUM_INIT_STATES:
            raise IndexError(f"{self.task.name} has init states 0..{NUM_INIT_STATES - 1}, not {init_index}")
        self.pos, self.gripper = init_position(self.task.index, init_index), -1.0
        self._images, self._privileged = images, privileged
        return self._observation()

    def step_chunk(self, actions: np.ndarray, steps_left: int) -> ChunkResult:
        n = min(len(actions), steps_left)
        for i in range(n):
            a = np.asarray(actions[i], dtype=np.float64)
            self.pos = self.pos + STEP_SIZE * np.clip(a[:3], -1, 1)
            self.gripper = 1.0 if a[3] > 0 else -1.0
            self.physics_steps += 1
            if self.gripper > 0 and np.linalg.norm(self.pos - self.target) < SUCCESS_RADIUS:
                return ChunkResult(observation=None, steps=i + 1, success=True)
        return ChunkResult(observation=self._observation(), steps=n, success=False)

    def close(self) -> None:
        pass


class ToyScriptedPolicy:
    """Moves straight to the target (read from the state) and closes the gripper there: succeeds every episode."""

    norm_stats = None
    needs_images = False
    needs_privileged = False

    def __init__(self, embodiment=EMBODIMENT, chunk_size: int | None = None):
        self.embodiment = embodiment
        self.chunk_size = chunk_size or embodiment.chunk_size

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: Observation) -> ActionChunk:
        pos, target = obs.state[:3].astype(np.float64), obs.state[3:6]
        native = np.zeros((self.chunk_size, 4), dtype=np.float32)
        for h in range(self.chunk_size):
            near = np.linalg.norm(target - pos) < SUCCESS_RADIUS
            step = np.zeros(3) if near else np.clip((target - pos) / STEP_SIZE, -1, 1)
            native[h] = [*step, 1.0 if near else -1.0]
            pos = pos + STEP_SIZE * step
        return ActionChunk(*pad_actions(native))
