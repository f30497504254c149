"""Per-dimension statistics of actions and states, computed over the training split once.

The action tokenizer maps ``[q01, q99]`` to ``[-1, 1]`` (RT-2 / OpenVLA style percentile bounds,
robust to a few outlier steps); ``min``, ``max``, ``mean`` and ``std`` are there for other
normalizers and for reports. Statistics are cached in the store's ``stats`` group, keyed by the
exact set of training episodes and by the content they came from: the episode ends and a digest
of the stat arrays' ``zarr.json`` and chunk files (names, sizes, mtimes). A different split
(seed, fraction, more episodes) computes its own, reopening with the same split reuses them, and
a deleted, replaced or rewritten chunk invalidates them instead of serving stale statistics.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import zarr
from zarr.storage import LocalStore

from vla import keys
from vla.data.episode_store import EpisodeStore
from vla.data.ragged import segment_rows
from vla.data.store_format import data_path
from vla.data.store_integrity import content_digest

STATS_VERSION = 2  # bump when the computation or the key changes, so old caches are ignored
CACHE_ENTRIES = 8  # newest entries kept in stats/: each rewrite of the data adds one


@dataclass(frozen=True)
class NormalizationStats:
    """Statistics of one (T, D) array over steps: each field is (D,) float32.

    ``std`` is the population standard deviation (ddof=0); ``q01`` / ``q99`` are numpy's linear
    interpolation quantiles at 0.01 and 0.99.
    """

    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray
    q99: np.ndarray

    @classmethod
    def compute(cls, values: np.ndarray) -> NormalizationStats:
        """Statistics over the first axis of ``values`` (T, D)."""
        values = np.asarray(values, dtype=np.float64)  # (T, D) in float64 for exact sums
        if values.ndim != 2 or len(values) == 0:
            raise ValueError(f"values have shape {values.shape}: need (T, D) with T >= 1 steps")
        q01, q99 = np.quantile(values, [0.01, 0.99], axis=0)  # (D,) each
        return cls(
            min=values.min(axis=0).astype(np.float32),  # (D,)
            max=values.max(axis=0).astype(np.float32),  # (D,)
            mean=values.mean(axis=0).astype(np.float32),  # (D,)
            std=values.std(axis=0).astype(np.float32),  # (D,)
            q01=q01.astype(np.float32),
            q99=q99.astype(np.float32),
        )

    def __getitem__(self, name: str) -> np.ndarray:
        """``stats["q01"]``: the same as ``stats.q01`` (dict-style access for configs)."""
        if name not in {f.name for f in fields(self)}:
            raise KeyError(
                f"{name!r} is not a statistic; use one of {[f.name for f in fields(self)]}"
            )
        return getattr(self, name)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready: ``{"min": [...], ...}`` (also how checkpoints save them)."""
        return {f.name: getattr(self, f.name).tolist() for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> NormalizationStats:
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(f"normalization stats lack {missing}; expected fields {names}")
        values = {name: np.asarray(data[name], dtype=np.float32) for name in names}  # (D,) each
        dims = {name: v.shape for name, v in values.items()}
        if len(set(dims.values())) != 1 or len(next(iter(dims.values()))) != 1:
            raise ValueError(f"normalization stats fields must be equal-length vectors, got {dims}")
        return cls(**values)

    @classmethod
    def from_store(
        cls,
        store: EpisodeStore,
        episodes: np.ndarray,
        stat_keys: Sequence[str] = (keys.ACTION, keys.STATE),
        use_cache: bool = True,
    ) -> dict[str, NormalizationStats]:
        """Statistics of ``stat_keys`` (those the store has) over the steps of ``episodes``.

        Reads the store's cache when it holds an entry for exactly these episodes and keys;
        otherwise computes and writes one (a read-only store just skips the write).
        """
        episodes = np.unique(np.asarray(episodes, dtype=np.int64))  # (E,) sorted
        if len(episodes) == 0:
            raise ValueError(
                f"no training episodes in {store.path} to compute statistics from: collect "
                "more episodes or lower val_fraction"
            )
        present = [key for key in stat_keys if key in store.arrays]
        cache_key = _cache_key(store, episodes, present)
        if use_cache:
            cached = _read_cache(store).get(cache_key)
            if cached is not None:
                return {key: cls.from_dict(cached[key]) for key in present}
        steps = segment_rows(store.episode_starts, store.episode_ends, episodes)  # (T_train,)
        stats = {key: cls.compute(store.read(key)[steps]) for key in present}  # (T_train, D)
        if use_cache:
            _write_cache(store, cache_key, {key: s.to_dict() for key, s in stats.items()})
        return stats


def _cache_key(store: EpisodeStore, episodes: np.ndarray, stat_keys: Sequence[str]) -> str:
    digest = hashlib.sha1(episodes.astype("<i8").tobytes())  # the split is its episode set
    digest.update(store.episode_ends.astype("<i8").tobytes())  # their step ranges
    digest.update(",".join(stat_keys).encode())
    # the data itself: any chunk deleted, replaced or rewritten since gives another key
    digest.update(content_digest(store.path, [data_path(key) for key in stat_keys]).encode())
    return f"v{STATS_VERSION}-{len(episodes)}ep-{digest.hexdigest()[:16]}"


def _read_cache(store: EpisodeStore) -> dict:
    try:
        group = zarr.open_group(
            store=LocalStore(store.path, read_only=True), path=keys.STATS, mode="r"
        )
    except FileNotFoundError:  # zarr GroupNotFoundError: no cache yet
        return {}
    return group.attrs.asdict()


def _write_cache(store: EpisodeStore, cache_key: str, entry: dict) -> None:
    try:
        # stats/zarr.json is replaced by one rename, so a concurrent reader sees old or new
        group = zarr.open_group(store=LocalStore(store.path), path=keys.STATS, mode="a")
        # keep this version's newest entries: stale ones (older data, older code) only take room
        current = f"v{STATS_VERSION}-"
        kept = {k: v for k, v in group.attrs.asdict().items() if k.startswith(current)}
        kept.pop(cache_key, None)
        kept = dict(list(kept.items())[1 - CACHE_ENTRIES :])  # (CACHE_ENTRIES - 1) newest
        group.attrs.put({**kept, cache_key: entry})
    except OSError as err:
        warnings.warn(
            f"could not cache normalization stats in {store.path} ({err}); they will be "
            "recomputed next time",
            stacklevel=3,
        )
