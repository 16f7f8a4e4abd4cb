"""`vla-bench pipeline CONFIG`: the Qwen-VLA recipe (T2A -> CPT -> SFT -> RL, as configured) in one run directory,
with an evaluation on the chosen suites after each stage.

Run directory (`out` in the config, or --out):
  pipeline.json          the config as run, and per step: status, fingerprint, wall seconds, outputs
  data/<name>/           datasets the pipeline made (`collect` / `synth` entries); `path` entries are used in place
  stages/<label>/        each stage's run directory: a train run dir (the checkpoint itself) or an RL run dir (its
                         checkpoint is policy/); every checkpoint carries lineage.json (vla_bench/lineage.py)
  eval/<label>/<suite>/  an eval run directory per stage and suite (`vla-bench table --by stage <out>` reads them)

Every step is resumable and skipped when done: a step is done when pipeline.json records it finished with the same
fingerprint (its config plus the fingerprints of what it depends on), so changing a stage's config redoes that stage
and everything after it, never silently reuses a stale checkpoint. An interrupted step continues where it stopped
(collect, synth, train, RL and eval all resume on their own); wall seconds add up over sessions.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from vla_bench.atomic_write import write_json_atomically
from vla_bench.envs.spec import parse_ids
from vla_bench.lineage import STAGES

STATE_FILE = "pipeline.json"
FORMAT = "vla_bench.pipeline/1"
DATA_KINDS = ("path", "collect", "synth")


def load_config_file(path: str | Path) -> dict:
    """A pipeline config from YAML (.yaml/.yml) or TOML (.toml)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pipeline config not found: {path}")
    text = path.read_text()
    if path.suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: {e}") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError("YAML configs need pyyaml (pip install pyyaml), or write the config as TOML") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: {e}") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: a pipeline config is a mapping (name, data, stages, evaluation)")
        return doc
    raise ValueError(f"{path}: a pipeline config ends in .yaml, .yml or .toml")


def _check_keys(where: str, given: dict, allowed) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; valid: {', '.join(sorted(allowed))}")


def _field_names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def _ids(value):
    """Episode ids / tasks as a list, from a list or a '25-49,60' string."""
    return parse_ids(value) if isinstance(value, str) else list(value) if value is not None else None


@dataclass
class DataEntry:
    name: str
    kind: str  # path | collect | synth
    options: dict  # path: {"path"}; collect: CollectConfig fields; synth: write_corpus arguments

    def directory(self, out: Path) -> Path:
        return Path(self.options["path"]) if self.kind == "path" else out / "data" / self.name


@dataclass
class StageEntry:
    label: str
    stage: str  # t2a | cpt | sft | rl
    parent: str | None  # a stage label, or None (from scratch / `init`)
    init: str | None  # an external starting checkpoint
    data: list[str]  # data entry names (train stages)
    synthetic: str | None  # data entry name of the synthetic corpus (T2A / CPT mixes)
    options: dict  # TrainConfig fields (train stages) or RLConfig fields (rl)
    evaluate: bool = True

    def run_dir(self, out: Path) -> Path:
        return out / "stages" / self.label

    def checkpoint(self, out: Path) -> Path:
        return self.run_dir(out) / "policy" if self.stage == "rl" else self.run_dir(out)


