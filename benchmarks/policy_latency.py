"""Chunk latency of the flow VLA policy: N Euler steps with and without the prefix KV cache.

One LIBERO-shaped observation (two 128 px views, chunk H = 10) goes through the policy: prompt, backbone, sampling.
Three ways to run the N Euler steps:
  cached      the expert's prefix keys/values are computed once per chunk and reused at every step (the default);
  uncached    the backbone runs once, the expert runs over [prefix ; actions] at every step (joint attention);
  re-encoded  nothing is reused: backbone and expert over the whole prefix at every step, as a per-step
              model(obs, x_t, t) call would (pi0's inference without its KV cache).
The three alternate within each repeat, so their ratios are measured under the same machine load.

    python benchmarks/policy_latency.py                      # all configs, 1 thread
    python benchmarks/policy_latency.py --configs tiny-1m:text --repeats 21 --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from vla_bench.envs.libero import make_libero_example
from vla_bench.policies.flow_vla import FlowVLA, FlowVLAPolicy, preset_config
from vla_bench.policies.flow_vla.flow import euler_sample, euler_timesteps

CONFIGS = ["tiny-1m:text", "tiny-1m:images", "tiny-10m:images", "tiny-50m:images", "base-100m:images"]
STEPS = (1, 2, 4, 10)
TINY_TARGET_MS = 20.0  # the tiny CPU policy, N = 10, cached
CACHE_TARGET = 3.0  # uncached / cached at N = 10 when the prefix is longer than the chunk


def build(name: str) -> FlowVLA:
    preset, _, mode = name.partition(":")
    torch.manual_seed(0)
    model = FlowVLA(preset_config(preset, use_images=mode == "images")).eval()
    with torch.no_grad():  # fill the AdaLN-Zero layers (zero at init) so chunks are not trivially zero
        for p in model.expert.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


def millions(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def act_reencoding(policy: FlowVLAPolicy, obs) -> np.ndarray:
    """A chunk with no prefix reuse at all: backbone + expert over the whole prefix at every Euler step."""
    model, mask, steps = policy.model, policy.mask, policy.num_steps
    inputs, times = policy.prefix_inputs(obs), euler_timesteps(steps)
    noise = torch.where(mask, torch.randn(mask.shape, generator=policy.generator), 0.0)

    def step(x, k):
        cache = model.encode_prefix(inputs, kv=False)
        return model.expert.velocity_uncached(x, model.expert.condition(times[k].expand(1)), cache, mask)

    return euler_sample(step, noise, steps)[0].numpy()


def chunk_makers(model: FlowVLA, obs, steps: int) -> dict:
    cached = FlowVLAPolicy(model, obs.embodiment, num_steps=steps)
    uncached = FlowVLAPolicy(model, obs.embodiment, num_steps=steps, use_prefix_cache=False)
    reencoded = FlowVLAPolicy(model, obs.embodiment, num_steps=steps)
    return {"cached": lambda: cached.act(obs).actions, "uncached": lambda: uncached.act(obs).actions,
            "re-encoded": lambda: act_reencoding(reencoded, obs)}


def measure(model: FlowVLA, obs, steps: int, repeats: int) -> dict[str, float]:
    """Median ms per chunk of each way, alternating them so machine load hits all alike."""
    makers = chunk_makers(model, obs, steps)
    times: dict[str, list[float]] = {name: [] for name in makers}
    with torch.inference_mode():
        for fn in makers.values():  # warm-up: allocator, first-call dispatch
            fn()
        for _ in range(repeats):
            for name, fn in makers.items():
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def max_disagreement(model: FlowVLA, obs) -> float:
    """Largest |difference| between the three ways' chunks from the same noise (N = 10)."""
    with torch.inference_mode():
        chunks = [fn() for fn in chunk_makers(model, obs, 10).values()]
    return max(float(np.abs(c - chunks[0]).max()) for c in chunks[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="preset:text|images, comma-separated")
    parser.add_argument("--repeats", type=int, default=9, help="timed chunks per (config, N, way); median reported")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    obs = make_libero_example(seed=0)
    print(f"# torch {torch.__version__}, {args.threads} thread(s), {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start; ms per chunk, median of {args.repeats}")
    print(f"{'config':<17}{'bb M':>7}{'exp M':>7}{'all M':>7}{'L':>5}{'H':>4}{'N':>4}{'cached':>9}{'uncached':>10}"
          f"{'ratio':>7}{'re-encoded':>12}{'ratio':>7}")
    verdicts = []
    for name in args.configs.split(","):
        model = build(name)
        policy = FlowVLAPolicy(model, obs.embodiment)
        with torch.inference_mode():
            length = model.encode_prefix(policy.prefix_inputs(obs)).tokens.shape[1]
        sizes = f"{millions(model.backbone):>7.2f}{millions(model.expert):>7.2f}{millions(model):>7.2f}"
        for steps in STEPS:
            ms = measure(model, obs, steps, args.repeats)
            print(f"{name:<17}{sizes}{length:>5}{policy.chunk_size:>4}{steps:>4}{ms['cached']:>9.2f}"
                  f"{ms['uncached']:>10.2f}{ms['uncached'] / ms['cached']:>7.2f}{ms['re-encoded']:>12.2f}"
                  f"{ms['re-encoded'] / ms['cached']:>7.2f}", flush=True)
        verdicts.append(f"{name}: chunks of the three ways agree to {max_disagreement(model, obs):.1e}")
        if name.startswith("tiny-1m"):
            verdicts.append(f"{name}: {ms['cached']:.1f} ms a chunk at N=10 "
                            f"({'meets' if ms['cached'] <= TINY_TARGET_MS else 'misses'} <= {TINY_TARGET_MS:g} ms)")
        if length > policy.chunk_size:
            for way in ("uncached", "re-encoded"):
                ratio = ms[way] / ms["cached"]
                verdicts.append(f"{name}: cached vs {way} {ratio:.2f}x at N=10 "
                                f"({'meets' if ratio >= CACHE_TARGET else 'misses'} >= {CACHE_TARGET:g}x)")
    print("\n".join(["# targets"] + verdicts))


if __name__ == "__main__":
    main()
