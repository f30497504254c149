"""The episode store's format: its schema, paths, naming rules and the checks that follow them.

Layout (diffusion_policy's, so stores interoperate)::

    zarr.json                 attributes: schema, format_version (1, or 2: may hold audio),
                              env_spec, keys (+ audio_sample_rate: int Hz, only with audio;
                              + all_chunks_written: true, set by writers that store every chunk)
    data/<key>                (T, ...) every episode concatenated along time (first axis)
    meta/episode_ends         (N,) int64, cumulative and exclusive: episode i is
                              data[ends[i-1]:ends[i]] — the commit record (see EpisodeWriter)
    meta/<column>             (N,) one entry per episode: instruction, task, split, seed,
                              success, extra (a JSON object of free-form fields)
    meta/audio                (S,) int16 PCM (x / 32767 -> [-1, 1]), optional: every
                              episode's spoken instruction concatenated (see episode_audio)
    meta/audio_ends           (N,) int64, cumulative and exclusive sample ends: episode i's
                              waveform is audio[audio_ends[i-1]:audio_ends[i]] (never empty)
    stats/                    cached normalization statistics (NormalizationStats)

``data/`` and ``meta/audio`` are ragged arrays cut by cumulative ends (see ``ragged``).

This is the bottom of ``vla.data``: the store (read side), the writer, the audio half, the
input checks and the chunk checks all import it, and it imports none of them (only the error
type), so the format is written down once and nothing here can form an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from vla import keys
from vla.data.store_error import REPAIR, InvalidStoreError

SCHEMA = "vla.episode_store"
FORMAT_VERSION = 2  # new stores are created at this version
SUPPORTED_FORMAT_VERSIONS = (1, 2)
AUDIO_FORMAT_VERSION = 2  # the first format version that may hold audio

# the store's header: root group attribute names
ATTR_SCHEMA = "schema"
ATTR_FORMAT_VERSION = "format_version"
ATTR_ENV_SPEC = "env_spec"
ATTR_KEYS = "keys"
ATTR_AUDIO_SAMPLE_RATE = keys.AUDIO_SAMPLE_RATE  # int Hz, only with audio
ATTR_ALL_CHUNKS = "all_chunks_written"  # the writer stored every chunk (see store_integrity)

# per-episode columns in meta/ and their dtypes (str columns are Zarr variable-length UTF-8)
META_COLUMNS: dict[str, type] = {
    keys.INSTRUCTION: str,
    keys.TASK: str,
    keys.SPLIT: str,
    keys.SEED: np.int64,
    keys.SUCCESS: np.bool_,
    keys.EXTRA: str,
}
LOWDIM_KEYS = (keys.ACTION, keys.STATE)  # float32 (T, D), checked finite
AUDIO_SCALE = 32767  # int16 PCM <-> float: x_int = round(clip(x, -1, 1) * 32767), as save_wav


def new_store_attrs(env_spec: dict[str, Any], data_keys: list[str]) -> dict[str, Any]:
    """The root attributes a store is created with (this order is the order in zarr.json).

    ``audio_sample_rate`` is not among them: a store's first episode adds it when it brings
    audio. ``all_chunks_written`` is: the writer stores every chunk, even an all-zero one.
    """
    return {
        ATTR_SCHEMA: SCHEMA,
        ATTR_FORMAT_VERSION: FORMAT_VERSION,
        ATTR_ENV_SPEC: env_spec,
        ATTR_KEYS: data_keys,
        ATTR_ALL_CHUNKS: True,
    }


def is_image_key(key: str) -> bool:
    """Camera arrays are ``image`` (first camera) and ``image_<camera>`` (the env's naming).

    The one statement of the rule: chunking, dtype checks and camera stacking follow the name.
    """
    return key == keys.IMAGE or key.startswith(keys.IMAGE + "_")


def expected_dtype(key: str) -> np.dtype | None:
    """The dtype a data key must have, or None when any numeric dtype is fine."""
    if is_image_key(key):
        return np.dtype(np.uint8)
    if key in LOWDIM_KEYS:
        return np.dtype(np.float32)
    return None


def meta_path(column: str) -> str:
    """Path of a per-episode array in the store: ``meta/<column>``."""
    return f"{keys.META}/{column}"


def data_path(key: str) -> str:
    """Path of a per-step array in the store: ``data/<key>``."""
    return f"{keys.DATA}/{key}"


def float_to_pcm(wave: np.ndarray) -> np.ndarray:
    """A float waveform ``(S,)`` as stored: int16 PCM, clipped to [-1, 1] then rounded."""
    return np.round(np.clip(wave, -1.0, 1.0) * AUDIO_SCALE).astype(np.int16)  # (S,)


def pcm_to_float(pcm: np.ndarray) -> np.ndarray:
    """Stored int16 PCM ``(S,)`` as float32 in [-1, 1] (``float_to_pcm`` undone to 16 bits)."""
    return pcm.astype(np.float32) / AUDIO_SCALE  # (S,)


# ---------------------------------------------------------------------- checks of the schema
def check_header(path: Path, attrs: Mapping[str, Any]) -> None:
    """Schema and format version: refuse stores this code does not know how to read."""
    if attrs.get(ATTR_SCHEMA) != SCHEMA:
        raise InvalidStoreError(
            f"{path}: attribute {ATTR_SCHEMA}={attrs.get(ATTR_SCHEMA)!r} is not {SCHEMA!r}, so "
            "this Zarr group is not a vla episode store; write stores with vla.data.EpisodeWriter"
        )
    version = attrs.get(ATTR_FORMAT_VERSION)
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise InvalidStoreError(
            f"{path}: {ATTR_FORMAT_VERSION}={version!r} is not supported by this vla "
            f"(supported: {list(SUPPORTED_FORMAT_VERSIONS)}); upgrade vla if the store is newer, "
            "or re-collect it"
        )


def check_dtype(
    path: Path, array: zarr.Array, name: str, dtype: np.dtype, ndim: int | None
) -> None:
    """Array ``name`` has ``dtype`` (and ``ndim`` dims unless None), or InvalidStoreError."""
    if array.dtype != dtype:
        raise InvalidStoreError(
            f"{path}: array '{name}' has dtype {array.dtype}, expected {dtype}; "
            f"rewrite it as {dtype} (EpisodeWriter stores the right dtypes)"
        )
    if ndim is not None and array.ndim != ndim:
        raise InvalidStoreError(
            f"{path}: array '{name}' has shape {array.shape}, expected {ndim} dims; {REPAIR}"
        )


def check_ends(path: Path, ends: np.ndarray, column: str, unit: str) -> None:
    """``meta/<column>`` (N,) cumulative exclusive ends are positive and increasing: every
    episode has >= 1 ``unit``."""
    name = meta_path(column)
    if len(ends) and ends[0] <= 0:
        raise InvalidStoreError(
            f"{path}: episode 0 ends at {ends[0]} in '{name}'; ends must be positive and "
            f"increasing (every episode has >= 1 {unit}); {REPAIR}"
        )
    bad = np.flatnonzero(np.diff(ends) <= 0)
    if len(bad):
        i = int(bad[0]) + 1
        raise InvalidStoreError(
            f"{path}: episode {i} ends at {ends[i]} <= the end of episode {i - 1} "
            f"({ends[i - 1]}) in '{name}'; ends must increase; {REPAIR}"
        )


def check_per_episode(path: Path, name: str, size: int, num_episodes: int, what: str) -> None:
    """Per-episode array ``name`` of ``size`` entries has one for each committed episode
    (``what`` names the entry in the message)."""
    if size < num_episodes:
        raise InvalidStoreError(
            f"{path}: array '{name}' has {size} entries but "
            f"'{meta_path(keys.EPISODE_ENDS)}' lists {num_episodes} episodes "
            f"(episode {size} has no {what}); {REPAIR}"
        )


def check_covers(
    path: Path, name: str, size: int, ends: np.ndarray, column: str, unit: str
) -> None:
    """Ragged array ``name`` of ``size`` entries holds everything its (N,) ends, ``meta/<column>``,
    cover (N >= 1); a shorter one was truncated."""
    if size < ends[-1]:
        episode = int(np.searchsorted(ends, size, side="right"))
        raise InvalidStoreError(
            f"{path}: array '{name}' has {size} {unit} but '{meta_path(column)}' says "
            f"{ends[-1]} (episode {episode} ends at {ends[episode]}); the array was truncated: "
            f"{REPAIR}"
        )
