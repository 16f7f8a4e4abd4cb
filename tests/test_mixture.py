"""Mixture sampling: proportions, balancing, per-source statistics, padding masks, determinism."""

import numpy as np
import pytest

from vla_bench.data.lerobot import DatasetReader, DatasetWriter, Episode
from vla_bench.data.mixture import MixtureSampler, Source, collate, preset_sources
from vla_bench.embodiment import embodiment_prompt, get_embodiment

TOY, LIBERO = get_embodiment("toy_point"), get_embodiment("libero_panda")


def make_dataset(root, spec, tasks, length=5, seed=0, image_size=0):
    """One episode per entry of `tasks`, `length` frames each; action channel 0 counts the frame (for checks)."""
    rng = np.random.default_rng(seed)
    with DatasetWriter(root, spec, image_size=image_size) as w:
        for task in tasks:
            action = rng.normal(size=(length, spec.action_dim)).astype(np.float32)
            action[:, 0] = np.arange(length)
            images = {v: rng.integers(0, 256, (length, image_size, image_size, 3), np.uint8)
                      for v in spec.view_tags} if image_size else {}
            w.add(Episode(task, rng.normal(size=(length, spec.state_dim)).astype(np.float32), action, images))
    return DatasetReader(root)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    return {"toy": make_dataset(root / "toy", TOY, ["common"] * 9 + ["rare"], image_size=8),
            "libero": make_dataset(root / "libero", LIBERO, ["a", "b", "c"], length=30, seed=1)}


def fractions(sampler, attribute, n):
    """Share of each value of `attribute` over draws 0..n-1."""
    values = [getattr(sampler.draw(i), attribute) for i in range(n)]
    return {v: values.count(v) / n for v in set(values)}


def test_proportions_are_met(data):
    sampler = MixtureSampler([Source("x", [data["toy"]], 1.0), Source("y", [data["libero"]], 3.0)], seed=1)
    assert fractions(sampler, "source", 4000)["y"] == pytest.approx(0.75, abs=0.025)  # 4 sd of a binomial


def test_task_and_embodiment_balancing(data):
    toy, both = data["toy"], [data["toy"], data["libero"]]  # toy: 9 "common" + 1 "rare" episode, 50 frames
    natural = fractions(MixtureSampler([Source("s", [toy])], seed=2), "instruction", 3000)
    balanced = fractions(MixtureSampler([Source("s", [toy], balance="task")], seed=2), "instruction", 3000)
    assert natural["rare"] == pytest.approx(0.1, abs=0.02)
    assert balanced["rare"] == pytest.approx(0.5, abs=0.035)
    by_frames = fractions(MixtureSampler([Source("s", both)], seed=3), "embodiment", 3000)
    by_emb = fractions(MixtureSampler([Source("s", both, balance="embodiment")], seed=3), "embodiment", 3000)
    assert by_frames["libero_panda"] == pytest.approx(90 / 140, abs=0.035)  # 90 libero frames vs 50 toy frames
    assert by_emb["libero_panda"] == pytest.approx(0.5, abs=0.035)
    # embodiment first, then the tasks within it: toy's 2 tasks get 1/4 each, libero's 3 tasks 1/6 each
    nested = fractions(MixtureSampler([Source("s", both, balance="embodiment_task")], seed=4), "instruction", 4000)
    assert nested["rare"] == pytest.approx(0.25, abs=0.03) and nested["a"] == pytest.approx(1 / 6, abs=0.03)


def test_chunks_are_normalized_padded_and_masked(data):
    toy = data["toy"]
    sampler = MixtureSampler([Source("toy", [toy])], horizon=8, seed=5, images=True)
    stats = sampler.norm_stats[("toy", "toy_point")]
    np.testing.assert_allclose(stats.action.q01, np.quantile(toy.action.astype(np.float64), 0.01, axis=0), rtol=1e-6)
    assert stats.action.binary == (3,) and stats.state.dim == 7
    for i in range(50):
        s = sampler.draw(i)
        t0 = int(np.rint(stats.action.unnormalize(s.actions[:1, :4])[0, 0]))  # frame index of the first action
        valid = 5 - t0  # episodes have 5 frames: the chunk runs to the episode's end
        assert s.actions.shape == (8, 32) and s.mask.shape == (8, 32)
        assert s.mask[:valid, :4].all() and not s.mask[valid:].any() and not s.mask[:, 4:].any()
        assert not s.actions[valid:].any() and not s.actions[:, 4:].any()
        np.testing.assert_allclose(stats.action.unnormalize(s.actions[:valid, :4])[:, 0], np.arange(t0, 5), atol=1e-4)
        assert s.state_mask.sum() == 7 and not s.state[7:].any()
        assert s.prompt == embodiment_prompt(TOY, s.instruction, 8) and s.images["cam_front"].shape == (8, 8, 3)
    batch = sampler.batch(2, 4)
    assert batch["actions"].shape == (4, 8, 32) and batch["images"]["cam_front"].shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(batch["mask"][1], sampler.draw(9).mask)


