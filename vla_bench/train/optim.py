"""What trains and how: freezing by parameter-name prefix, AdamW groups, linear warmup + cosine decay."""

from __future__ import annotations

import math

import torch
from torch import nn


def apply_trainable(model: nn.Module, prefixes: list[str]) -> dict[str, int]:
    """Freeze every parameter whose name starts with none of `prefixes` (["all"]: nothing frozen); parameter counts.

    A frozen parameter gets no gradient, so no graph is built through a fully frozen backbone."""
    unknown = [p for p in prefixes if p != "all" and not any(n.startswith(p) for n, _ in model.named_parameters())]
    if unknown:
        raise ValueError(f"trainable prefixes {unknown} match no parameter (top-level modules: "
                         f"{sorted({n.split('.')[0] for n, _ in model.named_parameters()})})")
    counts = {"trainable": 0, "frozen": 0}
    for name, p in model.named_parameters():
        p.requires_grad_("all" in prefixes or any(name.startswith(x) for x in prefixes))
        counts["trainable" if p.requires_grad else "frozen"] += p.numel()
    return counts


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float]
                   ) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; matrices decay, vectors (biases, norms, position/type embeddings of one
    row) and embedding tables do not."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_table = isinstance(_owner(model, name), nn.Embedding)
        (decay if p.ndim >= 2 and not is_table else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas)


def _owner(model: nn.Module, param_name: str) -> nn.Module:
    return model.get_submodule(param_name.rpartition(".")[0]) if "." in param_name else model


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier at optimizer step `step` (0-based): linear to 1 over `warmup` steps, then cosine to `min_ratio`
    at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup - 1)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_scheduler(optimizer: torch.optim.Optimizer, total: int, warmup: int, min_ratio: float
                   ) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, total, warmup, min_ratio))
