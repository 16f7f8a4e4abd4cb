"""The flow-matching VLA with the tiny backbone: shapes, masking, learning, the prefix cache, sampling, checkpoints."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from vla_bench.actions import NormStats, QuantileNormalizer, channel_mask
from vla_bench.adapter import Observation
from vla_bench.embodiment import embodiment_prompt, get_embodiment
from vla_bench.envs.libero import make_libero_example
from vla_bench.policies.base import Policy, make_policy
from vla_bench.policies.flow_vla import (CheckpointError, ExpertConfig, FlowConfig, FlowVLA, FlowVLAPolicy,
                                         PrefixInputs, TinyBackboneConfig, VLAConfig, load_checkpoint, load_policy,
                                         preset_config, save_checkpoint)
from vla_bench.policies.flow_vla.flow import masked_mse, sample_time
from vla_bench.policies.flow_vla.tokenizer import PAD_ID, HashedWordTokenizer

EMBODIMENTS = ["libero_panda", "aloha_agilex", "human_ego_hands"]  # 7, 14 and 32 action channels


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(use_images: bool = False) -> VLAConfig:
    backbone = TinyBackboneConfig(width=32, depth=1, heads=2, vocab_size=512, use_images=use_images, image_size=32,
                                  patch_size=8)
    return VLAConfig(backbone=backbone, expert=ExpertConfig(width=32, depth=2, heads=2))


def tiny_model(use_images: bool = False) -> FlowVLA:
    """A tiny model with its AdaLN-Zero layers (zero at init) filled, so every path carries signal."""
    torch.manual_seed(0)
    model = FlowVLA(tiny_config(use_images))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def make_inputs(spec, batch: int = 2, images: bool = False, seed: int = 0) -> PrefixInputs:
    """Prompts of different lengths, so the prefix has padding."""
    g = torch.Generator().manual_seed(seed)
    prompts = [embodiment_prompt(spec, "pick up the red block" + " and then put it down" * i) for i in range(batch)]
    imgs = {t: torch.randint(0, 256, (batch, 40, 40, 3), generator=g, dtype=torch.uint8) for t in spec.view_tags}
    return PrefixInputs(prompts, torch.randn(batch, spec.state_dim, generator=g), imgs if images else {})


def make_observation(spec, seed: int = 0) -> Observation:
    rng = np.random.default_rng(seed)
    images = {t: rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for t in spec.view_tags}
    return Observation(images=images, state=rng.normal(size=spec.state_dim).astype(np.float32),
                       instruction="fold the towel", embodiment=spec)


def make_stats(spec, with_state: bool = True) -> NormStats:
    rng = np.random.default_rng(0)
    state = QuantileNormalizer.fit(rng.normal(size=(100, spec.state_dim))) if with_state else None
    return NormStats(spec.name, QuantileNormalizer.fit(rng.normal(size=(100, spec.action_dim))), state)


@pytest.mark.parametrize("name", EMBODIMENTS)
def test_shapes_and_masks_per_embodiment(name):
    spec = get_embodiment(name)
    model = tiny_model(use_images=True)
    inputs, mask = make_inputs(spec, images=True), model.action_mask(spec, batch=2)
    h, c = spec.chunk_size, spec.action_dim
    assert mask.shape == (2, h, 32) and mask.sum() == 2 * h * c
    cache = model.encode_prefix(inputs)
    assert cache.tokens.shape[:2] == cache.valid.shape and not cache.valid.all()  # shorter prompt is padded
    v = model.velocity(torch.randn(2, h, 32), torch.rand(2), cache, mask)
    assert v.shape == (2, h, 32) and v[:, :, :c].abs().sum() > 0 and not v[:, :, c:].any()
    chain = model.sample(inputs, mask, num_steps=3, return_chain=True)
    assert chain.xs.shape == (2, 4, h, 32) and chain.velocities.shape == (2, 3, h, 32)
    assert not chain.actions[:, :, c:].any()
    actions = torch.where(mask, torch.randn(mask.shape), 0.0)
    assert torch.isfinite(model.loss(inputs, actions, mask))
    chunk = FlowVLAPolicy(model, spec).act(make_observation(spec))
    assert chunk.actions.shape == chunk.mask.shape == (h, 32) and chunk.actions.dtype == np.float32
    np.testing.assert_array_equal(chunk.mask, channel_mask(h, c, 32))


def test_padded_channels_and_steps_get_no_gradient_and_do_not_change_the_loss():
    spec = get_embodiment("libero_panda")
    model = tiny_model()
    inputs = make_inputs(spec)
    mask = model.action_mask(spec, batch=2).clone()
    mask[1, 7:] = False  # sample 1 is a shorter chunk padded in time, as in a mixed batch
    g = torch.Generator().manual_seed(1)
    actions, noise = torch.randn(2, 10, 32, generator=g), torch.randn(2, 10, 32, generator=g)
    time = torch.tensor([0.3, 0.8])
    a, n = actions.clone().requires_grad_(), noise.clone().requires_grad_()
    loss = model.loss(inputs, a, mask, noise=n, time=time)
    loss.backward()
    for grad in (a.grad, n.grad):
        assert not grad[~mask].any()
        assert (grad[mask] != 0).float().mean() > 0.9
    garbage = torch.where(mask, 0.0, 1e3 * torch.randn(2, 10, 32, generator=g))
    with torch.no_grad():
        changed = model.loss(inputs, actions + garbage, mask, noise=noise - garbage, time=time)
    assert changed.item() == loss.item()


def test_chunk_padded_in_time_acts_as_the_short_chunk_alone():
    spec = get_embodiment("libero_panda")
    model = tiny_model().eval()
    inputs = make_inputs(spec, batch=1)
    short, padded = model.action_mask(spec, chunk_size=7), model.action_mask(spec, chunk_size=10).clone()
    padded[:, 7:] = False
    x = torch.randn(1, 10, 32)
    with torch.no_grad():
        cache = model.encode_prefix(inputs)
        v_short = model.velocity(x[:, :7], torch.tensor([0.4]), cache, short)
        v_padded = model.velocity(x, torch.tensor([0.4]), cache, padded)
    torch.testing.assert_close(v_padded[:, :7], v_short, rtol=0, atol=1e-6)
    assert not v_padded[:, 7:].any()


def test_tiny_model_overfits_one_fixed_batch():
    spec = get_embodiment("libero_panda")
    torch.manual_seed(0)
    model = FlowVLA(tiny_config())
    inputs, mask = make_inputs(spec, batch=4), model.action_mask(spec, batch=4)
    g = torch.Generator().manual_seed(0)
    actions = torch.where(mask, torch.rand(mask.shape, generator=g) * 2 - 1, 0.0)
    noise, time = torch.randn(mask.shape, generator=g), torch.rand(4, generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(400):
        loss = model.loss(inputs, actions, mask, noise=noise, time=time)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < losses[0] / 200:
            break
    assert losses[-1] < losses[0] / 100, f"loss {losses[0]:.4f} -> {losses[-1]:.4f} after {len(losses)} steps"


@pytest.mark.parametrize("use_images", [False, True])
def test_cached_and_uncached_sampling_agree(use_images):
    spec = get_embodiment("aloha_agilex")
    model = tiny_model(use_images=use_images).eval()
    inputs = make_inputs(spec, batch=3, images=use_images)
    mask = model.action_mask(spec, batch=3).clone()
    mask[2, 30:] = False
    noise = torch.randn(mask.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cached = model.sample(inputs, mask, noise=noise, num_steps=10, return_chain=True)
        uncached = model.sample(inputs, mask, noise=noise, num_steps=10, use_cache=False, return_chain=True)
    assert cached.actions.abs().max() > 0.1  # a real comparison, not of two zero chunks
    assert (cached.xs - uncached.xs).abs().max() <= 1e-5
    assert (cached.velocities - uncached.velocities).abs().max() <= 1e-5


def test_chain_is_consistent_with_the_per_step_velocity():
    spec = get_embodiment("libero_panda")
    model = tiny_model().eval()
    inputs, mask = make_inputs(spec), model.action_mask(spec, batch=2)
    with torch.no_grad():
        chain = model.sample(inputs, mask, num_steps=4, return_chain=True, generator=torch.Generator().manual_seed(0))
        cache = model.encode_prefix(inputs)
        torch.testing.assert_close(chain.times, torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
        for k in range(4):
            v = model.velocity(chain.xs[:, k], chain.times[k], cache, mask)
            torch.testing.assert_close(chain.velocities[:, k], v, rtol=0, atol=1e-6)
            torch.testing.assert_close(chain.xs[:, k + 1], chain.xs[:, k] - 0.25 * v, rtol=0, atol=1e-6)


def test_same_noise_gives_the_same_chunk_and_reset_reproduces_episodes():
    spec = get_embodiment("libero_panda")
    model = tiny_model().eval()
    inputs, mask = make_inputs(spec), model.action_mask(spec, batch=2)
    noise = torch.randn(mask.shape)
    with torch.no_grad():
        first, again = model.sample(inputs, mask, noise=noise), model.sample(inputs, mask, noise=noise)
        other = model.sample(inputs, mask, noise=noise + 1.0)
    assert torch.equal(first, again) and not torch.allclose(first, other)
    policy, obs = FlowVLAPolicy(model, spec), make_observation(spec)
    policy.reset(3)
    episode = [policy.act(obs).actions for _ in range(2)]
    policy.reset(3)
    np.testing.assert_array_equal(np.stack(episode), np.stack([policy.act(obs).actions for _ in range(2)]))
    assert not np.array_equal(episode[0], episode[1])  # the noise moves on within an episode
    policy.reset(4)
    assert not np.array_equal(policy.act(obs).actions, episode[0])


def test_save_load_gives_identical_outputs(tmp_path):
    spec = get_embodiment("libero_panda")
    model = tiny_model(use_images=True)
    stats = make_stats(spec)
    save_checkpoint(model, tmp_path, stats)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "norm_stats.json"]
    obs = make_libero_example(seed=1)
    expected = FlowVLAPolicy(model, spec, stats, num_steps=5, seed=7).act(obs)
    loaded = make_policy(str(tmp_path), spec, num_steps=5, seed=7)
    assert isinstance(loaded, Policy) and loaded.needs_images and not loaded.needs_privileged
    chunk = loaded.act(obs)
    np.testing.assert_array_equal(chunk.actions, expected.actions)
    np.testing.assert_array_equal(chunk.mask, expected.mask)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.embodiments == [spec] and ckpt.model.config == model.config


def test_state_is_normalized_with_the_checkpoint_stats():
    spec = get_embodiment("libero_panda")
    model = tiny_model().eval()
    stats = make_stats(spec)
    obs = make_observation(spec)
    policy = FlowVLAPolicy(model, spec, stats)
    np.testing.assert_allclose(policy.prefix_inputs(obs).state[0].numpy(), stats.state.normalize(obs.state))
    assert not np.allclose(stats.state.normalize(obs.state), obs.state)


def test_images_are_used_only_when_configured():
    spec = get_embodiment("libero_panda")
    text_only = FlowVLAPolicy(tiny_model(use_images=False), spec)
    with_images = FlowVLAPolicy(tiny_model(use_images=True), spec)
    blind = make_observation(spec)
    blind.images = {}
    assert not text_only.needs_images and text_only.act(blind).actions.shape == (10, 32)
    assert with_images.needs_images
    with pytest.raises(ValueError, match="lacks views"):
        with_images.act(blind)


@pytest.fixture()
def checkpoint_dir(tmp_path):
    spec = get_embodiment("libero_panda")
    save_checkpoint(tiny_model(), tmp_path, make_stats(spec), embodiments=[spec, get_embodiment("bridge_widowx")])
    return tmp_path


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "norm_stats.json"])
def test_missing_checkpoint_file_is_named(checkpoint_dir, missing):
    (checkpoint_dir / missing).unlink()
    with pytest.raises(FileNotFoundError, match=str(checkpoint_dir / missing)):
        load_policy(checkpoint_dir, get_embodiment("libero_panda"))


def test_wrong_embodiment_errors_name_the_file(checkpoint_dir):
    # The model lists bridge_widowx, but norm_stats.json holds LIBERO's statistics.
    with pytest.raises(ValueError, match=str(checkpoint_dir / "norm_stats.json")):
        load_policy(checkpoint_dir, get_embodiment("bridge_widowx"))
    with pytest.raises(CheckpointError, match=str(checkpoint_dir / "config.json")):
        load_policy(checkpoint_dir, get_embodiment("aloha_agilex"))


def test_shape_mismatch_names_the_weights_file(checkpoint_dir):
    path = checkpoint_dir / "config.json"
    doc = json.loads(path.read_text())
    doc["model"]["expert"]["width"] = 64
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=str(checkpoint_dir / "model.safetensors") + ".*shape"):
        load_policy(checkpoint_dir, get_embodiment("libero_panda"))
    doc["model"]["expert"]["widht"] = doc["model"]["expert"].pop("width")
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=str(path) + ".*widht"):
        load_policy(checkpoint_dir, get_embodiment("libero_panda"))


def test_flow_loss_and_time_sampling():
    pred, target = torch.tensor([[1.0, 5.0], [3.0, -2.0]]), torch.tensor([[0.0, 0.0], [1.0, 7.0]])
    mask = torch.tensor([[True, False], [True, False]])
    assert masked_mse(pred, target, mask).item() == pytest.approx((1 + 4) / 2)
    torch.manual_seed(0)
    uniform = sample_time(20000, FlowConfig(time_sampling="uniform"))
    beta = sample_time(20000, FlowConfig(time_sampling="beta", beta_alpha=1.5, beta_beta=1.0, t_min=0.001))
    for t in (uniform, beta):
        assert t.min() >= 0.001 and t.max() <= 1.0
    assert uniform.mean().item() == pytest.approx(0.5, abs=0.01)
    assert beta.mean().item() == pytest.approx(0.001 + 0.999 * 0.6, abs=0.01)  # Beta(1.5, 1) has mean 0.6


def test_tokenizer_is_stable_and_pads():
    tok = HashedWordTokenizer(vocab_size=1000, max_tokens=6)
    assert tok.encode("Pick UP the cup.") == tok.encode("pick up the cup .")
    assert len(tok.encode("one two three four five six seven")) == 6
    ids, valid = tok.batch(["a b c", "a"])
    assert ids.shape == (2, 4) and valid.tolist() == [[True] * 4, [True, True, False, False]]
    assert ids[1, 2:].eq(PAD_ID).all() and ids.max() < 1000
    assert ids[0, 1] == ids[1, 1]


def test_config_round_trip_and_presets():
    config = preset_config("tiny-10m", use_images=True, num_steps=4)
    assert VLAConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    sizes = [sum(p.numel() for p in FlowVLA(preset_config(n)).parameters()) for n in ("tiny-1m", "tiny-50m")]
    assert 0.5e6 < sizes[0] < 2e6 and 30e6 < sizes[1] < 60e6


def test_model_rejects_embodiments_it_cannot_serve():
    model = FlowVLA(VLAConfig(backbone=TinyBackboneConfig(width=32, heads=2, state_dim=8),
                              expert=ExpertConfig(width=32, heads=2, max_horizon=16), action_dim=8))
    with pytest.raises(ValueError, match="14 action channels > K=8.*chunk size 50 > max_horizon=16.*state"):
        model.check_embodiment(get_embodiment("aloha_agilex"))


def test_flow_vla_imports_without_transformers():
    code = ("import sys; sys.modules['transformers'] = None\n"
            "from vla_bench.policies.flow_vla import FlowVLA, preset_config\n"
            "FlowVLA(preset_config('tiny-1m'))\n"
            "from vla_bench.policies.flow_vla.backbone_hf import HfBackbone\n"
            "from vla_bench.policies.flow_vla.config import HfBackboneConfig\n"
            "try:\n    HfBackbone(HfBackboneConfig(path='.'))\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'vla-bench[hf]'" in out.stdout
