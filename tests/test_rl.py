"""PPO over flow-matching action chunks: exact log-probs, ratio 1 at the first epoch, masks, GAE, the a = 0 limit,
the trainer's checkpoints and resume on toy_reach, and a one-step bandit that the PPO update must learn in both noise
modes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vla_bench.embodiment import embodiment_prompt, get_embodiment
from vla_bench.policies.flow_vla import FlowVLA, PrefixInputs, preset_config
from vla_bench.rl.agent import ChunkAgent
from vla_bench.rl.buffer import RolloutBuffer, compute_gae
from vla_bench.rl.noise import gaussian_log_prob, masked_log_prob, sde_moments, sde_sigma

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TOY = get_embodiment("toy_point")


def _model(seed: int = 0, num_steps: int = 5) -> FlowVLA:
    """A tiny-1m model whose zero-initialized output layers are randomized, so velocities are not all zero."""
    torch.manual_seed(seed)
    model = FlowVLA(preset_config("tiny-1m", num_steps=num_steps))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ada" in name or "final_out" in name:
                p.normal_(0.0, 0.05)
    return model.eval()


def _inputs(batch: int, seed: int = 0) -> PrefixInputs:
    g = torch.Generator().manual_seed(seed)
    prompts = [embodiment_prompt(TOY, f"reach target {i % 3}") for i in range(batch)]
    return PrefixInputs(prompts, torch.randn(batch, TOY.state_dim, generator=g))


def _mask(model: FlowVLA, batch: int) -> torch.Tensor:
    return model.action_mask(TOY, batch=batch)


def test_gaussian_log_prob_matches_torch_normal():
    g = torch.Generator().manual_seed(0)
    x, mean = torch.randn(4, 6, 3, generator=g), torch.randn(4, 6, 3, generator=g)
    std = torch.rand(4, 6, 3, generator=g) + 0.01
    expected = torch.distributions.Normal(mean, std).log_prob(x)
    torch.testing.assert_close(gaussian_log_prob(x, mean, std), expected, rtol=0, atol=1e-5)
    valid = torch.rand(4, 6, 3, generator=g) > 0.3
    torch.testing.assert_close(masked_log_prob(x, mean, std, valid), (expected * valid).flatten(1).sum(-1))


def test_sde_formulas():
    times = torch.linspace(1.0, 0.0, 11)
    sigma = sde_sigma(times, a=0.7)
    # At t = 1 the denominator is 1 - 0.9 (the first t < 1); elsewhere a * sqrt(t / (1 - t)).
    assert sigma[0].item() == pytest.approx(0.7 * math.sqrt(1.0 / 0.1), rel=1e-6)
    assert sigma[3].item() == pytest.approx(0.7 * math.sqrt(0.7 / 0.3), rel=1e-6)
    x, v = torch.tensor([[0.3]]), torch.tensor([[-1.2]])
    t, delta, s = 0.7, 0.1, sigma[3].item()
    x0, x1 = 0.3 - t * -1.2, 0.3 + (1 - t) * -1.2
    mean, std = sde_moments(x, v, torch.tensor(t), torch.tensor(delta), torch.tensor(s))
    assert mean.item() == pytest.approx(x0 * (1 - t + delta) + x1 * (t - delta - s * s * delta / (2 * t)), rel=1e-5)
    assert std.item() == pytest.approx(math.sqrt(delta) * s, rel=1e-6)


@pytest.mark.parametrize("mode", ["flow_sde", "flow_noise"])
def test_recomputed_log_prob_equals_stored(mode):
    """Through the real storage and minibatch path: shuffled minibatches of a different size than the rollout."""
    model, b = _model(), 6
    agent = ChunkAgent(model, mode=mode, replan_steps=3, sde_a=0.5, s_min=0.05, s_max=0.4)
    buffer = RolloutBuffer(2, b, (agent.num_steps + 1, TOY.chunk_size, 32), agent.num_steps, TOY.state_dim,
                           _mask(model, 1)[0])
    g = torch.Generator().manual_seed(1)
    for t in range(2):
        inputs = _inputs(b, seed=t)
        sample = agent.sample(inputs, _mask(model, b), g)
        assert sample.stochastic.sum(1).tolist() == ([1] * b if mode == "flow_sde" else [agent.num_steps] * b)
        buffer.add(t, inputs, sample, np.zeros(b), np.zeros(b, bool), np.zeros(b, bool), torch.zeros(b))
    idx = torch.randperm(2 * b, generator=g)[:5]
    logp, _, _ = agent.evaluate(buffer.inputs(idx), buffer.flat("chains")[idx], buffer.flat("stochastic")[idx],
                                _mask(model, 5))
    ratio = (logp - buffer.flat("log_probs")[idx]).exp()
    torch.testing.assert_close(ratio, torch.ones(5), rtol=0, atol=1e-5)
    assert buffer.flat("log_probs").abs().max() > 1.0  # real log-probs, not zeros


@pytest.mark.parametrize("mode", ["flow_sde", "flow_noise"])
def test_masked_channels_and_unexecuted_steps_change_neither_log_prob_nor_gradient(mode):
    model, b = _model(), 4
    agent = ChunkAgent(model, mode=mode, replan_steps=3)
    inputs, mask = _inputs(b), _mask(model, b)
    sample = agent.sample(inputs, mask, torch.Generator().manual_seed(0))
    executed = agent.executed_mask(mask)
    assert executed.sum().item() == b * 3 * TOY.action_dim

    def logp_and_grads(chain):
        model.zero_grad()
        logp, _, _ = agent.evaluate(inputs, chain, sample.stochastic, mask)
        logp.sum().backward()
        return logp.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    base_logp, base_grads = logp_and_grads(sample.chain)
    # Garbage in padded channels anywhere in the chain, and in the unexecuted timesteps of the transitions' targets
    # (the final chunk: what the env never sees).
    chain = sample.chain.clone()
    chain[..., TOY.action_dim:] = 1e3
    chain[:, -1, 3:, :] += 50.0
    logp, grads = logp_and_grads(chain)
    torch.testing.assert_close(logp, base_logp, rtol=0, atol=0)
    assert grads.keys() == base_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], base_grads[name], rtol=0, atol=0)
    # ... while a change at an executed, valid entry of a stochastic transition's target does change it.
    k = sample.stochastic[0].float().argmax().item()
    chain = sample.chain.clone()
    chain[0, k + 1, 0, 0] += 0.1
    assert (logp_and_grads(chain)[0][0] - base_logp[0]).abs() > 1e-3


def test_flow_sde_with_zero_noise_is_the_ode_sampler():
    model, b = _model(num_steps=10), 3
    inputs, mask = _inputs(b), _mask(model, b)
    noise = torch.randn(mask.shape, generator=torch.Generator().manual_seed(3))
    expected = model.sample(inputs, mask, noise=noise)
    sample = ChunkAgent(model, mode="flow_sde", sde_a=0.0).sample(inputs, mask, torch.Generator(), noise=noise)
    assert sample.stochastic.sum().item() == b  # one "stochastic" step per chunk, with std 0
    torch.testing.assert_close(sample.actions, expected, rtol=0, atol=1e-5)
    ode = ChunkAgent(model, mode="ode").sample(inputs, mask, torch.Generator(), noise=noise)
    torch.testing.assert_close(ode.actions, expected, rtol=0, atol=1e-5)
    assert expected.abs().max() > 0.1  # the model moves the noise: the comparison is not trivially 0 = 0


def test_gae_by_hand_with_termination_and_truncation():
    """One env, 5 chunk steps: step 1 succeeds (terminated), step 3 hits the time limit (truncated, final value 0.4),
    then a new episode runs past the end of the rollout (bootstrapped with next_value)."""
    gamma, lam = 0.9, 0.8
    r = torch.tensor([[0.0], [1.0], [0.0], [0.0], [0.0]])
    v = torch.tensor([[0.5], [0.6], [0.2], [0.3], [0.1]])
    term = torch.tensor([[False], [True], [False], [False], [False]])
    trunc = torch.tensor([[False], [False], [False], [True], [False]])
    final = torch.tensor([[0.0], [0.0], [0.0], [0.4], [0.0]])
    next_value = torch.tensor([0.7])
    d4 = 0.0 + gamma * 0.7 - 0.1
    d3 = 0.0 + gamma * 0.4 - 0.3  # truncated: bootstrap with V(final observation), not V(next episode's start)
    d2 = 0.0 + gamma * 0.3 - 0.2
    d1 = 1.0 - 0.6  # terminated: no bootstrap
    d0 = 0.0 + gamma * 0.6 - 0.5
    a4, a3 = d4, d3  # the recursion stops at the truncation
    a2 = d2 + gamma * lam * a3
    a1 = d1
    a0 = d0 + gamma * lam * a1
    adv, ret = compute_gae(r, v, term, trunc, final, next_value, gamma, lam)
    expected = torch.tensor([[a0], [a1], [a2], [a3], [a4]])
    torch.testing.assert_close(adv, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(ret, expected + v, rtol=0, atol=1e-6)


def _toy_config(init, out, **overrides):
    from vla_bench.rl.config import RLConfig

    base = dict(suite="toy_reach", init=str(init), out=str(out), tasks=[1], noise="flow_sde", num_denoise_steps=3,
                envs_per_task=4,
                rollout_steps=4, replan_steps=4, minibatch_size=8, update_epochs=1, progress=False, tensorboard=False,
                threads=1, total_env_steps=10**6)
    return RLConfig(**{**base, **overrides})


@pytest.mark.parametrize("mode", ["flow_sde", "flow_noise"])
def test_trainer_checkpoints_each_iteration_and_resumes(tmp_path, mode, toy_checkpoint):
    from vla_bench.policies.flow_vla import load_policy
    from vla_bench.metric_log import read_metrics
    from vla_bench.rl.trainer import STATE_FILE, train

    init = toy_checkpoint
    first = train(_toy_config(init, tmp_path / "rl", noise=mode, max_iterations=1))
    assert first["iteration"] == 1 and (tmp_path / "rl/policy" / STATE_FILE).is_file()
    state_1 = torch.load(tmp_path / "rl/policy" / STATE_FILE, weights_only=False)
    # A second invocation (as after a kill) continues from iteration 1 with the saved optimizer and counters.
    second = train(_toy_config(init, tmp_path / "rl", noise=mode, max_iterations=3))
    assert second["iteration"] == 3 and second["env_steps"] > first["env_steps"]
    rows = read_metrics(tmp_path / "rl")
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    for key in ("losses/approx_kl", "losses/clipfrac", "losses/explained_variance", "charts/env_steps_per_s"):
        assert key in rows[-1]
    assert state_1["run"]["iteration"] == 1 and state_1["optimizer"]["state"]  # Adam moments were saved
    policy = load_policy(tmp_path / "rl/policy", "toy_point")  # what `vla-bench eval --policy <out>/policy` does
    assert policy.num_steps == 3 and policy.model.config.flow.num_steps == 3
    # Every embodiment's stats and the lineage (parent: the SFT checkpoint) travel with the RL checkpoint.
    assert (tmp_path / "rl/policy/norm_stats_by_source.json").read_text() == \
        (init / "norm_stats_by_source.json").read_text()
    lineage = json.loads((tmp_path / "rl/policy/lineage.json").read_text())
    assert lineage["stage"] == "rl" and lineage["parent"]["stage"] == "sft" and lineage["progress"]["iteration"] == 3
    with pytest.raises(ValueError, match="different run config"):
        train(_toy_config(init, tmp_path / "rl", noise=mode, max_iterations=4, gamma=0.5))


def test_expert_only_leaves_the_backbone_unchanged(tmp_path):
    from vla_bench.rl.trainer import make_optimizer

    model, b = _model(), 4
    agent = ChunkAgent(model, mode="flow_sde", replan_steps=3)
    optimizer, _ = make_optimizer(agent, _toy_config(tmp_path, tmp_path, expert_only=True, lr_actor=1e-3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inputs, mask = _inputs(b), _mask(model, b)
    sample = agent.sample(inputs, mask, torch.Generator().manual_seed(0))
    logp, value, _ = agent.evaluate(inputs, sample.chain, sample.stochastic, mask)
    (-logp.mean() + value.square().mean()).backward()
    optimizer.step()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("expert."))


def test_advantages_normalized_per_task():
    from vla_bench.rl.ppo import normalize_per_group

    adv = torch.tensor([1.0, 2.0, 3.0, 10.0, 30.0, 5.0])
    out = normalize_per_group(adv, ["a", "a", "a", "b", "b", "c"])
    torch.testing.assert_close(out[:3], torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(out[3:5], torch.tensor([-1.0, 1.0]) / math.sqrt(2))  # std of [10, 30] is 10 sqrt(2)
    assert out[5].item() == 0.0  # a group of one: centred only


@pytest.mark.parametrize("mode,norm_adv", [("flow_sde", "minibatch"), ("flow_noise", "minibatch"),
                                           ("flow_sde", "task")])
def test_ppo_update_learns_a_one_step_bandit(mode, norm_adv, tmp_path):
    """The update's direction, end to end through storage, GAE and `ppo_update`: one-chunk episodes rewarded by the
    executed actions' closeness to 0.5 (normalized units). The deterministic (ODE) chunk of the trained model must
    move most of the way there; no env, so this isolates the learning rule from simulator noise."""
    from vla_bench.rl.ppo import ppo_update
    from vla_bench.rl.trainer import make_optimizer

    model, b, target = _model(num_steps=5), 32, 0.5
    agent = ChunkAgent(model, mode=mode, replan_steps=3, sde_a=0.5, s_min=0.05, s_max=0.3)
    config = _toy_config(tmp_path, tmp_path, noise=mode, lr_actor=3e-4, lr_critic=1e-2, update_epochs=4,
                         minibatch_size=16, target_kl=None, norm_adv=norm_adv)
    optimizer, params = make_optimizer(agent, config)
    inputs, mask = _inputs(b), _mask(model, b)
    executed = agent.executed_mask(mask)
    noise = torch.randn(mask.shape, generator=torch.Generator().manual_seed(7))

    def ode_error() -> float:
        chunk = ChunkAgent(model, mode="ode").sample(inputs, mask, noise=noise).actions
        return float((chunk - target)[executed].abs().mean())

    g = torch.Generator().manual_seed(0)
    before = ode_error()
    for _ in range(25):
        buffer = RolloutBuffer(1, b, (agent.num_steps + 1, *mask.shape[1:]), agent.num_steps, TOY.state_dim, mask[0])
        sample = agent.sample(inputs, mask, g)
        reward = -((sample.actions - target) ** 2 * executed).flatten(1).sum(-1) / executed[0].sum()
        ended = np.ones(b, bool)
        buffer.add(0, inputs, sample, reward.numpy(), ended, ~ended, torch.zeros(b))
        adv, ret = compute_gae(buffer.rewards, buffer.values, buffer.terminated, buffer.truncated,
                               buffer.final_values, torch.zeros(b), config.gamma, config.gae_lambda)
        metrics = ppo_update(agent, optimizer, buffer, adv, ret, config, g, params)
    after = ode_error()
    assert after < 0.5 * before, (before, after)
    assert metrics["losses/approx_kl"] > 0 and metrics["losses/clipfrac"] >= 0
