"""Demonstration datasets: a Zarr episode store, its writer, training windows and statistics.

The torch and Lightning parts (``WindowDataset``, ``collate_windows``, ``EpisodeDataModule``)
are imported on first use, so reading a store (the CLI, a collector) stays light.
"""

from importlib import import_module
from typing import Any

from vla.data.episode_split import EpisodeSplit
from vla.data.episode_store import EpisodeStore
from vla.data.episode_writer import EpisodeWriter
from vla.data.normalization_stats import NormalizationStats
from vla.data.store_error import InvalidStoreError
from vla.data.synthetic_episode import synthetic_episode

_LAZY = {
    "WindowDataset": "vla.data.window_dataset",
    "collate_windows": "vla.data.window_dataset",
    "EpisodeDataModule": "vla.data.episode_data_module",
}

__all__ = [
    "EpisodeDataModule",
    "EpisodeSplit",
    "EpisodeStore",
    "EpisodeWriter",
    "InvalidStoreError",
    "NormalizationStats",
    "WindowDataset",
    "collate_windows",
    "synthetic_episode",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vla.data' has no attribute {name!r}")
