"""Suite registry. Simulators are imported only inside the factories, so the core runs without any installed."""

from __future__ import annotations

import importlib

from vla_bench.envs.base import TaskEnv, TaskInfo

# suite -> module holding `list_tasks(suite)` and the env class named in ENV_CLASSES
SUITES: dict[str, str] = {
    "libero_spatial": "vla_bench.envs.libero",
    "libero_object": "vla_bench.envs.libero",
    "libero_goal": "vla_bench.envs.libero",
    "libero_10": "vla_bench.envs.libero",
    "libero_90": "vla_bench.envs.libero",
    "toy_reach": "vla_bench.envs.toy",
}
ENV_CLASSES: dict[str, str] = {"vla_bench.envs.libero": "LiberoTaskEnv", "vla_bench.envs.toy": "ToyReachEnv"}
# Names that stand for several suites.
SUITE_GROUPS: dict[str, tuple[str, ...]] = {
    "libero": ("libero_spatial", "libero_object", "libero_goal", "libero_10"),
}


def expand_suites(names: str | list[str]) -> list[str]:
    """'libero' -> its four standard suites; comma-separated lists allowed; unknown names raise with the valid ones."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    out: list[str] = []
    for name in names:
        for suite in SUITE_GROUPS.get(name, (name,)):
            if suite not in SUITES:
                valid = ", ".join(list(SUITE_GROUPS) + list(SUITES))
                raise KeyError(f"unknown suite {name!r}; valid suites: {valid}")
            if suite not in out:
                out.append(suite)
    return out


def list_tasks(suite: str) -> list[TaskInfo]:
    return importlib.import_module(SUITES[suite]).list_tasks(suite)


def wants_worker_processes(suite: str) -> bool:
    """Default for rollouts: simulators step in worker processes; micro-envs (toy_*), whose steps cost microseconds,
    in the learner's process, where an inter-process message would cost more than the step."""
    return not suite.startswith("toy")


def check_task_indices(suite: str, indices) -> None:
    """Raise KeyError, with the valid range, if any of `indices` is not a task of `suite`."""
    n = len(list_tasks(suite))
    bad = [t for t in indices if not 0 <= t < n]
    if bad:
        raise KeyError(f"{suite} has tasks 0..{n - 1}; got {bad} (see `vla-bench ls --suite {suite}`)")


def make_task_env(suite: str, task_index: int, **options) -> TaskEnv:
    module = importlib.import_module(SUITES[suite])
    return getattr(module, ENV_CLASSES[SUITES[suite]])(suite, task_index, **options)
