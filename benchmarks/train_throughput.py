"""Training throughput of the tiny flow-VLA configs on this machine: samples/s of one optimizer step.

One step = forward + backward of the masked flow loss + gradient clipping + AdamW, on LIBERO-shaped batches:
embodiment prompt with a LIBERO instruction, 8-D state, 7 of K = 32 action channels, and
  chunk     H = 10 action steps (SFT / CPT targets), state + language;
  full      200 action steps (T2A full-trajectory targets, a typical LIBERO episode), backbone frozen, no images;
  images    H = 10 with two 128 px views (resized to the preset's image size inside the backbone).
Data loading is left out (the sampler's cost is printed separately for the chunk case), so this is the model's
ceiling; `charts/samples_per_s` in a run's logs is the end-to-end figure.

    python benchmarks/train_throughput.py                        # tiny-1m, 1 thread
    python benchmarks/train_throughput.py --presets tiny-1m,tiny-10m --threads 2 --batch-size 32
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from vla_bench.embodiment import embodiment_prompt, get_embodiment
from vla_bench.policies.flow_vla import FlowVLA, PrefixInputs, preset_config
from vla_bench.train.optim import apply_trainable, make_optimizer
from vla_bench.train.trainer import flow_noise

MODES = {"chunk": (10, False, False), "full": (200, False, True), "images": (10, True, False)}  # H, images, frozen
INSTRUCTION = "pick up the alphabet soup and place it in the basket"


def make_batch(spec, batch: int, horizon: int, images: bool) -> tuple[PrefixInputs, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    prompts = [embodiment_prompt(spec, INSTRUCTION, horizon)] * batch
    views = {t: torch.randint(0, 256, (batch, 128, 128, 3), generator=g, dtype=torch.uint8)
             for t in spec.view_tags} if images else {}
    mask = torch.zeros(batch, horizon, 32, dtype=torch.bool)
    mask[..., :spec.action_dim] = True
    actions = torch.where(mask, torch.rand(batch, horizon, 32, generator=g) * 2 - 1, 0.0)
    return PrefixInputs(prompts, torch.randn(batch, spec.state_dim, generator=g), views), actions, mask


def measure(preset: str, mode: str, batch: int, steps: int, repeats: int) -> dict:
    horizon, images, frozen = MODES[mode]
    config = preset_config(preset, use_images=images)
    if horizon > config.expert.max_horizon:
        config.expert.max_horizon = horizon
    torch.manual_seed(0)
    model = FlowVLA(config)
    counts = apply_trainable(model, ["expert"] if frozen else ["all"])
    optimizer = make_optimizer(model, 3e-4, 0.01, (0.9, 0.95))
    params = [p for p in model.parameters() if p.requires_grad]
    inputs, actions, mask = make_batch(get_embodiment("libero_panda"), batch, horizon, images)

    def step(i: int) -> None:
        noise, t = flow_noise(0, i, batch, horizon, 32, model)
        optimizer.zero_grad(set_to_none=True)
        model.loss(inputs, actions, mask, noise, t).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    step(0)  # warm-up
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        for i in range(steps):
            step(1 + r * steps + i)
        rates.append(batch * steps / (time.perf_counter() - start))
    total = counts["trainable"] + counts["frozen"]
    return {"preset": preset, "mode": mode, "params_m": total / 1e6, "trainable_m": counts["trainable"] / 1e6,
            "samples_per_s": statistics.median(rates), "spread": (min(rates), max(rates))}


def sampler_rate(batch: int, draws: int = 20) -> float | None:
    """Samples/s of MixtureSampler on a toy_reach dataset (chunk mode), or None if it cannot be built here."""
    import tempfile

    from vla_bench.data.collect import CollectConfig, collect
    from vla_bench.data.lerobot import DatasetReader
    from vla_bench.data.mixture import MixtureSampler, Source

    with tempfile.TemporaryDirectory() as tmp:
        collect(CollectConfig(suites="toy_reach", policy="vla_bench.envs.toy:ToyScriptedPolicy", out=tmp,
                              episodes=5, image_size=0), progress=False)
        sampler = MixtureSampler([Source("toy", [DatasetReader(tmp)], balance="task")], horizon=10)
        start = time.perf_counter()
        for i in range(draws):
            sampler.batch(i, batch)
        return batch * draws / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="tiny-1m")
    parser.add_argument("--modes", default="chunk,full,images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s), "
          f"batch {args.batch_size}, median of {args.repeats} x {args.steps} steps")
    print(f"{'preset':10} {'mode':7} {'params':>8} {'trainable':>10} {'samples/s':>10}  (min..max)")
    for preset in args.presets.split(","):
        for mode in args.modes.split(","):
            r = measure(preset, mode, args.batch_size, args.steps, args.repeats)
            print(f"{r['preset']:10} {r['mode']:7} {r['params_m']:7.2f}M {r['trainable_m']:9.2f}M "
                  f"{r['samples_per_s']:10.1f}  ({r['spread'][0]:.1f}..{r['spread'][1]:.1f})")
    rate = sampler_rate(args.batch_size)
    print(f"data: MixtureSampler chunk draws (toy_reach, no images) {rate:.0f} samples/s")


if __name__ == "__main__":
    main()
