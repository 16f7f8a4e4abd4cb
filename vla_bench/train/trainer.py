"""The one trainer behind T2A, CPT and SFT: a stage only changes what trains, which data and which targets.

One optimizer step on each process: draw batch `step` of this rank (the sampler is a pure function of the step, so
resuming and DDP need no sampler state), split it into `grad_accum` micro-batches, and accumulate the masked
flow-matching loss weighted so that the gradient equals that of one big batch over all ranks (every valid action
entry counts once, whatever micro-batch or rank it lands on). Flow noise and times are drawn per step from the seed
for the whole global batch and sliced per rank and micro-batch, so a resumed run, a run with accumulation and a DDP
run reproduce the same samples as one uninterrupted single-process run.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from vla_bench.metric_log import MetricLogger
from vla_bench.policies.flow_vla.flow import sample_time
from vla_bench.policies.flow_vla.model import FlowVLA
from vla_bench.train import distributed
from vla_bench.train.checkpointing import (STAGE_FILE, load_parent_weights, load_train_state, model_config,
                                           parent_record, save_stage, save_train_state)
from vla_bench.train.config import STAGES, TrainConfig
from vla_bench.train.data import (build_sampler, build_sources, checkpoint_norm_stats, data_record, embodiments,
                                  primary_embodiment, target_length, to_model_inputs, trim_padding)
from vla_bench.train.optim import apply_trainable, make_optimizer, make_scheduler

METRICS = ("losses/flow", "charts/lr", "charts/grad_norm", "charts/samples_per_s", "charts/samples")

RECORD_FORMAT = "vla_bench.train_stage/1"


class FlowLoss(nn.Module):
    """model.loss as forward(), so DistributedDataParallel sees the call it synchronizes gradients for."""

    def __init__(self, model: FlowVLA):
        super().__init__()
        self.model = model

    def forward(self, inputs, actions, mask, noise, t):
        return self.model.loss(inputs, actions, mask, noise=noise, time=t)


def flow_noise(seed: int, step: int, n: int, length: int, k: int, model: FlowVLA) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise [n, length, k] and flow times [n] of step `step` for the global batch: a pure function of (seed, step)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 1_000_003 + step)
        return torch.randn(n, length, k), sample_time(n, model.config.flow)


def use_bf16(mode: str, device: torch.device) -> bool:
    if mode == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    return mode == "on"


def train(config: TrainConfig) -> dict | None:
    """Run (or resume) a stage; returns its record (what stage.json holds) on rank 0, None on the other ranks."""
    info = distributed.setup(config.device, config.threads)
    try:
        record = Trainer(config, info).run()
        return record if info.is_main else None
    finally:
        distributed.teardown()


class Trainer:
    def __init__(self, config: TrainConfig, info: distributed.DistInfo):
        self.config, self.info, self.out = config, info, Path(config.out)
        self.sources = build_sources(config)
        model_cfg = model_config(config, target_length(config, self.sources))
        # Resolve the defaults the data and the parent decide, so the saved config says what ran.
        config.images = model_cfg.use_images
        config.horizon = config.horizon or primary_embodiment(self.sources).chunk_size
        torch.manual_seed(config.seed)
        self.model = FlowVLA(model_cfg, pretrained=config.init is None)
        self.init_report = load_parent_weights(self.model, config.init) if config.init else None
        self.param_counts = apply_trainable(self.model, config.trainable)
        self.sampler = build_sampler(config, self.sources, self.model.backbone.state_dim)
        self.model.to(info.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.model, config.lr, config.weight_decay, config.betas)
        self.scheduler = make_scheduler(self.optimizer, config.steps, config.warmup_steps, config.min_lr_ratio)
        self.bf16 = use_bf16(config.bf16, info.device)
        self.step, self.resumed_from = 0, []
        self.base_counts = {s.name: 0 for s in self.sources}  # samples per source drawn before this process started
        self.counts = dict.fromkeys(self.base_counts, 0)  # ... and by this rank since
        self._restore()
        loss = FlowLoss(self.model)
        self.loss = (torch.nn.parallel.DistributedDataParallel(loss, device_ids=[info.device.index]
                                                               if info.device.type == "cuda" else None)
                     if info.distributed else loss)

    def _restore(self) -> None:
        """Continue from <out>/train_state.pt if a previous run of the same config left one."""
        state = load_train_state(self.out)
        if state is None:
            if (self.out / STAGE_FILE).exists():
                raise FileExistsError(f"{self.out} holds a stage record but no {self.out}/train_state.pt to resume "
                                      "from; use another --out")
            return
        mismatch = self.config.resume_mismatch(state["config"])
        if mismatch or state["world_size"] != self.info.world_size:
            raise ValueError(f"{self.out} holds a run with another config (differs in "
                             f"{mismatch or ['world_size']}); use another --out or the same options")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.base_counts = state["step"], state["samples_per_source"]
        self.resumed_from = state["resumed_from"] + ([self.step] if self.step < self.config.steps else [])

    def run(self) -> dict:
        c, info = self.config, self.info
        if self.step >= c.steps:
            return self.record(self._global_counts(), in_sync=distributed.weights_in_sync(self.model, info))
        logger = MetricLogger(self.out / "logs", METRICS, resume_step=self.step) if info.is_main else None
        bar = tqdm(total=c.steps, initial=self.step, desc=f"train {c.stage}", unit="step", dynamic_ncols=True,
                   disable=not (info.is_main and c.progress))
        window_start, window_steps = time.perf_counter(), 0
        try:
            while self.step < c.steps:
                loss, grad_norm = self.train_step(self.step)
                self.step, window_steps = self.step + 1, window_steps + 1
                bar.update(1)
                last = self.step == c.steps
                if self.step % c.log_every == 0 or last:
                    rate = window_steps * c.batch_size * info.world_size / (time.perf_counter() - window_start)
                    bar.set_postfix(loss=f"{loss:.4f}")
                    if logger:
                        logger.log(self.step, {"losses/flow": loss, "charts/lr": self.scheduler.get_last_lr()[0],
                                               "charts/grad_norm": grad_norm, "charts/samples_per_s": rate,
                                               "charts/samples": self.step * c.batch_size * info.world_size})
                    window_start, window_steps = time.perf_counter(), 0
                if self.step % c.save_every == 0 or last:
                    record = self.save()
        finally:
            bar.close()
            if logger:
                logger.close()
        return record

    def train_step(self, step: int) -> tuple[float, float]:
        """One optimizer step over this rank's batch `step`; returns (global mean loss, gradient norm)."""
        c, info = self.config, self.info
        batch = self.sampler.batch(step, c.batch_size, info.rank, info.world_size)
        for name in batch["source"]:
            self.counts[name] += 1
        length = trim_padding(batch["actions"], batch["mask"])
        noise, t = flow_noise(c.seed, step, c.batch_size * info.world_size, batch["actions"].shape[1],
                              batch["actions"].shape[2], self.model)
        valid_total = distributed.all_sum(torch.tensor(float(batch["mask"][:, :length].sum())), info).item()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=info.device)
        for m in range(c.grad_accum):
            rows = slice(m * c.micro_batch, (m + 1) * c.micro_batch)
            inputs, actions, mask = to_model_inputs(batch, rows, length, info.device)
            first = info.rank * c.batch_size + rows.start
            noise_m = noise[first:first + c.micro_batch, :length].to(info.device)
            t_m = t[first:first + c.micro_batch].to(info.device)
            # DDP averages gradients over ranks, hence the world_size factor; sync only on the last micro-batch.
            sync = self.loss.no_sync() if info.distributed and m < c.grad_accum - 1 else contextlib.nullcontext()
            with sync:
                with torch.autocast(info.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    loss = self.loss(inputs, actions, mask, noise_m, t_m)
                weighted = loss.float() * (mask.sum().item() * info.world_size / valid_total)
                weighted.backward()
            loss_sum += weighted.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, c.clip_norm or float("inf"))
        self.optimizer.step()
        self.scheduler.step()
        return distributed.all_sum(loss_sum, info).item() / info.world_size, float(grad_norm)

    def _global_counts(self) -> dict[str, int]:
        names = list(self.counts)
        drawn = distributed.all_sum(torch.tensor([float(self.counts[n]) for n in names]), self.info)
        return {n: int(self.base_counts[n] + d) for n, d in zip(names, drawn.tolist())}

    def save(self) -> dict:
        """Checkpoint + stage record (rank 0), then the resume state; the sync check and counts are collective."""
        counts, in_sync = self._global_counts(), distributed.weights_in_sync(self.model, self.info)
        record = self.record(counts, in_sync)
        if self.info.is_main:
            save_stage(self.out, self.model, checkpoint_norm_stats(self.sampler), embodiments(self.sources),
                       self.sampler.norm_stats, record)
            save_train_state(self.out, {
                "step": self.step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "config": self.config.to_dict(),
                "samples_per_source": counts, "resumed_from": self.resumed_from,
                "world_size": self.info.world_size})
        return record

    def record(self, counts: dict[str, int], in_sync: bool) -> dict:
        """The stage record: what ran, from which parent, on which data, how far."""
        c, info = self.config, self.info
        return {
            "format": RECORD_FORMAT, "stage": c.stage, "description": STAGES[c.stage].description,
            "parent": parent_record(c.init), "init": self.init_report,
            "data": data_record(c, self.sampler), "train": c.to_dict(),
            "model": {"preset": None if c.init else c.preset, "parameters": self.param_counts,
                      "use_images": self.model.config.use_images, "max_horizon": self.model.config.expert.max_horizon},
            "step": self.step, "steps": c.steps, "complete": self.step >= c.steps,
            "samples_seen": sum(counts.values()), "samples_per_source": counts, "resumed_from": self.resumed_from,
            "world_size": info.world_size, "device": str(info.device), "bf16": self.bf16,
            "ddp_weights_in_sync": in_sync,
            "prompt_chunk_size": None if c.targets == "full" else c.horizon,
        }
