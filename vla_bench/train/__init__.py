"""One trainer for the T2A, CPT and SFT stages (stage = config: what is frozen, which data, which targets).

    from vla_bench.train import TrainConfig, train
    train(TrainConfig(stage="sft", data=["data/libero_object"], out="ckpts/sft", init="ckpts/t2a"))

Under `torchrun` the same call trains with DDP (gloo on CPU, nccl on CUDA); rank 0 writes logs and checkpoints.
"""

from vla_bench.train.config import STAGES, Stage, TrainConfig
from vla_bench.train.trainer import train

__all__ = ["STAGES", "Stage", "TrainConfig", "train"]
