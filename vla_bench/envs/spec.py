"""The suite contract: what one suite tells the runner, the RL rollouts, `collect`, results and tables.

A suite is one registered `SuiteSpec`. Everything here is plain data, readable without the simulator: the task table
(`tasks` names a function that returns it without importing the simulator), the episode ids of each task, the step
budget, the cameras, the metrics and how they aggregate, where the env workers run. The env itself (`env`, a
"module:Class" string) is imported only when a worker builds it.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field

METRIC_KINDS = ("rate", "mean")
CAMERA_KINDS = ("rgb", "depth")
WORKER_MODES = ("process", "inline")
# Episode-row keys the harness writes itself; a suite metric may not reuse one of them.
ROW_KEYS = frozenset({"suite", "task_index", "task", "episode_id", "instruction", "seed", "steps", "seconds",
                      "physics_steps", "render_seconds", "end", "info", "error", "traceback", "retryable", "worker",
                      "attempts", "earlier_failures", "session", "session_seconds"})


class SuiteUnavailable(RuntimeError):
    """A suite's simulator, assets or environment is missing; the message names the setup step."""


@dataclass(frozen=True)
class MetricSpec:
    name: str  # key in the episode rows and results.json
    kind: str = "rate"  # "rate": 0/1 per episode, aggregated with a Wilson interval; "mean": mean and standard error
    higher_is_better: bool = True
    doc: str = ""  # one line: how the suite judges it

    def __post_init__(self):
        if self.kind not in METRIC_KINDS:
            raise ValueError(f"metric {self.name!r}: kind must be one of {METRIC_KINDS}, got {self.kind!r}")
        if self.name in ROW_KEYS:
            raise ValueError(f"metric name {self.name!r} is an episode-row key of the harness")


SUCCESS = MetricSpec("success", "rate", True, "the suite's success rule")


@dataclass(frozen=True)
class CameraSpec:
    name: str  # the view tag a policy sees (e.g. cam_front, ego)
    width: int  # pixels, as the protocol renders it
    height: int
    kinds: tuple[str, ...] = ("rgb",)  # what the camera can give: rgb, depth

    def __post_init__(self):
        bad = [k for k in self.kinds if k not in CAMERA_KINDS]
        if bad or self.width < 1 or self.height < 1:
            raise ValueError(f"camera {self.name!r}: kinds in {CAMERA_KINDS} and a positive size, got {self}")


@dataclass(frozen=True)
class TaskInfo:
    suite: str
    index: int  # position in the suite's standard task order: the task id rows, buffers and tables group by
    name: str
    instruction: str  # the task's instruction; suites that draw one per episode give it in each observation
    max_steps: int  # policy steps per episode under the protocol
    episode_ids: tuple[int, ...]  # every episode id of the task (LIBERO: init states; SimplerEnv: episode_id)
    default_episodes: int  # the protocol's episode count: the first this many ids
    embodiment: str

    def __post_init__(self):
        if not 0 < self.default_episodes <= len(self.episode_ids):
            raise ValueError(f"{self.suite}/{self.name}: default_episodes must be in 1..{len(self.episode_ids)}")

    def to_dict(self) -> dict:
        return asdict(self)

    def choose_episodes(self, count: int | None = None, ids: list[int] | None = None) -> list[int]:
        """The episode ids to run: `ids` as named, else the first `count` ids, else the protocol's default."""
        if ids is not None:
            repeated = sorted({i for i in ids if list(ids).count(i) > 1})
            if repeated:  # they would run, and count, twice
                raise ValueError(f"episode ids {repeated} are given more than once")
            valid = set(self.episode_ids)
            bad = [i for i in ids if i not in valid]
            if bad:
                raise IndexError(f"{self.suite} task {self.index} has episode ids {_ranges(self.episode_ids)}; "
                                 f"got {bad}")
            return list(ids)
        n = self.default_episodes if count is None else count
        if not 1 <= n <= len(self.episode_ids):
            raise IndexError(f"{self.suite} task {self.index} has {len(self.episode_ids)} episodes; asked for {n}")
        return list(self.episode_ids[:n])


