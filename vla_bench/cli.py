"""The `vla-bench` command line: parse arguments and call into the package. No logic of its own."""

from __future__ import annotations

import argparse
import json
import sys
import time

EXAMPLES = """examples:
  vla-bench ls                                   # suites, policies, embodiments
  vla-bench ls --suite libero_object             # the tasks of a suite
  vla-bench eval --suite libero_object --policy scripted --tasks 0,1 --episodes 5
  vla-bench eval --suite simpler --policy scripted --replan-steps 4   # SimplerEnv Bridge, 4 tasks x 24 episodes
  vla-bench eval --suite libero --policy ckpts/sft --workers 8 --run-dir runs/sft
  vla-bench eval --suite libero --policy ckpts/sft --run-dir runs/sft --resume   # finish an interrupted run
  vla-bench table runs/cpt runs/sft runs/rl
  vla-bench table --metric grasped runs/simpler_sft
  vla-bench table --by stage runs/repro --reference qwen-vla --plot stages.png   # rows CPT / + SFT / + RL
  vla-bench plot-rl runs/rl --out rl.png
  vla-bench eval --suite libero_object --tasks 0,1 --seeds 3 --policy checkpoints/tiny_libero_images --image-size 64
  vla-bench collect --suite libero_object --policy scripted --tasks 0,1 --episodes 20 --out data/libero_object
  vla-bench synth --out data/synthetic --episodes 1000 --seed 0   # T2A corpus, one dataset per robot config
  vla-bench train --stage t2a --data data/libero_object --synthetic data/synthetic --out ckpts/t2a --steps 2000
  vla-bench train --stage sft --data data/libero_object --init ckpts/t2a --out ckpts/sft --steps 3000
  torchrun --nproc_per_node 2 -m vla_bench.cli train --stage cpt --data data/robot --out ckpts/cpt   # DDP
  vla-bench rl --suite libero_object --tasks 0,1 --init ckpts/sft --out runs/rl --noise flow_sde --env-steps 50000
  vla-bench pipeline leaderboards/cpu_repro/pipeline.yaml   # data -> T2A -> CPT -> SFT -> RL, evaluated after each
  vla-bench rl-baseline --suite libero_object --tasks 0,1 --out runs/sb3 --env-steps 100000   # SB3 PPO, from scratch
  vla-bench eval --suite libero_object --tasks 0,1 --policy runs/sb3 --replan-steps 1 --run-dir runs/sb3_eval
"""


