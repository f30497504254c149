import numpy as np
import pytest

from vla import keys
from vla.data import EpisodeSplit, EpisodeStore, NormalizationStats, WindowDataset


def test_compute_matches_numpy():
    values = np.random.default_rng(0).normal(size=(1000, 4)) * [1, 2, 3, 4] + [0, 1, 2, 3]
    stats = NormalizationStats.compute(values)
    np.testing.assert_allclose(stats.min, values.min(0), rtol=1e-6)
    np.testing.assert_allclose(stats.max, values.max(0), rtol=1e-6)
    np.testing.assert_allclose(stats.mean, values.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.std, values.std(0), rtol=1e-5)
    np.testing.assert_allclose(stats.q01, np.quantile(values, 0.01, axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats.q99, np.quantile(values, 0.99, axis=0), rtol=1e-5)
    assert all(
        getattr(stats, f).dtype == np.float32 and getattr(stats, f).shape == (4,)
        for f in ("min", "q99")
    )
    again = NormalizationStats.from_dict(stats.to_dict())
    np.testing.assert_array_equal(again.q01, stats.q01)
    with pytest.raises(ValueError, match="lack \\['q99'\\]"):
        NormalizationStats.from_dict({k: v for k, v in stats.to_dict().items() if k != "q99"})


def test_store_stats_cover_only_training_episodes_and_are_cached(store_factory, monkeypatch):
    path = store_factory(8)
    store = EpisodeStore(path)
    split = EpisodeSplit.from_labels(store.splits, 0.25, seed=0)
    stats = NormalizationStats.from_store(store, split.train)
    steps = np.concatenate(
        [np.arange(store.episode_starts[e], store.episode_ends[e]) for e in split.train]
    )
    for key in (keys.ACTION, keys.STATE):
        expected = NormalizationStats.compute(store.read(key)[steps])
        np.testing.assert_array_equal(stats[key].q99, expected.q99)
        np.testing.assert_array_equal(stats[key].mean, expected.mean)

    def fail(values):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(NormalizationStats, "compute", staticmethod(fail))
    reopened = WindowDataset(path, val_fraction=0.25, split_seed=0).normalization_stats()
    np.testing.assert_array_equal(reopened[keys.ACTION].q01, stats[keys.ACTION].q01)
    with pytest.raises(AssertionError, match="recomputed"):  # another split: its own entry
        WindowDataset(path, val_fraction=0.25, split_seed=1).normalization_stats()
    EpisodeStore(path)  # the stats group does not disturb validation
