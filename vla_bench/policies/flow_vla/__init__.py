"""The flow-matching VLA: a backbone (tiny, or a Hugging Face VLM) encodes images, the embodiment prompt and the
state into prefix tokens; a DiT action expert predicts the flow velocity of an H x K action chunk.

Public entry points: `preset_config` / `VLAConfig`, `FlowVLA` (loss, sample, per-step velocity with a prefix cache),
`save_checkpoint` / `load_checkpoint`, `FlowVLAPolicy` / `load_policy`. torch is needed; transformers only for `hf`.
"""

from vla_bench.policies.flow_vla.backbone import PrefixInputs
from vla_bench.policies.flow_vla.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vla_bench.policies.flow_vla.config import (ExpertConfig, FlowConfig, HfBackboneConfig, TinyBackboneConfig,
                                                VLAConfig, preset_config)
from vla_bench.policies.flow_vla.dit import PrefixCache
from vla_bench.policies.flow_vla.flow import FlowChain
from vla_bench.policies.flow_vla.model import FlowVLA
from vla_bench.policies.flow_vla.policy import FlowVLAPolicy, load_policy

__all__ = ["CheckpointError", "ExpertConfig", "FlowChain", "FlowConfig", "FlowVLA", "FlowVLAPolicy",
           "HfBackboneConfig", "PrefixCache", "PrefixInputs", "TinyBackboneConfig", "VLAConfig", "load_checkpoint",
           "load_policy", "preset_config", "save_checkpoint"]
