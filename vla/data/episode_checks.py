"""Checks of what EpisodeWriter is given: a bad episode must never reach the store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import zarr

from vla import keys
from vla.data.store_format import (
    AUDIO_SCALE,
    LOWDIM_KEYS,
    META_COLUMNS,
    expected_dtype,
    float_to_pcm,
    is_image_key,
)

DEFAULT_SPLIT = "train"
DEFAULT_SEED = -1  # unknown
DEFAULT_SUCCESS = True  # a demonstration is a success unless the caller says otherwise
AUDIO_META = (keys.AUDIO, keys.AUDIO_SAMPLE_RATE)  # stored in meta/audio*, not as extras


def to_json(value: Any, what: str) -> Any:
    """JSON-normalized copy (tuples -> lists), or a ValueError naming ``what``."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} must be JSON-serializable ({err}); use str/int/float/list/dict"
        ) from None


def check_episode(
    episode: Mapping[str, np.ndarray], store_keys: list[str], stored: Mapping[str, zarr.Array]
) -> dict[str, np.ndarray]:
    """The episode's arrays in store order and dtypes, or a ValueError naming what is wrong.

    ``store_keys`` is empty for a store whose keys come from its first episode; ``stored`` holds
    the store's existing data arrays (shapes and dtypes to match).
    """
    if not isinstance(episode, Mapping) or not episode:
        raise ValueError(
            f"episode must be a non-empty dict of arrays, got {type(episode).__name__}"
        )
    expected = store_keys or list(episode)
    if set(episode) != set(expected):
        missing = sorted(set(expected) - set(episode))
        extra = sorted(set(episode) - set(expected))
        raise ValueError(
            f"episode keys {sorted(episode)} differ from the store's {expected} "
            f"(missing {missing}, unexpected {extra}); pass exactly the store's keys"
        )
    arrays: dict[str, np.ndarray] = {}
    for key in expected:
        value = np.asarray(episode[key])
        name = f"episode[{key!r}]"
        if value.ndim == 0 or len(value) == 0:
            raise ValueError(f"{name} has shape {value.shape}: need (L, ...) with L >= 1 steps")
        first = arrays[expected[0]] if arrays else value
        if len(value) != len(first):
            raise ValueError(
                f"{name} has {len(value)} steps but episode[{expected[0]!r}] has {len(first)}: "
                "every key needs one entry per step"
            )
        if not is_image_key(key) and value.dtype == np.uint8 and value.ndim == 4:
            raise ValueError(
                f"{name} is uint8 {value.shape}, a camera, but camera arrays are named "
                f"{keys.IMAGE!r} or '{keys.IMAGE}_<camera>' in a store (its chunking and checks "
                f"follow the name): rename it, e.g. '{keys.IMAGE}_{key}'"
            )
        if is_image_key(key):
            if value.dtype != np.uint8 or value.ndim != 4 or value.shape[-1] != 3:
                raise ValueError(
                    f"{name} is {value.dtype} {value.shape}: images are stored uint8 "
                    "(L, H, W, 3); convert float frames with (x * 255).round().astype(np.uint8)"
                )
        elif key in LOWDIM_KEYS:
            if value.dtype.kind not in "fiu" or value.ndim != 2:
                raise ValueError(f"{name} is {value.dtype} {value.shape}: expected float (L, D)")
            value = value.astype(expected_dtype(key), copy=False)
            bad = ~np.isfinite(value).all(axis=1)  # (L,)
            if bad.any():
                raise ValueError(
                    f"{name} holds NaN/inf at step {int(np.argmax(bad))}: drop this episode "
                    "(a diverged simulation) instead of storing it"
                )
        elif value.dtype.kind not in "biuf":
            raise ValueError(f"{name} has dtype {value.dtype}: store numeric arrays only")
        if key in stored:
            array = stored[key]
            if value.shape[1:] != array.shape[1:]:
                raise ValueError(
                    f"{name} steps are {value.shape[1:]} but the store holds "
                    f"{array.shape[1:]}: use one env setup per store"
                )
            if not np.can_cast(value.dtype, array.dtype, "same_kind"):
                raise ValueError(f"{name} has dtype {value.dtype}, the store {array.dtype}")
            value = value.astype(array.dtype, copy=False)
        arrays[key] = value
    return arrays