def episodes_by_task(tasks: list[TaskInfo], count: int | None = None,
                     ids: list[int] | None = None) -> dict[int, list[int]]:
    """The episode ids each task runs (see `TaskInfo.choose_episodes`). Named ids in suites whose ids are unique
    across tasks (R2R / RxR: one task per scene, the episodes file's ids) go to the tasks that have them, and a task
    with none of them is left out; an id no task has is an error. Where every task has every id (LIBERO's init
    states), each task runs them all, as before."""
    if ids is None or len({t.episode_ids for t in tasks}) <= 1:
        return {t.index: t.choose_episodes(count, ids) for t in tasks}
    owned = {t.index: [i for i in ids if i in set(t.episode_ids)] for t in tasks}
    stray = [i for i in ids if not any(i in v for v in owned.values())]
    if stray:
        ranges = "; ".join(f"task {t.index}: {_ranges(t.episode_ids)}" for t in tasks)
        raise IndexError(f"no task of {tasks[0].suite} has episode ids {stray} ({ranges})")
    return {t.index: t.choose_episodes(ids=owned[t.index]) for t in tasks if owned[t.index]}


def parse_ids(text: str) -> list[int]:
    """'0,3,7' or with inclusive ranges, '25-49,60' -> the integers, in order; ValueError names the text."""
    out = []
    try:
        for part in (x.strip() for x in text.split(",")):
            first, dash, last = part.partition("-")
            if part:
                out += list(range(int(first), int(last) + 1)) if dash and first else [int(part)]
    except ValueError:
        raise ValueError(f"expected comma-separated integers or ranges (25-49), got {text!r}") from None
    return out


def _ranges(ids: tuple[int, ...]) -> str:
    """'0..49' for a contiguous run, else the ids themselves (shortened)."""
    if ids and list(ids) == list(range(ids[0], ids[0] + len(ids))):
        return f"{ids[0]}..{ids[-1]}"
    return ", ".join(map(str, ids[:8])) + (", ..." if len(ids) > 8 else "")


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    env: str  # "module:Class" of the per-task env (TaskEnv), imported only inside a worker
    tasks: str  # "module:function(suite, env_options) -> list[TaskInfo]", without importing the simulator
    protocol: str  # the published protocol followed, e.g. "LIBERO (Liu et al. 2023)"
    protocol_version: str  # bumped when our implementation of the protocol changes results
    simulator_packages: tuple[str, ...]  # distributions whose versions results.json records
    cameras: tuple[CameraSpec, ...]
    metrics: tuple[MetricSpec, ...] = (SUCCESS,)  # success first
    env_options: tuple[str, ...] = ()  # keyword options its env accepts (besides image_size)
    worker_mode: str = "process"  # RL rollouts: "process" (simulators) or "inline" (micro-envs: a message costs more)
    worker_memory_mb: int = 1500  # a worker's expected memory (env + a small policy), for the --workers warning
    python_env: str | None = None  # its own environment (`scripts/setup.sh --suite NAME`); None: the main one
    info: str | None = None  # "module:function(env_options) -> dict" run in the main process: provenance, checks
    # "module:function(run_dir, rows, env_options)" writing the suite's own files of a run (e.g. a leaderboard's
    # predictions file) from its episode rows, whenever results.json is written
    artifacts: str | None = None
    notes: str = field(default="", compare=False)

    def __post_init__(self):
        if not self.metrics or self.metrics[0].name != "success":
            raise ValueError(f"suite {self.name}: the first metric must be success")
        if self.worker_mode not in WORKER_MODES:
            raise ValueError(f"suite {self.name}: worker_mode must be one of {WORKER_MODES}")

    def list_tasks(self, env_options: dict | None = None) -> list[TaskInfo]:
        """The task table; `env_options` matter to suites whose tasks come from a file (R2R's episodes file)."""
        return load_target(self.tasks)(self.name, env_options or {})

    def env_class(self):
        return load_target(self.env)

    def metric(self, name: str) -> MetricSpec:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"suite {self.name} has no metric {name!r}; it has {', '.join(m.name for m in self.metrics)}")

    def check_env_options(self, options: dict) -> None:
        bad = sorted(set(options) - set(self.env_options) - {"image_size"})
        if bad:
            accepted = ", ".join(("image_size",) + self.env_options)
            raise ValueError(f"suite {self.name} takes env options {accepted}; got {', '.join(bad)}")

    def describe(self, env_options: dict) -> dict:
        """What results.json records about the suite for a run: protocol, metrics, cameras and the suite's own
        provenance (e.g. which asset bundle, whether results compare to published numbers)."""
        d = {"protocol": self.protocol, "protocol_version": self.protocol_version,
             "metrics": [asdict(m) for m in self.metrics], "cameras": [asdict(c) for c in self.cameras],
             "python_env": self.python_env}
        if self.info:
            d.update(load_target(self.info)(env_options))
        return d


def load_target(target: str):
    """The object named by a "module:attribute" string."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
