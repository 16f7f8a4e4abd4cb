"""A Hugging Face VLM on local disk as the backbone: the hidden states of one layer are the prefix.

Each view enters the text as `view_template` (its tag, then the processor's image placeholder), followed by the
embodiment prompt; a trainable state token is appended after the VLM's tokens. Nothing is downloaded: the directory
must hold the VLM's config, weights (unless they come from a vla_bench checkpoint) and tokenizer / image processor.
transformers is imported here only, so the rest of vla_bench runs without it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vla_bench.policies.flow_vla.backbone import PrefixInputs, pad_state
from vla_bench.policies.flow_vla.config import HfBackboneConfig

log = logging.getLogger(__name__)


def _transformers():
    try:
        import transformers
    except ImportError as e:
        raise ImportError("the 'hf' backbone needs transformers: pip install 'vla-bench[hf]'") from e
    return transformers


class QwenStyleImageProcessor:
    """Text + image inputs for Qwen-VL-style models built from the tokenizer and image processor alone.

    transformers cannot build the Qwen-VL processors without torchvision (their video half needs it); images need
    only this: each placeholder becomes grid_t * grid_h * grid_w / merge_size**2 tokens, as those processors do.
    """

    def __init__(self, tokenizer, image_processor, image_token: str = "<|image_pad|>"):
        self.tokenizer, self.image_processor, self.image_token = tokenizer, image_processor, image_token
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        if self.image_token_id is None or self.image_token_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no image placeholder token {image_token!r}")

    def __call__(self, text: list[str], images: list[np.ndarray] | None = None, **_) -> dict[str, torch.Tensor]:
        out = {}
        if images:
            out.update(self.image_processor(images=images, return_tensors="pt"))
            merge = self.image_processor.merge_size ** 2
            text = self._expand(text, iter((out["image_grid_thw"].prod(-1) // merge).tolist()))
        out.update(self.tokenizer(text, return_tensors="pt", padding=True))
        out["mm_token_type_ids"] = (out["input_ids"] == self.image_token_id).long()
        return out

    def _expand(self, texts: list[str], counts) -> list[str]:
        expanded = []
        for text in texts:
            head, *rest = text.split(self.image_token)
            expanded.append(head + "".join(self.image_token * next(counts) + part for part in rest))
        return expanded

    def save_pretrained(self, directory: str | Path) -> None:
        self.tokenizer.save_pretrained(directory)
        self.image_processor.save_pretrained(directory)


def load_processor(path: Path):
    """The VLM's own processor, or `QwenStyleImageProcessor` where transformers cannot build it."""
    tf = _transformers()
    try:
        return tf.AutoProcessor.from_pretrained(path)
    except ImportError as e:
        log.warning("using the tokenizer + image processor of %s directly: %s", path, str(e).strip().splitlines()[0])
        return QwenStyleImageProcessor(tf.AutoTokenizer.from_pretrained(path),
                                       tf.AutoImageProcessor.from_pretrained(path))


class HfBackbone(nn.Module):
    """Prefix = hidden states [B, T, D] of `config.layer` over (view images + prompt), then one state token."""

    def __init__(self, config: HfBackboneConfig, pretrained: bool = True):
        super().__init__()
        tf = _transformers()
        path = Path(config.path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no Hugging Face model config at {path / 'config.json'}")
        self.config, self.use_images, self.state_dim = config, config.use_images, config.state_dim
        dtype = getattr(torch, config.dtype)
        if pretrained:
            self.vlm = tf.AutoModel.from_pretrained(path, dtype=dtype)
        else:  # weights come from a vla_bench checkpoint
            self.vlm = tf.AutoModel.from_config(tf.AutoConfig.from_pretrained(path), dtype=dtype)
        self.processor = load_processor(path)
        text_config = self.vlm.config.get_text_config()
        self.width = text_config.hidden_size
        n_states = text_config.num_hidden_layers + 1
        if not -n_states <= config.layer < n_states:
            raise ValueError(f"layer {config.layer} outside the VLM's {n_states} hidden states")
        self.state_proj = nn.Linear(config.state_dim, self.width)
        if config.freeze:
            self.vlm.requires_grad_(False)
            self.vlm.eval()

    def train(self, mode: bool = True) -> "HfBackbone":
        """A frozen VLM stays in eval mode (no dropout) while the rest trains."""
        super().train(mode)
        if self.config.freeze:
            self.vlm.eval()
        return self

    def encode(self, inputs: PrefixInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix tokens [B, T + 1, D] and validity mask [B, T + 1]."""
        device = self.state_proj.weight.device
        batch = {k: v.to(device) for k, v in self._processor_inputs(inputs).items()}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(self.vlm.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze):
            out = self.vlm(**batch, output_hidden_states=True, use_cache=False)
        hidden = out.hidden_states[self.config.layer].float()
        state = self.state_proj(pad_state(inputs.state.to(device), self.state_dim))[:, None]
        valid = torch.ones(inputs.batch_size, 1, dtype=torch.bool, device=device)
        return torch.cat([hidden, state], dim=1), torch.cat([batch["attention_mask"].bool(), valid], dim=1)

    def _processor_inputs(self, inputs: PrefixInputs) -> dict[str, torch.Tensor]:
        tags = list(inputs.images) if self.use_images else []
        if self.use_images and not tags:
            raise ValueError("this backbone was configured with use_images=True but the inputs hold no images")
        # Each sample names only the views it has (a batch may mix embodiments with other cameras).
        present = [[t for t in tags if t not in inputs.image_valid or bool(inputs.image_valid[t][i])]
                   for i in range(inputs.batch_size)]
        texts = ["".join(self.config.view_template.format(tag=t, image=self.processor.image_token) for t in own)
                 + prompt for own, prompt in zip(present, inputs.prompts)]
        # The processor wants one flat list of images in text order: sample by sample, view by view.
        images = [inputs.images[t][i].cpu().numpy() for i, own in enumerate(present) for t in own]
        return dict(self.processor(text=texts, images=images or None, return_tensors="pt", padding=True))

    def save_files(self, directory: str | Path) -> None:
        """Write the VLM's config and processor files (not its weights: the checkpoint's model.safetensors has
        them), so a checkpoint directory is self-contained."""
        self.vlm.config.save_pretrained(directory)
        self.processor.save_pretrained(directory)
