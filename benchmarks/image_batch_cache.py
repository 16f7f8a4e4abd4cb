"""Image training batches: the reader's row-group cache at its byte budget vs. one that holds 64 groups (what a
count-limited LRU of 64 entries held before), measured in one run on the same dataset and the same draws.

A random chunk draw reads one parquet row group (64 frames) per camera view; when the cache holds fewer groups than
the dataset has, nearly every draw decodes a group again. Prints samples/s of `MixtureSampler.batch` (chunks with
images, warm cache) for both, and their ratio.

    python benchmarks/image_batch_cache.py runs/repro/data/libero_sft runs/repro/data/simpler_sft
"""

from __future__ import annotations

import argparse
import time

import vla_bench.data.lerobot as lerobot
from vla_bench.train.config import TrainConfig
from vla_bench.train.data import build_sampler, build_sources


def rate(datasets: list[str], budget: int, batches: int, batch_size: int) -> tuple[float, int]:
    lerobot.IMAGE_CACHE_BYTES = budget
    config = TrainConfig(stage="sft", data=datasets, out="/dev/null", images=True, progress=False)
    sources = build_sources(config)
    sampler = build_sampler(config, sources, 32)
    for i in range(batches):  # warm-up: fill the cache as a run's first steps do
        sampler.batch(i, batch_size, 0, 1)
    start = time.perf_counter()
    for i in range(batches, 2 * batches):
        sampler.batch(i, batch_size, 0, 1)
    groups = sum(len(d._image_groups) for s in sources for d in s.datasets)
    return batches * batch_size / (time.perf_counter() - start), groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="LeRobot datasets with images")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    default = lerobot.IMAGE_CACHE_BYTES
    fast, groups = rate(args.datasets, default, args.batches, args.batch_size)
    readers = [lerobot.DatasetReader(d) for d in args.datasets]
    for r in readers:  # measure the group size on a reader that has read every group once
        for v in r.image_views:
            for row in range(0, r.num_frames, lerobot.ROW_GROUP_ROWS):
                r.image(v, row)
    per_group = sum(r._image_cache_bytes for r in readers) / max(1, sum(len(r._image_groups) for r in readers))
    slow, _ = rate(args.datasets, int(64 * per_group), args.batches, args.batch_size)
    print(f"image batches, {args.batch_size} samples, {', '.join(args.datasets)}")
    print(f"  {f'cache at the default budget ({default >> 20} MiB, {groups} groups held)':60s} {fast:8.1f} samples/s")
    print(f"  {f'cache holding 64 groups ({64 * per_group / 2**20:.0f} MiB)':60s} {slow:8.1f} samples/s")
    print(f"  ratio: {fast / slow:.2f}x")


if __name__ == "__main__":
    main()
