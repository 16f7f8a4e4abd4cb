import numpy as np
import pytest

from vla_bench.actions import NormStats, QuantileNormalizer, channel_mask, pad_actions


def test_pad_and_mask():
    a = np.arange(14, dtype=np.float32).reshape(2, 7)
    padded, mask = pad_actions(a, 32)
    assert padded.shape == mask.shape == (2, 32)
    np.testing.assert_array_equal(padded[:, :7], a)
    assert not padded[:, 7:].any() and mask[:, :7].all() and not mask[:, 7:].any()
    np.testing.assert_array_equal(channel_mask(4, 7, 32, valid_steps=2)[:, 0], [True, True, False, False])
    with pytest.raises(ValueError, match="do not fit"):
        pad_actions(np.zeros((1, 33)), 32)


def test_quantile_normalizer_maps_q01_q99_and_clips():
    rng = np.random.default_rng(0)
    data = np.c_[rng.normal(5, 2, 10000), rng.uniform(-3, 1, 10000), rng.choice([-1.0, 1.0], 10000)]
    norm = QuantileNormalizer.fit(data, binary=(2,))
    y = norm.normalize(data)
    assert y[:, :2].min() == -1.0 and y[:, :2].max() == 1.0
    np.testing.assert_allclose(norm.normalize(norm.q01[None])[0, :2], -1, atol=1e-6)
    np.testing.assert_allclose(norm.normalize(norm.q99[None])[0, :2], 1, atol=1e-6)
    np.testing.assert_array_equal(y[:, 2], data[:, 2])  # binary channel untouched
    inside = np.all((data[:, :2] >= norm.q01[:2]) & (data[:, :2] <= norm.q99[:2]), axis=1)
    np.testing.assert_allclose(norm.unnormalize(y)[inside], data[inside], atol=1e-4)


def test_constant_channel_does_not_divide_by_zero():
    norm = QuantileNormalizer.fit(np.c_[np.ones(10), np.arange(10.0)])
    y = norm.normalize(np.array([[1.0, 4.5]]))
    assert np.isfinite(y).all() and y[0, 0] == 0.0


def test_norm_stats_json_round_trip_and_embodiment_check(tmp_path):
    rng = np.random.default_rng(1)
    stats = NormStats("libero_panda", QuantileNormalizer.fit(rng.normal(size=(100, 7)), binary=(6,)),
                      QuantileNormalizer.fit(rng.normal(size=(100, 8))))
    stats.save(tmp_path)
    back = NormStats.load(tmp_path, embodiment="libero_panda")
    x = rng.normal(size=(5, 7)).astype(np.float32)
    np.testing.assert_array_equal(back.action.normalize(x), stats.action.normalize(x))
    assert back.action.binary == (6,)
    with pytest.raises(ValueError, match="aloha_agilex"):
        NormStats.load(tmp_path, embodiment="aloha_agilex")
    with pytest.raises(FileNotFoundError, match="norm_stats.json"):
        NormStats.load(tmp_path / "missing")