def check_meta(meta: Mapping[str, Any], length: int) -> dict[str, Any]:
    """One row of the ``meta/`` columns, defaults filled and ``length`` checked, or a ValueError."""
    if not isinstance(meta, Mapping):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
    row: dict[str, Any] = {}
    for name in (keys.INSTRUCTION, keys.TASK):
        value = meta.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"meta[{name!r}]={value!r} must be a non-empty str")
        row[name] = value
    split = meta.get(keys.SPLIT, DEFAULT_SPLIT)
    if not isinstance(split, str) or not split:
        raise ValueError(f"meta[{keys.SPLIT!r}]={split!r} must be a non-empty str like 'train'")
    seed = meta.get(keys.SEED, DEFAULT_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"meta[{keys.SEED!r}]={seed!r} must be an int")
    success = meta.get(keys.SUCCESS, DEFAULT_SUCCESS)
    if not isinstance(success, bool | np.bool_):
        raise ValueError(f"meta[{keys.SUCCESS!r}]={success!r} must be a bool")
    if meta.get(keys.LENGTH, length) != length:
        raise ValueError(
            f"meta[{keys.LENGTH!r}]={meta[keys.LENGTH]} but the episode has {length} steps"
        )
    skip = {*META_COLUMNS, keys.LENGTH, *AUDIO_META}
    extra = {k: v for k, v in meta.items() if k not in skip}
    if keys.EXTRA in meta:
        raise ValueError(f"meta[{keys.EXTRA!r}] is reserved: put free-form fields at the top level")
    row.update(
        {
            keys.SPLIT: split,
            keys.SEED: int(seed),
            keys.SUCCESS: bool(success),
            keys.EXTRA: json.dumps(to_json(extra, "meta extra fields"), sort_keys=True),
        }
    )
    return row


def check_audio(meta: Mapping[str, Any]) -> tuple[np.ndarray, int] | None:
    """The spoken instruction in ``meta`` as int16 PCM ``(S,)`` and its rate, None without one.

    ``meta[AUDIO]`` is a float mono waveform in [-1, 1] (clipped, then rounded to 16 bits) and
    ``meta[AUDIO_SAMPLE_RATE]`` its rate in Hz; the two come together or not at all.
    """
    wave, rate = meta.get(keys.AUDIO), meta.get(keys.AUDIO_SAMPLE_RATE)
    if wave is None and rate is None:
        return None
    if wave is None:
        raise ValueError(
            f"meta[{keys.AUDIO_SAMPLE_RATE!r}]={rate!r} without meta[{keys.AUDIO!r}]: pass the "
            "waveform too, or neither"
        )
    if rate is None:
        raise ValueError(
            f"meta[{keys.AUDIO!r}] needs meta[{keys.AUDIO_SAMPLE_RATE!r}]: the int rate in Hz the "
            "waveform was recorded or synthesized at (e.g. 16000)"
        )
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate < 1:
        raise ValueError(f"meta[{keys.AUDIO_SAMPLE_RATE!r}]={rate!r} must be an int >= 1 (Hz)")
    wave = np.asarray(wave)
    if wave.dtype.kind != "f" or wave.ndim != 1:
        raise ValueError(
            f"meta[{keys.AUDIO!r}] is {wave.dtype} {wave.shape}: expected a float mono waveform "
            f"(S,) in [-1, 1]; convert int16 PCM with x / {AUDIO_SCALE}"
        )
    if wave.size == 0:
        raise ValueError(
            f"meta[{keys.AUDIO!r}] is empty: a spoken instruction needs >= 1 sample; "
            "synthesize or record it again"
        )
    bad = ~np.isfinite(wave)  # (S,)
    if bad.any():
        raise ValueError(
            f"meta[{keys.AUDIO!r}] holds NaN/inf at sample {int(np.argmax(bad))}: fix the signal"
        )
    return float_to_pcm(wave), int(rate)  # (S,) int16