@dataclass
class PipelineConfig:
    name: str
    out: Path
    data: dict[str, DataEntry]
    stages: list[StageEntry]
    evaluation: dict[str, dict]  # suite -> EvalConfig fields
    raw: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: dict, out: str | Path | None = None) -> PipelineConfig:
        from vla_bench.data.collect import CollectConfig
        from vla_bench.eval.runner import EvalConfig
        from vla_bench.rl.config import RLConfig
        from vla_bench.train.config import TrainConfig

        _check_keys("pipeline config", doc, ("name", "out", "data", "stages", "evaluation"))
        name = doc.get("name")
        if not name or not isinstance(name, str):
            raise ValueError("pipeline config: `name` (a string) is required")
        out = Path(out or doc.get("out") or f"runs/pipeline/{name}")
        data = {}
        for dname, entry in (doc.get("data") or {}).items():
            kinds = [k for k in DATA_KINDS if k in entry]
            if len(kinds) != 1 or len(entry) != 1:
                raise ValueError(f"data.{dname}: one of {', '.join(DATA_KINDS)} (got {sorted(entry)})")
            kind, options = kinds[0], entry[kinds[0]]
            if kind == "path":
                options = {"path": str(options)}
            elif kind == "collect":
                _check_keys(f"data.{dname}.collect", options, _field_names(CollectConfig) - {"out"})
                if "suites" not in options:
                    raise ValueError(f"data.{dname}.collect: `suites` (the suite or suites to record) is required")
                options = {"policy": "scripted", **options, "tasks": _ids(options.get("tasks")),
                           "episode_ids": _ids(options.get("episode_ids"))}
            else:
                _check_keys(f"data.{dname}.synth", options, ("episodes", "seed", "robots"))
            data[dname] = DataEntry(dname, kind, dict(options))
        stages, labels = [], []
        train_keys = _field_names(TrainConfig) - {"stage", "data", "out", "synthetic", "init", "progress", "extra"}
        rl_keys = _field_names(RLConfig) - {"init", "out", "progress", "extra"}
        for i, s in enumerate(doc.get("stages") or []):
            _check_keys(f"stages[{i}]", s, ("name", "stage", "parent", "init", "data", "synthetic", "train", "rl",
                                            "evaluate"))
            stage = s.get("stage")
            if stage not in STAGES:
                raise ValueError(f"stages[{i}]: stage must be one of {', '.join(STAGES)}, got {stage!r}")
            label = s.get("name", stage)
            if label in labels:
                raise ValueError(f"stages[{i}]: the stage name {label!r} is used twice; give each a `name`")
            parent = s["parent"] if "parent" in s else (labels[-1] if labels and "init" not in s else None)
            if parent is not None and parent not in labels:
                raise ValueError(f"stages[{i}] ({label}): parent {parent!r} is not an earlier stage; earlier: "
                                 f"{labels or 'none'}")
            if parent is not None and s.get("init"):
                raise ValueError(f"stages[{i}] ({label}): give `parent` or `init`, not both")
            if stage == "rl":
                options = s.get("rl") or {}
                _check_keys(f"stages[{i}].rl ({label})", options, rl_keys)
                if "suite" not in options:
                    raise ValueError(f"stages[{i}] ({label}): an rl stage needs rl.suite")
                if parent is None and not s.get("init"):
                    raise ValueError(f"stages[{i}] ({label}): an rl stage starts from a checkpoint: a parent or init")
                options = {**options, "tasks": _ids(options.get("tasks", [0]))}
            else:
                options = s.get("train") or {}
                _check_keys(f"stages[{i}].train ({label})", options, train_keys)
                if not s.get("data"):
                    raise ValueError(f"stages[{i}] ({label}): a {stage} stage needs `data` (names of data entries)")
            for ref in list(s.get("data") or []) + ([s["synthetic"]] if s.get("synthetic") else []):
                if ref not in data:
                    raise ValueError(f"stages[{i}] ({label}): no data entry {ref!r}; entries: {', '.join(data)}")
            stages.append(StageEntry(label, stage, parent, s.get("init"), list(s.get("data") or []),
                                     s.get("synthetic"), dict(options), bool(s.get("evaluate", True))))
            labels.append(label)
        if not stages:
            raise ValueError("pipeline config: `stages` is empty")
        evaluation = {}
        ev = dict(doc.get("evaluation") or {})
        suites = ev.pop("suites", {}) or {}
        eval_keys = _field_names(EvalConfig) - {"suites", "policy", "run_dir"}
        _check_keys("evaluation", ev, eval_keys)
        for suite, options in suites.items():
            options = {**ev, **(options or {})}
            _check_keys(f"evaluation.suites.{suite}", options, eval_keys)
            evaluation[suite] = {**options, "tasks": _ids(options.get("tasks")),
                                 "episode_ids": _ids(options.get("episode_ids"))}
        return cls(name=name, out=out, data=data, stages=stages, evaluation=evaluation, raw=doc)


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Pipeline:
    """Runs the steps of a config in order: data, then per stage its training and its evaluations."""

    def __init__(self, config: PipelineConfig, progress: bool = True, log=print):
        self.config, self.progress, self.log = config, progress, log
        self.out = config.out
        self.state_path = self.out / STATE_FILE
        self.state = self._load_state()
        self.fingerprints: dict[str, str] = {}

    def _load_state(self) -> dict:
        if self.state_path.is_file():
            state = json.loads(self.state_path.read_text())
            if state.get("format") != FORMAT:
                raise ValueError(f"{self.state_path}: format {state.get('format')!r} is not {FORMAT!r}")
            if state.get("name") != self.config.name:
                raise ValueError(f"{self.out} holds pipeline {state.get('name')!r}, not {self.config.name!r}; use "
                                 "another --out")
            return state
        return {"format": FORMAT, "name": self.config.name, "steps": {}}

    def _save(self) -> None:
        self.state["config"] = self.config.raw
        write_json_atomically(self.state_path, self.state)

    def _step(self, key: str, fingerprint: str, run, outputs: dict) -> None:
        """Run step `key` unless done with this fingerprint; record status and wall seconds."""
        self.fingerprints[key] = fingerprint
        rec = self.state["steps"].get(key)
        if rec and rec.get("fingerprint") == fingerprint and rec.get("status") == "done":
            self.log(f"[pipeline] {key}: done ({rec['wall_seconds']:.0f} s), skipped")
            return
        if rec and rec.get("fingerprint") != fingerprint:
            rec = None  # the step's config (or an input's) changed: it starts over
            for path in outputs.get("clear", []):
                if Path(path).exists():
                    self.log(f"[pipeline] {key}: config changed; removing {path}")
                    shutil.rmtree(path)
        rec = rec or {"fingerprint": fingerprint, "wall_seconds": 0.0, "sessions": 0}
        rec.update(status="running", sessions=rec["sessions"] + 1,
                   **{k: str(v) for k, v in outputs.items() if k != "clear"})
        self.state["steps"][key] = rec
        self._save()
        self.log(f"[pipeline] {key}: running")
        t0 = time.perf_counter()
        try:
            rec.update(summary=run(), status="done")
        except BaseException:
            rec["status"] = "interrupted"
            raise
        finally:
            rec["wall_seconds"] += time.perf_counter() - t0
            self._save()
        self.log(f"[pipeline] {key}: done in {rec['wall_seconds']:.0f} s")

    def run(self) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        for entry in self.config.data.values():
            self._data(entry)
        for stage in self.config.stages:
            self._stage(stage)
            if stage.evaluate:
                for suite, options in self.config.evaluation.items():
                    self._evaluate(stage, suite, options)
        return self.state

    # --- data -------------------------------------------------------------------------------------------------
    def _data(self, entry: DataEntry) -> None:
        directory = entry.directory(self.out)
        if entry.kind == "path":
            if not directory.is_dir():
                raise FileNotFoundError(f"data.{entry.name}: no dataset directory {directory}")
            self.fingerprints[f"data/{entry.name}"] = _fingerprint(str(directory.resolve()))
            return
        if entry.kind == "collect":
            from vla_bench.data.collect import CollectConfig, collect

            def run():
                return collect(CollectConfig(out=str(directory), **entry.options), progress=self.progress)
        else:
            from vla_bench.data.synthetic import write_corpus

            def run():
                return write_corpus(directory, entry.options.get("episodes", 1000), seed=entry.options.get("seed", 0),
                                    robots=entry.options.get("robots"), progress=self.progress)
        self._step(f"data/{entry.name}", _fingerprint(entry.kind, entry.options), run,
                   {"dir": directory, "clear": [directory]})

    # --- stages -----------------------------------------------------------------------------------------------
    def _start_checkpoint(self, stage: StageEntry) -> str | None:
        if stage.parent is not None:
            parent = next(s for s in self.config.stages if s.label == stage.parent)
            return str(parent.checkpoint(self.out))
        return stage.init

    def _stage(self, stage: StageEntry) -> None:
        init = self._start_checkpoint(stage)
        depends = [self.fingerprints[f"stage/{stage.parent}"]] if stage.parent else [stage.init]
        depends += [self.fingerprints[f"data/{d}"] for d in stage.data + ([stage.synthetic] if stage.synthetic else [])]
        extra = {"label": stage.label, "pipeline": self.config.name}
        run_dir = stage.run_dir(self.out)
        if stage.stage == "rl":
            from vla_bench.rl.config import RLConfig
            from vla_bench.rl.trainer import train as train_rl

            def run():
                return train_rl(RLConfig(init=init, out=str(run_dir), progress=self.progress, extra=extra,
                                         **stage.options))
        else:
            from vla_bench.train import TrainConfig, train

            def run():
                record = train(TrainConfig(
                    stage=stage.stage, data=[str(self.config.data[d].directory(self.out)) for d in stage.data],
                    synthetic=str(self.config.data[stage.synthetic].directory(self.out)) if stage.synthetic else None,
                    out=str(run_dir), init=init, progress=self.progress, extra=extra, **stage.options))
                return {k: record[k] for k in ("step", "samples_seen", "samples_per_source")} | {
                    "samples_per_s": _mean_samples_per_s(run_dir)}
        self._step(f"stage/{stage.label}", _fingerprint(stage.stage, stage.options, depends), run,
                   {"run_dir": run_dir, "checkpoint": stage.checkpoint(self.out), "clear": [run_dir]})

    # --- evaluation ---------------------------------------------------------------------------------------------
    def _evaluate(self, stage: StageEntry, suite: str, options: dict) -> None:
        from vla_bench.envs.registry import expand_suites, list_tasks
        from vla_bench.eval.runner import EvalConfig, evaluate
        from vla_bench.policies.flow_vla.checkpoint import read_config

        checkpoint = stage.checkpoint(self.out)
        run_dir = self.out / "eval" / stage.label / suite
        key = f"eval/{stage.label}/{suite}"
        trained_for = {s.name for s in read_config(checkpoint)[1]}
        embodiments = {t.embodiment for s in expand_suites(suite) for t in list_tasks(s, options.get("env_options"))}
        if not embodiments <= trained_for:
            self.log(f"[pipeline] {key}: skipped, the checkpoint was not trained for {sorted(embodiments)}")
            return

        def run():
            config = EvalConfig(suites=suite, policy=str(checkpoint), run_dir=str(run_dir), **options)
            results = evaluate(config, resume=(run_dir / "episodes.jsonl").exists(), progress=self.progress)
            overall = results["metrics"]["overall"]
            return {"success_rate": overall["success_rate"], "episodes": overall["episodes"],
                    "errors": overall["errors"]}
        self._step(key, _fingerprint(options, self.fingerprints[f"stage/{stage.label}"]), run,
                   {"run_dir": run_dir, "clear": [run_dir]})


def _mean_samples_per_s(run_dir: Path) -> float | None:
    """Mean of the training log's samples/s column (the stage's throughput on this machine)."""
    from vla_bench.metric_log import CSV_FILE, read_metrics

    if not (run_dir / "logs" / CSV_FILE).is_file():
        return None
    rates = [r["charts/samples_per_s"] for r in read_metrics(run_dir / "logs") if "charts/samples_per_s" in r]
    return round(sum(rates) / len(rates), 1) if rates else None


def run_pipeline(path: str | Path, out: str | Path | None = None, progress: bool = True) -> dict:
    config = PipelineConfig.from_dict(load_config_file(path), out=out)
    return Pipeline(config, progress=progress).run()
