"""Configuration of the flow-matching VLA: backbone, action expert (DiT), flow matching, and named presets.

A config round-trips through `to_dict` / `from_dict`; `config.json` of a checkpoint stores it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import ClassVar

from vla_bench.actions import DEFAULT_K


def _check_heads(width: int, heads: int, what: str) -> None:
    if width % heads:
        raise ValueError(f"{what}: width {width} is not divisible by heads {heads}")


@dataclass
class TinyBackboneConfig:
    """A small backbone trainable on a CPU: patch encoder per view, hashed-word text transformer, state token."""

    kind: ClassVar[str] = "tiny"

    width: int = 128  # token width D of the prefix
    depth: int = 2  # transformer layers over [image ; text ; state] tokens
    heads: int = 4  # attention heads
    mlp_ratio: float = 4.0  # MLP hidden width / width
    vocab_size: int = 4096  # hashed word buckets of the tokenizer, special ids included
    max_text_tokens: int = 128  # prompt tokens kept; a longer prompt is cut at the end
    use_images: bool = False  # False: state + language only, and the env need not render
    image_size: int = 64  # each view is resized to image_size x image_size before patching
    patch_size: int = 16  # square patches: (image_size / patch_size)^2 tokens per view
    view_tag_buckets: int = 64  # hashed view-tag embeddings (tags are open-ended strings)
    state_dim: int = 32  # states are zero-padded to this size

    def __post_init__(self):
        _check_heads(self.width, self.heads, "tiny backbone")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.vocab_size < 16:
            raise ValueError(f"vocab_size must be >= 16, got {self.vocab_size}")


@dataclass
class HfBackboneConfig:
    """A Hugging Face VLM on local disk; the hidden states of one layer are the prefix."""

    kind: ClassVar[str] = "hf"

    path: str = ""  # local directory: the VLM's config.json, weights, tokenizer and image processor files
    layer: int = -1  # index into the VLM's hidden_states (-1: last layer, 0: the input embeddings)
    freeze: bool = True  # the VLM gets no gradient and runs under no_grad; the state token still trains
    use_images: bool = True  # False: text + state only
    # Text before the prompt, once per view; {image} becomes the processor's image placeholder token. The default
    # suits Qwen-VL; other VLMs may want e.g. "{tag}: {image}\n".
    view_template: str = "{tag}: <|vision_start|>{image}<|vision_end|>\n"
    state_dim: int = 32  # states are zero-padded to this size
    dtype: str = "float32"  # dtype of the VLM weights ("float32", "bfloat16", "float16")

    def __post_init__(self):
        if "{image}" not in self.view_template:
            raise ValueError(f"view_template must contain '{{image}}', got {self.view_template!r}")


BACKBONES = {c.kind: c for c in (TinyBackboneConfig, HfBackboneConfig)}


@dataclass
class ExpertConfig:
    """The DiT action expert."""

    width: int = 128  # token width inside the expert
    depth: int = 2  # joint-attention blocks
    heads: int = 4  # attention heads
    mlp_ratio: float = 4.0  # MLP hidden width / width
    max_horizon: int = 64  # longest chunk H (learned position embedding per action step)

    def __post_init__(self):
        _check_heads(self.width, self.heads, "action expert")


@dataclass
class FlowConfig:
    """Flow matching (t = 1 noise, t = 0 data) and its Euler sampler."""

    num_steps: int = 10  # Euler steps from t = 1 to t = 0 at sampling
    time_sampling: str = "beta"  # training times: "beta" (pi0) or "uniform"
    beta_alpha: float = 1.5  # Beta(alpha, beta) on t; pi0 uses (1.5, 1), which favours noisy times
    beta_beta: float = 1.0  # second Beta parameter
    t_min: float = 0.001  # training t is scaled to [t_min, 1] (pi0: 0.001 + 0.999 * Beta)

    def __post_init__(self):
        if self.time_sampling not in ("beta", "uniform"):
            raise ValueError(f"time_sampling must be 'beta' or 'uniform', got {self.time_sampling!r}")
        if self.num_steps < 1 or not 0.0 <= self.t_min < 1.0:
            raise ValueError("num_steps >= 1 and 0 <= t_min < 1 are required")


@dataclass
class VLAConfig:
    """The whole policy: backbone + expert + flow settings + the action width K."""

    backbone: TinyBackboneConfig | HfBackboneConfig = field(default_factory=TinyBackboneConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    action_dim: int = DEFAULT_K  # K: width of every action vector

    @property
    def use_images(self) -> bool:
        return self.backbone.use_images

    def to_dict(self) -> dict:
        d = asdict(self)
        d["backbone"] = {"kind": self.backbone.kind, **d["backbone"]}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VLAConfig":
        """Inverse of `to_dict`; unknown keys raise, so a typo in a hand-edited config is caught."""
        bb = dict(d["backbone"])
        kind = bb.pop("kind")
        if kind not in BACKBONES:
            raise ValueError(f"unknown backbone kind {kind!r}; valid: {', '.join(BACKBONES)}")
        return cls(backbone=_build(BACKBONES[kind], bb), expert=_build(ExpertConfig, d["expert"]),
                   flow=_build(FlowConfig, d["flow"]), action_dim=int(d["action_dim"]))


def _build(cls, d: dict):
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    return cls(**d)


# name -> (width, backbone depth, expert depth, heads, vocab size, image size). Patches are 16 px, so a view is 16
# tokens at 64 px and 64 tokens at 128 px (LIBERO's native size). Parameter counts (text + state, K = 32) are printed
# by benchmarks/policy_latency.py; the names give their order of magnitude.
PRESETS: dict[str, tuple[int, int, int, int, int, int]] = {
    "tiny-1m": (96, 2, 2, 4, 2048, 64),
    "tiny-10m": (256, 4, 3, 4, 4096, 128),
    "tiny-50m": (512, 4, 4, 8, 8192, 128),
    "base-100m": (768, 4, 4, 12, 8192, 128),
}


def preset_config(name: str, use_images: bool = False, **flow_overrides) -> VLAConfig:
    """A named tiny-backbone configuration; `use_images` adds the per-view patch encoder."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    width, bb_depth, ex_depth, heads, vocab, image_size = PRESETS[name]
    backbone = TinyBackboneConfig(width=width, depth=bb_depth, heads=heads, vocab_size=vocab, use_images=use_images,
                                  image_size=image_size, patch_size=16)
    expert = ExpertConfig(width=width, depth=ex_depth, heads=heads)
    return VLAConfig(backbone=backbone, expert=expert, flow=replace(FlowConfig(), **flow_overrides))
