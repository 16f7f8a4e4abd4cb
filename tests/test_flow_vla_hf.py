"""The `hf` backbone on a tiny randomly initialized Qwen2.5-VL built offline (config class + a local byte-level
tokenizer + the PIL image processor): forward, backward, freezing, layer choice, checkpoints."""

import shutil

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the hf backbone needs transformers: "
                                                          "pip install 'vla-bench[hf]'")

from vla_bench.embodiment import get_embodiment  # noqa: E402
from vla_bench.envs.libero import make_libero_example  # noqa: E402
from vla_bench.policies.flow_vla import (ExpertConfig, FlowVLA, FlowVLAPolicy, HfBackboneConfig,  # noqa: E402
                                         VLAConfig, load_policy, save_checkpoint)
from vla_bench.policies.flow_vla.backbone import PrefixInputs  # noqa: E402

from tests.test_flow_vla import make_inputs, make_stats  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build_tiny_qwen(directory):
    """Write a tiny random Qwen2.5-VL with its tokenizer and image processor to `directory`; return its config."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    # Byte-level tokenizer with no merges: every byte is a token, plus Qwen's vision special tokens.
    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    raw = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    raw.pre_tokenizer, raw.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=raw, pad_token=SPECIALS[0],
                                                     eos_token=SPECIALS[0], additional_special_tokens=SPECIALS[1:])
    ids = dict(zip(SPECIALS, tokenizer.convert_tokens_to_ids(SPECIALS)))
    image_processor = Qwen2VLImageProcessorPil(patch_size=4, temporal_patch_size=2, merge_size=2, min_pixels=16 * 16,
                                               max_pixels=32 * 32)
    config = transformers.Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=ids[SPECIALS[0]], eos_token_id=ids[SPECIALS[0]],
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=4,
                           temporal_patch_size=2, spatial_merge_size=2, window_size=8, out_hidden_size=64,
                           fullatt_block_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(0)
    transformers.Qwen2_5_VLModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    image_processor.save_pretrained(directory)
    return config


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_qwen")
    build_tiny_qwen(directory)
    return directory


def hf_model(path, **backbone) -> FlowVLA:
    """A model on the tiny VLM; the expert's AdaLN-Zero layers are filled so gradients reach the backbone."""
    torch.manual_seed(0)
    model = FlowVLA(VLAConfig(backbone=HfBackboneConfig(path=str(path), **backbone),
                              expert=ExpertConfig(width=32, depth=2, heads=2)))
    with torch.no_grad():
        for p in model.expert.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_forward_and_backward_reach_the_vlm(qwen_dir):
    spec = get_embodiment("libero_panda")
    model = hf_model(qwen_dir, freeze=False)
    inputs, mask = make_inputs(spec, images=True), model.action_mask(spec, batch=2)
    prefix, valid = model.backbone.encode(inputs)
    # 40 px views are resized to 32 px: 8 x 8 patches of 4 px, merged 2 x 2 -> 16 image tokens per view.
    texts = [("cam_front: <|vision_start|><|image_pad|><|vision_end|>\n"
              "cam_wrist: <|vision_start|><|image_pad|><|vision_end|>\n" + p) for p in inputs.prompts]
    n_text = model.backbone.processor.tokenizer(texts, return_tensors="pt", padding=True)["input_ids"].shape[1]
    assert prefix.shape == (2, n_text + 2 * 15 + 1, 64) and valid.shape == prefix.shape[:2]
    assert valid[:, -1].all() and not valid[0].all()  # state token valid; the shorter prompt is padded
    actions = torch.where(mask, torch.randn(mask.shape), 0.0)
    model.loss(inputs, actions, mask).backward()
    vlm = model.backbone.vlm
    params = {"vision patch embed": vlm.visual.patch_embed.proj.weight,
              "text layer 0": vlm.language_model.layers[0].self_attn.q_proj.weight,
              "state token": model.backbone.state_proj.weight, "expert output": model.expert.final_out.weight}
    no_grad = [name for name, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"no gradient reaches {no_grad}"


def test_frozen_vlm_gets_no_gradient_and_stays_in_eval(qwen_dir):
    spec = get_embodiment("libero_panda")
    model = hf_model(qwen_dir, freeze=True).train()
    assert not model.backbone.vlm.training and model.expert.training
    inputs, mask = make_inputs(spec, images=True), model.action_mask(spec, batch=2)
    model.loss(inputs, torch.where(mask, torch.randn(mask.shape), 0.0), mask).backward()
    assert all(p.grad is None for p in model.backbone.vlm.parameters())
    assert model.backbone.state_proj.weight.grad.abs().sum() > 0


def test_text_only_and_layer_choice(qwen_dir):
    spec = get_embodiment("libero_panda")
    inputs = PrefixInputs(make_inputs(spec).prompts, torch.zeros(2, 8))
    with torch.no_grad():
        last, _ = hf_model(qwen_dir, use_images=False).backbone.encode(inputs)
        first, valid = hf_model(qwen_dir, use_images=False, layer=1).backbone.encode(inputs)
    assert last.shape == first.shape and not torch.allclose(last[valid], first[valid])
    with pytest.raises(ValueError, match="layer 5 outside"):
        hf_model(qwen_dir, layer=5)


def test_hf_checkpoint_is_self_contained(qwen_dir, tmp_path):
    spec = get_embodiment("libero_panda")
    vlm_copy = tmp_path / "vlm"
    shutil.copytree(qwen_dir, vlm_copy)
    model = hf_model(vlm_copy, freeze=True)
    stats, obs = make_stats(spec), make_libero_example(seed=2, image_size=32)
    expected = FlowVLAPolicy(model, spec, stats, num_steps=3).act(obs)
    save_checkpoint(model, tmp_path / "ckpt", stats)
    shutil.rmtree(vlm_copy)  # the checkpoint must not need the original VLM directory
    chunk = load_policy(tmp_path / "ckpt", spec, num_steps=3).act(obs)
    assert np.abs(expected.actions).max() > 0.01
    np.testing.assert_array_equal(chunk.actions, expected.actions)
