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
  vla-bench eval --suite libero --policy ckpts/sft --workers 8 --run-dir runs/sft
  vla-bench eval --suite libero --policy ckpts/sft --run-dir runs/sft --resume   # finish an interrupted run
  vla-bench table runs/cpt runs/sft runs/rl
  vla-bench collect --suite libero_object --policy scripted --tasks 0,1 --episodes 20 --out data/libero_object
  vla-bench synth --out data/synthetic --episodes 1000 --seed 0   # T2A corpus, one dataset per robot config
"""


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


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
    ev.add_argument("--episodes", type=int, default=50, help="episodes per task: init states 0..N-1 (default: 50)")
    ev.add_argument("--init-indices", type=_int_list, help="explicit init-state indices (overrides --episodes)")
    ev.add_argument("--seed", type=int, default=7, help="base seed (default: 7)")
    ev.add_argument("--image-size", type=int, default=128, help="camera resolution in pixels (default: 128)")
    ev.add_argument("--replan-steps", type=int, default=5, help="actions executed per chunk (default: 5)")
    ev.add_argument("--workers", type=int, help="worker processes (default: number of cores)")
    ev.add_argument("--run-dir", help="output directory (default: runs/<suite>-<policy>-<time>)")
    ev.add_argument("--resume", action="store_true", help="run only the episodes missing from --run-dir")
    ev.add_argument("--hard-reset", action="store_true", help="rebuild the simulator model at every reset (slow)")
    ev.add_argument("--policy-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="keyword argument for the policy factory; VALUE is parsed as JSON when it can be")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")

    ls = sub.add_parser("ls", help="list suites, tasks, policies and embodiments")
    ls.add_argument("--suite", help="list this suite's tasks")

    tb = sub.add_parser("table", help="Markdown table from run directories or results.json files")
    tb.add_argument("runs", nargs="+")

    co = sub.add_parser("collect", help="record a policy's successful episodes as a LeRobotDataset v3",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    co.add_argument("--suite", required=True, help="suite, group or comma-separated list (one embodiment)")
    co.add_argument("--policy", default="scripted", help="registered policy or package.module:factory "
                    "(default: scripted)")
    co.add_argument("--out", required=True, help="dataset directory; rerun with the same one to resume")
    co.add_argument("--episodes", type=int, default=50, help="successful episodes per task (default: 50)")
    co.add_argument("--tasks", type=_int_list, help="task indices, e.g. 0,3,7 (default: all)")
    co.add_argument("--image-size", type=int, default=128, help="camera resolution in pixels; 0 records no "
                    "images (default: 128)")
    co.add_argument("--replan-steps", type=int, default=5, help="actions executed per chunk (default: 5)")
    co.add_argument("--seed", type=int, default=7, help="base seed (default: 7)")
    co.add_argument("--flush-every", type=int, default=10, help="episodes per data file (default: 10)")
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
    return parser


def cmd_eval(args) -> int:
    from vla_bench.eval.runner import EvalConfig, evaluate
    from vla_bench.eval.table import markdown_table

    if args.resume and not args.run_dir:
        raise ValueError("--resume needs the --run-dir of the run to continue")
    run_dir = args.run_dir or f"runs/{args.suite.replace(',', '+')}-{args.policy.strip('/').split('/')[-1]}-" \
                              f"{time.strftime('%Y%m%d-%H%M%S')}"
    config = EvalConfig(suites=args.suite, policy=args.policy, run_dir=run_dir, tasks=args.tasks,
                        episodes=args.episodes, init_indices=args.init_indices, seed=args.seed,
                        image_size=args.image_size, replan_steps=args.replan_steps, hard_reset=args.hard_reset,
                        policy_options=dict(args.policy_option),
                        **({"workers": args.workers} if args.workers else {}))
    results = evaluate(config, resume=args.resume, progress=not args.no_progress)
    print(markdown_table([run_dir]))
    tp = results["throughput"]
    print(f"\n{tp['env_steps']} env steps at {tp['env_steps_per_s']} steps/s "
          f"(render share {tp['render_share']}); results: {run_dir}/results.json")
    return 0


def cmd_ls(args) -> int:
    from vla_bench.embodiment import EMBODIMENTS
    from vla_bench.envs.registry import SUITE_GROUPS, SUITES, expand_suites, list_tasks
    from vla_bench.policies.base import POLICIES

    if args.suite:
        for suite in expand_suites(args.suite):
            for t in list_tasks(suite):
                print(f"{suite}\t{t.index}\t{t.max_steps} steps\t{t.instruction}")
        return 0
    print("suites:      " + ", ".join(SUITES))
    print("groups:      " + ", ".join(f"{g} = {'+'.join(s)}" for g, s in SUITE_GROUPS.items()))
    print("policies:    " + ", ".join(POLICIES) + ", <checkpoint dir>, <package.module:factory>")
    print("embodiments: " + ", ".join(f"{n} ({s.action_dim})" for n, s in EMBODIMENTS.items()))
    return 0


def cmd_table(args) -> int:
    from vla_bench.eval.table import markdown_table

    print(markdown_table(args.runs))
    return 0


def cmd_collect(args) -> int:
    from vla_bench.data.collect import CollectConfig, collect

    config = CollectConfig(suites=args.suite, policy=args.policy, out=args.out, episodes=args.episodes,
                           tasks=args.tasks, image_size=args.image_size, replan_steps=args.replan_steps,
                           seed=args.seed, flush_every=args.flush_every, policy_options=dict(args.policy_option))
    print(json.dumps(collect(config, progress=not args.no_progress), indent=1))
    return 0


def cmd_synth(args) -> int:
    from vla_bench.data.synthetic import write_corpus

    robots = args.robots.split(",") if args.robots else None
    frames = write_corpus(args.out, args.episodes, seed=args.seed, robots=robots, progress=not args.no_progress)
    print(json.dumps({"out": args.out, "episodes_per_robot": args.episodes, "frames": frames}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    from vla_bench.envs.libero_setup import LiberoNotInstalled
    from vla_bench.eval.runner import EvalFatalError

    args = build_parser().parse_args(argv)
    command = {"eval": cmd_eval, "ls": cmd_ls, "table": cmd_table, "collect": cmd_collect,
               "synth": cmd_synth}[args.command]
    try:
        return command(args)
    except (KeyError, ValueError, IndexError, FileExistsError, FileNotFoundError, LiberoNotInstalled) as e:
        print(f"vla-bench: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except EvalFatalError as e:
        print(f"vla-bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"\nvla-bench: {e.args[0] if e.args else 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