def _int_list(text: str) -> list[int]:
    from vla_bench.envs.spec import parse_ids

    try:
        return parse_ids(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vla-bench", description="Evaluate and train VLA policies in simulation.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="evaluate a policy under a suite's standard protocol", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--suite", default="libero", help="suite, group ('libero' = spatial,object,goal,10) or a "
                    "comma-separated list (default: libero)")
    ev.add_argument("--policy", default="scripted", help="zero | random | scripted | checkpoint dir | "
                    "package.module:factory (default: scripted)")
    ev.add_argument("--tasks", type=_int_list, help="task indices, e.g. 0,3,7 (default: all)")
    ev.add_argument("--episodes", type=int, help="episodes per task: the first N of its episode ids (default: the "
                    "protocol's, e.g. 50 for LIBERO, 24 for SimplerEnv)")
    ev.add_argument("--episode-ids", "--init-indices", dest="episode_ids", type=_int_list,
                    help="explicit episode ids, e.g. 5,17 (LIBERO: init-state indices; overrides --episodes)")
    ev.add_argument("--seed", type=int, default=7, help="base seed (default: 7)")
    ev.add_argument("--seeds", type=_positive_int, default=1, metavar="N", help="run every episode under N seeds, "
                    "base seeds SEED..SEED+N-1; results report the mean over seeds with an interval that contains "
                    "each seed's value (default: 1; a --resume may add seeds)")
    ev.add_argument("--image-size", type=_positive_int, help="the policy's square image size (LIBERO renders at it, "
                    "default 128; SimplerEnv resizes its 640x480 camera with padding; default: the suite's cameras)")
    ev.add_argument("--replan-steps", type=int, default=5, help="actions executed per chunk (default: 5)")
    ev.add_argument("--workers", type=_positive_int, help="worker processes (default: number of cores; at most one "
                    "per episode)")
    ev.add_argument("--policy-process", action="store_true", help="one copy of the policy for all env workers, in "
                    "this process, their observations batched (a large model, a GPU); default: a copy per worker")
    ev.add_argument("--max-attempts", type=_positive_int, default=3, help="runs of an episode whose worker crashes "
                    "before it counts as an error (default: 3)")
    ev.add_argument("--chunk-timeout", type=float, default=600.0, help="seconds a policy may take for one chunk "
                    "before the episode is an error; 0: off (default: 600)")
    ev.add_argument("--episode-timeout", type=float, default=7200.0, help="seconds an episode may take; 0: off "
                    "(default: 7200)")
    ev.add_argument("--run-dir", help="output directory (default: runs/<suite>-<policy>-<time>)")
    ev.add_argument("--resume", action="store_true", help="run only the episodes missing from --run-dir")
    ev.add_argument("--hard-reset", action="store_true", help="LIBERO: rebuild the simulator model at every reset "
                    "(slow; the same states and images, but fixture placements differ on libero_10 tasks 3, 8, 9 "
                    "in --fixtures episode mode)")
    ev.add_argument("--asset-dir", help="SimplerEnv: ManiSkill asset directory (default: $MS_ASSET_DIR, else the "
                    "stand-in bundle in ../shared/assets/simpler_bridge)")
    ev.add_argument("--robotwin-root", help="RoboTwin: your checkout of RoboTwin-Platform/RoboTwin, with its assets "
                    "(default: $ROBOTWIN_ROOT)")
    ev.add_argument("--fixtures", help="LIBERO: where fixtures (cabinets, stoves, racks) stand: episode (drawn from "
                    "the episode seed), fixed[:SEED] (one scene per task), sequential:SEED (the scenes of the scripts "
                    "that seed once and reset in order: 7 openpi, 0 OpenVLA); default: the suite's")
    _add_nav_arguments(ev, runner_backends=True)
    ev.add_argument("--env-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="an option of the suite's env (`vla-bench ls --suite NAME` lists them)")
    ev.add_argument("--policy-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="keyword argument for the policy factory; VALUE is parsed as JSON when it can be")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")

    ls = sub.add_parser("ls", help="list suites, tasks, policies and embodiments")
    ls.add_argument("--suite", help="list this suite's tasks")

    tb = sub.add_parser("table", help="tables from run directories or results.json files: one row per run, or "
                        "(--by stage) one row per training stage, the paper's Table 11")
    tb.add_argument("runs", nargs="+", help="eval run directories, results.json files, or directories holding them "
                    "(searched recursively with --by stage, e.g. a pipeline run)")
    tb.add_argument("--metric", default="success", help="success (default) or any suite metric, e.g. grasped")
    tb.add_argument("--by", choices=("run", "stage"), default="run", help="run: a row per run (default); stage: a "
                    "row per stage of each checkpoint's lineage (CPT / + SFT / + RL)")
    tb.add_argument("--format", choices=("markdown", "csv", "latex"), default="markdown",
                    help="markdown (default); csv and latex with --by stage")
    tb.add_argument("--out", help="write the table to this file (default: stdout)")
    tb.add_argument("--reference", help="with --by stage: a paper's published rows beside ours, e.g. qwen-vla "
                    "(leaderboards/reference/), or such a JSON file")
    tb.add_argument("--plot", metavar="FILE.png", help="with --by stage: also draw the stage-by-suite bars")

    pr = sub.add_parser("plot-rl", help="PNG of an RL run's noisy-rollout success and episodic return over env steps")
    pr.add_argument("run", help="the RL run directory (the --out of `vla-bench rl`: metrics.csv, rl_config.json)")
    pr.add_argument("--out", required=True, help="the image file, e.g. rl.png")
    pr.add_argument("--window", type=int, default=10, help="moving average over this many iterations (default: 10)")

    co = sub.add_parser("collect", help="record a policy's successful episodes as a LeRobotDataset v3",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    co.add_argument("--suite", required=True, help="suite, group or comma-separated list (one embodiment)")
    co.add_argument("--policy", default="scripted", help="registered policy or package.module:factory "
                    "(default: scripted)")
    co.add_argument("--out", required=True, help="dataset directory; rerun with the same one to resume")
    co.add_argument("--episodes", type=int, default=50, help="successful episodes per task (default: 50)")
    co.add_argument("--tasks", type=_int_list, help="task indices, e.g. 0,3,7 (default: all)")
    co.add_argument("--episode-ids", type=_int_list, help="the episode ids tried, in order, e.g. 25-49 (default: "
                    "all of a task's): keep the ids you evaluate on out of the demonstrations")
    co.add_argument("--image-size", type=int, default=128, help="camera resolution in pixels; 0 records no "
                    "images (default: 128)")
    co.add_argument("--replan-steps", type=int, default=5, help="actions executed per chunk (default: 5)")
    co.add_argument("--seed", type=int, default=7, help="base seed (default: 7)")
    co.add_argument("--flush-every", type=int, default=10, help="episodes per data file (default: 10)")
    co.add_argument("--asset-dir", help="SimplerEnv: ManiSkill asset directory (see `eval --asset-dir`)")
    co.add_argument("--fixtures", help="LIBERO: fixture placement (see `eval --fixtures`)")
    _add_nav_arguments(co)
    co.add_argument("--env-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="an option of the suite's env (`vla-bench ls --suite NAME` lists them)")
    co.add_argument("--policy-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="keyword argument for the policy factory; VALUE is parsed as JSON when it can be")
    co.add_argument("--no-progress", action="store_true", help="no progress bar")

    sy = sub.add_parser("synth", help="write the synthetic text-action corpus for T2A (LeRobotDataset v3, no "
                        "images), one dataset per robot configuration", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sy.add_argument("--out", required=True, help="output directory; <out>/<embodiment>/ per configuration")
    sy.add_argument("--episodes", type=int, default=1000, help="episodes per robot configuration (default: 1000)")
    sy.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    sy.add_argument("--robots", help="comma-separated embodiment names (default: all configurations)")
    sy.add_argument("--no-progress", action="store_true", help="no progress bar")

    tr = sub.add_parser("train", help="train a stage (t2a, cpt, sft) of the flow VLA; resumes from --out; runs "
                        "under torchrun for DDP", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.add_argument("--stage", required=True, choices=["t2a", "cpt", "sft"], help="t2a: backbone frozen, no images, "
                    "full trajectories; cpt: all trains on the mix; sft: downstream data, task-balanced")
    tr.add_argument("--data", required=True, help="comma-separated dataset dirs (robot / downstream data)")
    tr.add_argument("--synthetic", help="synthetic corpus dir (`vla-bench synth --out`), the mix's 'synthetic' share")
    tr.add_argument("--embodiment", help="embodiment of the --data datasets (default: each dataset's own; needed for "
                    "datasets recorded elsewhere whose robot_type is not a registered embodiment)")
    tr.add_argument("--out", required=True, help="run dir: checkpoint, stage.json, logs; rerun to resume")
    tr.add_argument("--init", help="parent checkpoint dir (model config + weights)")
    tr.add_argument("--preset", default="tiny-1m", help="model preset without --init (default: tiny-1m)")
    tr.add_argument("--steps", type=int, default=1000, help="optimizer steps (default: 1000)")
    tr.add_argument("--batch-size", type=int, default=32, help="samples per step per process (default: 32)")
    tr.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step (default: 1)")
    tr.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (default: 3e-4)")
    tr.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default: 0.01)")
    tr.add_argument("--warmup-steps", type=int, default=100, help="linear warmup steps (default: 100)")
    tr.add_argument("--clip-norm", type=float, default=1.0, help="gradient clipping norm, 0: off (default: 1.0)")
    tr.add_argument("--targets", choices=["chunk", "full"], help="action chunks or full trajectories (default: "
                    "the stage's)")
    tr.add_argument("--horizon", type=int, help="chunk length (default: the embodiment's chunk size)")
    tr.add_argument("--max-len", type=int, default=256, help="full-trajectory length (default: 256)")
    tr.add_argument("--images", action=argparse.BooleanOptionalAction, default=None,
                    help="feed camera images (default: the parent's setting, else off; never in t2a)")
    tr.add_argument("--mix", help="pretraining mix or 'none' (default: the stage's)")
    tr.add_argument("--balance", help="none | task | embodiment | embodiment_task (default: the stage's)")
    tr.add_argument("--trainable", help="comma-separated parameter prefixes that train, or 'all' (default: the "
                    "stage's)")
    tr.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    tr.add_argument("--bf16", choices=["auto", "on", "off"], default="auto", help="bf16 autocast (default: auto, "
                    "i.e. on CUDA with bf16 support)")
    tr.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    tr.add_argument("--threads", type=int, help="torch CPU threads per process (default: cores / processes)")
    tr.add_argument("--save-every", type=int, default=500, help="steps between checkpoints (default: 500)")
    tr.add_argument("--log-every", type=int, default=10, help="steps between log rows (default: 10)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")

    pl = sub.add_parser("pipeline", help="the recipe in one run: data, T2A -> CPT -> SFT -> RL as configured, an "
                        "evaluation after each stage; rerun to resume (done steps are skipped)", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    pl.add_argument("config", help="pipeline config (.yaml or .toml); see leaderboards/cpu_repro/pipeline.yaml")
    pl.add_argument("--out", help="run directory (default: the config's `out`, else runs/pipeline/<name>)")
    pl.add_argument("--no-progress", action="store_true", help="no progress bars")

    rl = sub.add_parser("rl", help="PPO over action chunks with noise-injected Euler steps (Flow-SDE / Flow-Noise); "
                        "rerun with the same --out to resume", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    rl.add_argument("--suite", required=True, help="one suite, e.g. libero_object or toy_reach")
    rl.add_argument("--tasks", type=_int_list, default=[0], help="task indices, e.g. 0,1 (default: 0)")
    rl.add_argument("--init", required=True, help="starting checkpoint directory (e.g. an SFT checkpoint)")
    rl.add_argument("--out", required=True, help="run directory; <out>/policy is the checkpoint for `eval --policy`")
    rl.add_argument("--noise", default="flow_sde", choices=["flow_sde", "flow_noise"], help="noise injection")
    rl.add_argument("--env-steps", type=int, default=50_000, help="budget of executed actions (default: 50000)")
    rl.add_argument("--iterations", type=int, help="stop after this many iterations even within the budget")
    rl.add_argument("--envs-per-task", type=int, default=4, help="env slots per task (default: 4)")
    rl.add_argument("--rollout-steps", type=int, default=16, help="chunk steps per env per iteration (default: 16)")
    rl.add_argument("--replan-steps", type=int, default=5, help="actions executed per chunk (default: 5)")
    rl.add_argument("--lr-actor", type=float, default=1e-5, help="policy learning rate (default: 1e-5)")
    rl.add_argument("--lr-critic", type=float, default=1e-3, help="value head learning rate (default: 1e-3)")
    rl.add_argument("--expert-only", action="store_true", help="train the action expert only (backbone frozen)")
    rl.add_argument("--workers", choices=["auto", "yes", "no"], default="auto",
                    help="env slots in worker processes (auto: yes except toy_reach)")
    _add_backend_arguments(rl)
    rl.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    rl.add_argument("--image-size", type=_positive_int, help="the policy's image size (see `eval --image-size`)")
    rl.add_argument("--asset-dir", help="SimplerEnv: ManiSkill asset directory (see `eval --asset-dir`)")
    rl.add_argument("--set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="any other RLConfig field (vla_bench/rl/config.py), e.g. sde_a=0.3, target_kl=0.02")
    rl.add_argument("--no-progress", action="store_true", help="no progress bar")

    bl = sub.add_parser("rl-baseline", help="from-scratch baseline: stable-baselines3 PPO (MLP) on state + task "
                        "one-hot; rerun with the same --out to resume", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    bl.add_argument("--suite", required=True, help="one suite, e.g. libero_object or toy_reach")
    bl.add_argument("--tasks", type=_int_list, help="task indices, e.g. 0,1 (default: all)")
    bl.add_argument("--out", required=True, help="run directory; it is the policy for `eval --policy`")
    bl.add_argument("--env-steps", type=int, default=100_000, help="budget of env steps (default: 100000)")
    bl.add_argument("--envs-per-task", type=int, default=4, help="env slots per task (default: 4)")
    bl.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    bl.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    bl.add_argument("--workers", choices=["auto", "yes", "no"], default="auto",
                    help="env slots in worker processes (auto: yes except toy_reach)")
    bl.add_argument("--no-progress", action="store_true", help="no progress bar")

    sv = sub.add_parser("serve", help="serve a policy over websocket in openpi's protocol (msgpack-numpy); "
                        "`eval --policy ws://HOST:PORT` or openpi's client connects to it")
    sv.add_argument("--policy", required=True, help="checkpoint dir | registered name | package.module:factory")
    sv.add_argument("--embodiment", help="the embodiment to serve (default: the checkpoint's, if it has one)")
    sv.add_argument("--host", default="0.0.0.0", help="interface to listen on (default: 0.0.0.0)")
    sv.add_argument("--port", type=int, default=8000, help="port (default: 8000, openpi's)")
    sv.add_argument("--max-batch", type=_positive_int, default=16, help="observations per forward pass (default: 16)")
    sv.add_argument("--batch-window-ms", type=float, default=5.0, help="how long the first observation waits for "
                    "other clients' (default: 5; no wait when every client is in the batch)")
    sv.add_argument("--policy-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="keyword argument for the policy factory, e.g. device=cuda, num_steps=5")

    ne = sub.add_parser("nav-episodes", help="R2R-CE / RxR-CE: a VLN-CE-format episodes file for scenes without "
                        "R2R annotations (random start/goal pairs, templated instructions: NOT R2R)")
    ne.add_argument("--scenes", required=True, help="a scene folder (its .glb files) or one scene file, e.g. "
                    "../shared/assets/nav_scenes")
    ne.add_argument("--out", required=True, help="episodes file to write (.json.gz; the nDTW ground truth goes "
                    "beside it as <name>_gt.json.gz)")
    ne.add_argument("--per-scene", type=_positive_int, default=10, help="episodes per scene (default: 10)")
    ne.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    ne.add_argument("--min-distance", type=float, default=4.0, help="shortest geodesic start-goal distance, "
                    "metres (default: 4, beyond the 3 m success radius)")
    ne.add_argument("--max-distance", type=float, default=12.0, help="longest one (default: 12)")
    ne.add_argument("--cache-dir", help="navmesh bake cache (default: $VLA_BENCH_CACHE/navmesh or "
                    "~/.cache/vla-bench/navmesh)")
    ne.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _add_backend_arguments(parser) -> None:
    parser.add_argument("--backend", choices=["local", "ray"], default="local", help="where env workers run: local "
                        "processes, or Ray actors on a local or existing Ray cluster (default: local)")
    parser.add_argument("--ray-address", help="an existing Ray cluster, e.g. auto or ray://HOST:10001 (default: start "
                        "a local one)")


RUNNER_BACKENDS, NAV_BACKENDS = ("local", "ray"), ("navmesh", "habitat")


def _add_nav_arguments(parser, runner_backends: bool = False) -> None:
    """R2R-CE / RxR-CE env options (eval and collect). In eval, --backend also names where env workers run (local or
    ray): one flag for both, given twice where both are meant (`--backend ray --backend habitat`)."""
    if runner_backends:
        parser.add_argument("--backend", choices=RUNNER_BACKENDS + NAV_BACKENDS, action="append",
                            help="local (default) or ray: where env workers run (Ray actors on a local or existing "
                            "cluster); navmesh (default) or habitat: the R2R/RxR simulator (habitat needs habitat-sim "
                            "and MP3D scenes); give it twice for both")
        parser.add_argument("--ray-address", help="an existing Ray cluster, e.g. auto or ray://HOST:10001 "
                            "(default: start a local one)")
    else:
        parser.add_argument("--backend", choices=NAV_BACKENDS, help="R2R/RxR: simulator backend (default: navmesh; "
                            "habitat needs habitat-sim and MP3D scenes)")
    parser.add_argument("--split", help="R2R/RxR: split of VLN-CE's data layout (default: val_unseen)")
    parser.add_argument("--episodes-file", help="R2R/RxR: VLN-CE episodes file (json.gz); `vla-bench nav-episodes` "
                        "makes one for test scenes")
    parser.add_argument("--scenes-dir", help="R2R/RxR: folder the episodes' scene_id paths are under (default: the "
                        "generated file's, else data/scene_datasets)")


def _backends(args, kind: tuple[str, ...]) -> list[str]:
    given = args.backend if isinstance(args.backend, list) else [args.backend] if args.backend else []
    return [b for b in given if b in kind]


def _nav_env_options(args) -> dict:
    options = {k: getattr(args, k) for k in ("split", "episodes_file", "scenes_dir") if getattr(args, k, None)}
    nav = _backends(args, NAV_BACKENDS)
    return options | ({"backend": nav[-1]} if nav else {})


def cmd_eval(args) -> int:
    from vla_bench.eval.runner import EvalConfig, evaluate
    from vla_bench.eval.table import markdown_table

    if args.resume and not args.run_dir:
        raise ValueError("--resume needs the --run-dir of the run to continue")
    run_dir = args.run_dir or f"runs/{args.suite.replace(',', '+')}-{args.policy.strip('/').split('/')[-1]}-" \
                              f"{time.strftime('%Y%m%d-%H%M%S')}"
    env_options = dict(args.env_option)
    if args.hard_reset:
        env_options["hard_reset"] = True
    if args.asset_dir:
        env_options["asset_dir"] = args.asset_dir
    if args.robotwin_root:
        env_options["robotwin_root"] = args.robotwin_root
    if args.fixtures:
        env_options["fixtures"] = args.fixtures
    env_options |= _nav_env_options(args)
    config = EvalConfig(suites=args.suite, policy=args.policy, run_dir=run_dir, tasks=args.tasks,
                        episodes=args.episodes, episode_ids=args.episode_ids, seed=args.seed, seeds=args.seeds,
                        image_size=args.image_size, replan_steps=args.replan_steps, env_options=env_options,
                        policy_options=dict(args.policy_option), max_attempts=args.max_attempts,
                        chunk_timeout=args.chunk_timeout, episode_timeout=args.episode_timeout,
                        policy_process=args.policy_process, ray_address=args.ray_address,
                        backend=(_backends(args, RUNNER_BACKENDS) or ["local"])[-1],
                        **({"workers": args.workers} if args.workers else {}))
    results = evaluate(config, resume=args.resume, progress=not args.no_progress)
    print(markdown_table([run_dir]))
    tp = results["throughput"]
    print(f"\n{tp['env_steps']} env steps at {tp['env_steps_per_s']} steps/s "
          f"(render share {tp['render_share']}); results: {run_dir}/results.json")
    overall = results["metrics"]["overall"]
    if overall["errors"]:
        # An errored episode counts as a failure in the table: say so loudly, or a wrong flag reads as a real 0%.
        first = next(r["error"] for r in results["episodes"] if r.get("error"))
        print(f"vla-bench: warning: {overall['errors']} of {overall['episodes']} episodes ended in an error "
              f"(first: {first}); see {run_dir}/episodes.jsonl", file=sys.stderr)
    return 1 if overall["errors"] == overall["episodes"] else 0


def cmd_ls(args) -> int:
    from vla_bench.embodiment import EMBODIMENTS
    from vla_bench.envs.registry import SUITE_GROUPS, expand_suites, get_suite, list_tasks, suites
    from vla_bench.policies.base import POLICIES

    if args.suite:
        for suite in expand_suites(args.suite):
            spec = get_suite(suite)
            cameras = ", ".join(f"{c.name} {c.width}x{c.height} {'+'.join(c.kinds)}" for c in spec.cameras)
            print(f"# {suite}: {spec.protocol} v{spec.protocol_version}; metrics "
                  f"{', '.join(m.name for m in spec.metrics)}; cameras {cameras}; env options "
                  f"{', '.join(('image_size',) + spec.env_options)}"
                  + (f"; own environment: scripts/setup.sh --suite {spec.python_env}" if spec.python_env else ""))
            try:
                tasks = list_tasks(suite)
            except FileNotFoundError as e:  # its tasks come from a file the user names (R2R's episodes)
                print(f"{suite}\t(tasks: {e})")
                continue
            for t in tasks:
                print(f"{suite}\t{t.index}\t{t.max_steps} steps\t{t.default_episodes} of {len(t.episode_ids)} "
                      f"episodes\t{t.instruction}")
        return 0
    print("suites:      " + ", ".join(suites()))
    print("groups:      " + ", ".join(f"{g} = {'+'.join(s)}" for g, s in SUITE_GROUPS.items()))
    print("policies:    " + ", ".join(POLICIES) + ", <checkpoint dir>, <package.module:factory>")
    print("embodiments: " + ", ".join(f"{n} ({s.action_dim})" for n, s in EMBODIMENTS.items()))
    return 0


def cmd_table(args) -> int:
    from pathlib import Path

    if args.by == "run":
        from vla_bench.eval.table import markdown_table

        stage_only = [flag for flag, given in ((f"--format {args.format}", args.format != "markdown"),
                                               ("--reference", args.reference), ("--plot", args.plot)) if given]
        if stage_only:
            raise ValueError(f"{', '.join(stage_only)} needs --by stage (the per-run table is Markdown only)")
        text = markdown_table(args.runs, metric=args.metric) + "\n"
    else:
        from vla_bench.eval.stage_table import render, stage_table

        table = stage_table(args.runs, metric=args.metric, reference=args.reference)
        text = render(table, args.format)
        if args.plot:
            from vla_bench.eval.plots import plot_stage_table

            try:
                print(f"plot: {plot_stage_table(table, args.plot)}", file=sys.stderr)
            except ImportError as e:  # matplotlib is optional
                raise ValueError(str(e)) from e
    if args.out:
        Path(args.out).write_text(text)
        print(f"table: {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_plot_rl(args) -> int:
    from vla_bench.eval.plots import plot_rl

    try:
        print(plot_rl(args.run, args.out, window=args.window))
    except ImportError as e:  # matplotlib is optional
        raise ValueError(str(e)) from e
    return 0


def cmd_collect(args) -> int:
    from vla_bench.data.collect import CollectConfig, collect

    config = CollectConfig(suites=args.suite, policy=args.policy, out=args.out, episodes=args.episodes,
                           episode_ids=args.episode_ids, tasks=args.tasks, image_size=args.image_size,
                           replan_steps=args.replan_steps,
                           seed=args.seed, flush_every=args.flush_every, policy_options=dict(args.policy_option),
                           env_options=dict(args.env_option) | ({"asset_dir": args.asset_dir} if args.asset_dir else {})
                           | ({"fixtures": args.fixtures} if args.fixtures else {}) | _nav_env_options(args))
    print(json.dumps(collect(config, progress=not args.no_progress), indent=1))
    return 0


def cmd_nav_episodes(args) -> int:
    from vla_bench.envs.r2r.generate import generate_episodes

    summary = generate_episodes(args.scenes, args.out, per_scene=args.per_scene, seed=args.seed,
                                min_distance=args.min_distance, max_distance=args.max_distance,
                                cache_dir=args.cache_dir, progress=not args.no_progress)
    print(json.dumps(summary, indent=1))
    print(f"NOT R2R (generated episodes on stand-in scenes); evaluate: vla-bench eval --suite r2r --backend navmesh "
          f"--episodes-file {args.out}")
    return 0


def cmd_synth(args) -> int:
    from vla_bench.data.synthetic import write_corpus

    robots = args.robots.split(",") if args.robots else None
    frames = write_corpus(args.out, args.episodes, seed=args.seed, robots=robots, progress=not args.no_progress)
    print(json.dumps({"out": args.out, "episodes_per_robot": args.episodes, "frames": frames}, indent=1))
    return 0


def cmd_train(args) -> int:
    from vla_bench.train import TrainConfig, train

    config = TrainConfig(stage=args.stage, data=args.data.split(","), out=args.out, synthetic=args.synthetic,
                         embodiment=args.embodiment,
                         init=args.init, preset=args.preset, steps=args.steps, batch_size=args.batch_size,
                         grad_accum=args.grad_accum, lr=args.lr, weight_decay=args.weight_decay,
                         warmup_steps=args.warmup_steps, clip_norm=args.clip_norm, targets=args.targets,
                         horizon=args.horizon, max_len=args.max_len, images=args.images, mix=args.mix,
                         balance=args.balance, trainable=args.trainable.split(",") if args.trainable else None,
                         seed=args.seed, bf16=args.bf16, device=args.device, threads=args.threads,
                         save_every=args.save_every, log_every=args.log_every, progress=not args.no_progress)
    record = train(config)
    if record is not None:  # rank 0
        print(json.dumps({k: record[k] for k in ("stage", "step", "samples_seen", "samples_per_source", "world_size",
                                                 "ddp_weights_in_sync")} | {"out": args.out}, indent=1))
    return 0


def _workers_choice(value: str) -> bool | None:
    """--workers auto|yes|no -> the configs' workers field (None: the suite's default)."""
    return {"auto": None, "yes": True, "no": False}[value]


def cmd_pipeline(args) -> int:
    from vla_bench.pipeline import run_pipeline

    state = run_pipeline(args.config, out=args.out, progress=not args.no_progress)
    for key, step in state["steps"].items():
        print(f"{key}\t{step['status']}\t{step['wall_seconds']:.0f} s")
    return 0


def cmd_rl(args) -> int:
    from vla_bench.rl.config import RLConfig
    from vla_bench.rl.trainer import train

    config = RLConfig(suite=args.suite, tasks=args.tasks, init=args.init, out=args.out, noise=args.noise,
                      total_env_steps=args.env_steps, max_iterations=args.iterations,
                      envs_per_task=args.envs_per_task, rollout_steps=args.rollout_steps,
                      replan_steps=args.replan_steps, lr_actor=args.lr_actor, lr_critic=args.lr_critic,
                      expert_only=args.expert_only, workers=_workers_choice(args.workers),
                      image_size=args.image_size, backend=args.backend, ray_address=args.ray_address,
                      env_options={"asset_dir": args.asset_dir} if args.asset_dir else {},
                      seed=args.seed, progress=not args.no_progress, **dict(args.set))
    print(json.dumps(train(config), indent=1))
    return 0


def cmd_rl_baseline(args) -> int:
    try:
        from vla_bench.rl.sb3_baseline import MODEL_FILE, BaselineConfig, train
    except ImportError as e:  # the optional `baselines` extra
        raise ValueError(str(e)) from e

    config = BaselineConfig(suite=args.suite, tasks=args.tasks, out=args.out, env_steps=args.env_steps,
                            envs_per_task=args.envs_per_task, seed=args.seed, threads=args.threads,
                            workers=_workers_choice(args.workers),
                            progress=not args.no_progress)
    meta = train(config)
    tasks = ",".join(map(str, meta["tasks"]))
    print(json.dumps({k: meta[k] for k in ("suite", "tasks", "num_timesteps", "n_steps", "batch_size")}
                     | {"model": f"{args.out}/{MODEL_FILE}"}, indent=1))
    print(f"evaluate: vla-bench eval --suite {meta['suite']} --tasks {tasks} --policy {args.out} --replan-steps 1 "
          f"--run-dir {args.out.rstrip('/')}_eval")
    return 0


def cmd_serve(args) -> int:
    import logging

    try:
        from vla_bench.serve.batching import load_batch_policy
        from vla_bench.serve.server import PolicyServer, default_embodiment, run_server
    except ImportError as e:  # the optional `serve` extra
        raise ValueError(f"{e}; `vla-bench serve` needs the serve extra: pip install -e '.[serve]'") from e
    from vla_bench.embodiment import get_embodiment

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    embodiment = get_embodiment(args.embodiment or default_embodiment(args.policy))
    policy = load_batch_policy(args.policy, embodiment, **dict(args.policy_option))
    run_server(PolicyServer(policy, name=args.policy, host=args.host, port=args.port, max_batch=args.max_batch,
                            batch_window_ms=args.batch_window_ms))
    return 0


def main(argv: list[str] | None = None) -> int:
    from vla_bench.envs.spec import SuiteUnavailable
    from vla_bench.eval.runner import EvalFatalError
    from vla_bench.process_lifecycle import Terminated, handle_sigterm

    args = build_parser().parse_args(argv)
    handle_sigterm()  # SIGTERM (Slurm, docker, timeout) stops a run like Ctrl-C: partial results, then exit 143
    command = {"eval": cmd_eval, "ls": cmd_ls, "table": cmd_table, "collect": cmd_collect,
               "synth": cmd_synth, "train": cmd_train, "rl": cmd_rl, "pipeline": cmd_pipeline,
               "rl-baseline": cmd_rl_baseline, "serve": cmd_serve, "nav-episodes": cmd_nav_episodes,
               "plot-rl": cmd_plot_rl}[args.command]
    try:
        return command(args)
    except (KeyError, ValueError, IndexError, FileExistsError, FileNotFoundError,
            SuiteUnavailable) as e:
        print(f"vla-bench: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except EvalFatalError as e:
        print(f"vla-bench: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk, a read-only run directory
        print(f"vla-bench: error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"\nvla-bench: {e.args[0] if e.args else 'interrupted'}", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
