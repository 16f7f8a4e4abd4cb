import numpy as np
import pytest

from vla_bench.actions import NormStats, QuantileNormalizer, pad_actions
from vla_bench.adapter import ActionAdapter, ActionChunk, PolicyOutputError, native_to_chunk
from vla_bench.embodiment import get_embodiment

PANDA = get_embodiment("libero_panda")


def test_to_native_slices_replan_steps_and_channels():
    native = np.random.default_rng(0).uniform(-1, 1, (10, 7)).astype(np.float32)
    out = ActionAdapter(PANDA, replan_steps=5).to_native(native_to_chunk(native))
    assert out.shape == (5, 7)
    np.testing.assert_array_equal(out[:, :6], native[:5, :6])
    np.testing.assert_array_equal(out[:, 6], np.where(native[:5, 6] > 0, 1.0, -1.0))


def test_unnormalize_round_trip_through_chunk():
    rng = np.random.default_rng(0)
    data = np.c_[rng.uniform(-0.5, 0.5, (500, 6)), rng.choice([-1.0, 1.0], 500)]
    stats = NormStats("libero_panda", QuantileNormalizer.fit(data, binary=(6,)))
    native = data[:10].clip(stats.action.q01, stats.action.q99).astype(np.float32)
    chunk = native_to_chunk(native, stats)
    assert np.abs(chunk.actions).max() <= 1.0
    out = ActionAdapter(PANDA, stats, replan_steps=10).to_native(chunk)
    np.testing.assert_allclose(out, native, atol=1e-5)


@pytest.mark.parametrize("actions,match", [
    (np.zeros((10, 16)), "shape"),
    (np.zeros((3, 32)), "fewer than replan_steps"),
    (np.full((10, 32), np.nan), "NaN"),
])
def test_bad_chunks_are_named(actions, match):
    chunk = ActionChunk(actions=actions.astype(np.float32), mask=np.ones(actions.shape, bool))
    with pytest.raises(PolicyOutputError, match=match):
        ActionAdapter(PANDA, replan_steps=5).to_native(chunk)


def test_nan_in_padding_is_ignored():
    actions, mask = pad_actions(np.zeros((5, 7)))
    actions[:, 7:] = np.nan
    assert ActionAdapter(PANDA, replan_steps=5).to_native(ActionChunk(actions, mask)).shape == (5, 7)


def test_stats_for_another_embodiment_rejected():
    stats = NormStats("aloha_agilex", QuantileNormalizer(np.zeros(14), np.ones(14)))
    with pytest.raises(ValueError, match="14 action channels"):
        ActionAdapter(PANDA, stats)
