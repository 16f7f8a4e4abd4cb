"""What every suite provides to the runner: its tasks, and a per-task env stepped a chunk at a time."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from vla_bench.adapter import Observation
from vla_bench.embodiment import EmbodimentSpec


@dataclass(frozen=True)
class TaskInfo:
    suite: str
    index: int  # position in the suite's standard task order
    name: str
    instruction: str
    max_steps: int  # policy steps per episode under the protocol
    num_init_states: int  # fixed initial states available (episodes per task under the protocol)
    embodiment: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChunkResult:
    observation: Observation | None  # None when the episode ended inside the chunk
    steps: int  # actions executed
    success: bool


class TaskEnv(Protocol):
    task: TaskInfo
    embodiment: EmbodimentSpec
    render_seconds: float  # time spent rendering cameras so far
    physics_steps: int  # env steps so far, settling steps included

    def reset(self, init_index: int, seed: int, images: bool = True, privileged: bool = False) -> Observation: ...

    def step_chunk(self, actions: np.ndarray, steps_left: int) -> ChunkResult: ...

    def close(self) -> None: ...