def test_full_trajectories_for_t2a(data):
    sampler = MixtureSampler([Source("mixed", [data["libero"], data["toy"]])], seed=6, full_trajectory=True,
                             max_len=16)
    assert sampler.too_long == {"mixed": 3}  # 30-frame episodes do not fit in 16
    assert {sampler.draw(i).embodiment for i in range(30)} == {"toy_point"}
    s = sampler.draw(0)
    assert s.actions.shape == (16, 32) and s.mask[:5, :4].all() and not s.mask[5:].any() and not s.mask[:, 4:].any()
    stats = sampler.norm_stats[("mixed", "toy_point")]
    np.testing.assert_allclose(stats.action.unnormalize(s.actions[:5, :4])[:, 0], np.arange(5), atol=1e-4)
    assert "predict the next 5 control actions" in s.prompt
    with pytest.raises(ValueError, match="nothing to draw"):
        MixtureSampler([Source("robot", [data["libero"]])], full_trajectory=True, max_len=16)


def test_deterministic_and_rank_disjoint(data):
    sources = [Source("x", [data["toy"]], balance="task"), Source("y", [data["libero"]])]
    a, b, c = MixtureSampler(sources, seed=7), MixtureSampler(sources, seed=7), MixtureSampler(sources, seed=8)
    key = lambda s: (s.source, s.instruction, s.actions.tobytes())  # noqa: E731
    assert [key(a.draw(i)) for i in range(20)] == [key(b.draw(i)) for i in range(20)]
    assert [key(a.draw(i)) for i in range(20)] != [key(c.draw(i)) for i in range(20)]
    r0, r1 = a.batch(3, 4, rank=0, world_size=2), a.batch(3, 4, rank=1, world_size=2)
    np.testing.assert_array_equal(r0["actions"], collate([a.draw(24 + j) for j in range(4)])["actions"])
    np.testing.assert_array_equal(r1["actions"], collate([a.draw(28 + j) for j in range(4)])["actions"])


def test_preset_and_per_source_stats(data):
    sources = preset_sources("qwen_vla_t2a", {"synthetic": [data["libero"]], "robot": [data["libero"]]})
    assert [(s.name, s.weight) for s in sources] == [("synthetic", 0.2), ("robot", 0.8)]
    sampler = MixtureSampler(sources)
    assert set(sampler.norm_stats) == {("synthetic", "libero_panda"), ("robot", "libero_panda")}
    with pytest.raises(KeyError, match="no categories"):
        preset_sources("qwen_vla_t2a", {"video": [data["toy"]]})
    with pytest.raises(ValueError, match="balance"):
        Source("x", [data["toy"]], balance="uniform")



def test_embodiments_with_other_cameras_share_a_batch(data):
    """A view one sample lacks is a black frame marked absent, and the tiny backbone masks its tokens: what is in
    the absent frame cannot change the sample's prefix."""
    import torch

    from vla_bench.policies.flow_vla.backbone import PrefixInputs
    from vla_bench.policies.flow_vla.backbone_tiny import TinyBackbone
    from vla_bench.policies.flow_vla.config import preset_config

    toy = MixtureSampler([Source("t", [data["toy"]])], images=True).draw(0)
    libero = MixtureSampler([Source("l", [data["libero"]])], images=True).draw(0)
    assert set(toy.images) != set(libero.images), "the fixture's embodiments must differ in their cameras"
    batch = collate([toy, libero])
    assert set(batch["images"]) == set(toy.images) | set(libero.images)
    assert set(batch["image_valid"]) == set(toy.images) ^ set(libero.images)
    for view, valid in batch["image_valid"].items():
        np.testing.assert_array_equal(valid, [view in toy.images, view in libero.images])
        assert not batch["images"][view][~valid].any()

    torch.manual_seed(0)
    backbone = TinyBackbone(preset_config("tiny-1m", use_images=True).backbone).eval()
    state, valid = torch.zeros(2, 4), {v: torch.from_numpy(x) for v, x in batch["image_valid"].items()}
    black = {v: torch.from_numpy(x) for v, x in batch["images"].items()}
    noisy = {v: torch.where(valid[v][:, None, None, None], x, torch.randint_like(x, 255)) if v in valid else x
             for v, x in black.items()}
    tokens, mask = backbone.encode(PrefixInputs(["a", "b"], state, black, valid))
    tokens_noisy, mask_noisy = backbone.encode(PrefixInputs(["a", "b"], state, noisy, valid))
    assert torch.equal(mask, mask_noisy) and mask[1].sum() < mask[0].sum()  # sample b has fewer image tokens
    torch.testing.assert_close(tokens[1][mask[1]], tokens_noisy[1][mask[1]], atol=1e-6, rtol=1e-6)
    unmasked, _ = backbone.encode(PrefixInputs(["a", "b"], state, noisy))  # without the marks, the noise leaks in
    assert not torch.allclose(unmasked[1][mask[1]], tokens[1][mask[1]], atol=1e-4)
