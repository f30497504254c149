"""Read side of the episode store: open, validate and read a Zarr v3 store of demonstrations.

The layout, its attributes and its naming rules are in ``store_format``.

``meta/episode_ends`` is the truth: arrays may hold steps or entries past it, left by a writer
killed mid-episode; they are not part of the store and readers never see them. The same holds
for the audio: only ``audio_ends[:N]`` and the samples up to its last entry are committed.
Both format versions are read; new stores are created at version 2 (see episode_audio).

Chunks (see ``store_integrity``): zarr reads an absent chunk file as zeros, so opening lists
every array's chunk files and refuses a store missing one that holds committed entries, naming
the array, the chunk and its episodes (``check_chunks``, on for every reader: training, the
writer, ``vla-data info``); reads name a chunk that fails to decode; ``verify()`` decodes all.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from vla import keys
from vla.data import store_integrity as integrity
from vla.data.episode_audio import EpisodeAudio
from vla.data.ragged import segment_starts
from vla.data.store_error import REPAIR, InvalidStoreError
from vla.data.store_format import (
    ATTR_ALL_CHUNKS,
    ATTR_ENV_SPEC,
    ATTR_FORMAT_VERSION,
    ATTR_KEYS,
    LOWDIM_KEYS,
    META_COLUMNS,
    SCHEMA,
    check_covers,
    check_dtype,
    check_ends,
    check_header,
    check_per_episode,
    data_path,
    expected_dtype,
    is_image_key,
    meta_path,
)
from vla.progress import progress as show_progress


class EpisodeStore:
    """A validated, read-only view of the committed episodes of a store.

    Opening checks the header, that every array exists with the right dtype, that arrays are
    at least as long as ``meta/episode_ends`` says, (``check_chunks``) that the chunk files of
    their committed entries exist, and (``check_values``) that actions and states are finite.
    Any problem raises :class:`InvalidStoreError` naming the array or episode and the fix.
    Spoken instructions (``has_audio``) are checked alike by EpisodeAudio, through the same
    public array surface: ``open_array``, ``span``, ``check_committed``, ``read_committed`` and
    ``episode_bounds`` (``episode_audio.AudioHost``).

    Args:
        path: the store folder.
        check_values: scan ``action`` / ``state`` for NaN and inf (reads them once; cheap).
        check_chunks: list every array's chunk files and refuse a store missing one that holds
            committed entries (zarr would read it as zeros); decodes nothing, so cheap.
    """

    def __init__(
        self, path: str | Path, check_values: bool = True, check_chunks: bool = True
    ) -> None:
        self.path = Path(path)
        self._group = integrity.open_group(self.path)
        self._opened: dict[str, zarr.Array] = {}  # arrays by path (see open_array)
        attrs = self._group.attrs.asdict()
        check_header(self.path, attrs)
        self.check_chunks = check_chunks
        self._all_chunks_written = attrs.get(ATTR_ALL_CHUNKS) is True
        self.format_version: int = attrs[ATTR_FORMAT_VERSION]
        self.env_spec: dict[str, Any] = dict(attrs.get(ATTR_ENV_SPEC) or {})
        self.keys: list[str] = list(attrs.get(ATTR_KEYS) or [])

        ends_name = meta_path(keys.EPISODE_ENDS)
        ends_array = self.open_array(ends_name)
        check_dtype(self.path, ends_array, ends_name, np.dtype(np.int64), ndim=1)
        self.num_episodes = ends_array.shape[0]  # its shape is the commit record
        self.check_committed([ends_name])
        self.episode_ends: np.ndarray = self.read_committed(ends_name)  # (N,)
        check_ends(self.path, self.episode_ends, keys.EPISODE_ENDS, unit="step")
        self.num_steps = int(self.episode_ends[-1]) if self.num_episodes else 0
        self.episode_starts = segment_starts(self.episode_ends)  # (N,)
        self.episode_lengths = self.episode_ends - self.episode_starts  # (N,)

        # a store whose first episode never committed may lack data arrays: it is just empty
        self.arrays: dict[str, zarr.Array] = {}
        if self.num_episodes:
            self.arrays = {key: self._data_array(key) for key in self.keys}
        # before the columns are read: an absent chunk would read as "" / 0 / False
        self.check_committed([*map(meta_path, META_COLUMNS), *map(data_path, self.arrays)])
        columns = {name: self._meta_column(name, kind) for name, kind in META_COLUMNS.items()}
        self.instructions: list[str] = columns[keys.INSTRUCTION]
        self.tasks: list[str] = columns[keys.TASK]
        self.splits: list[str] = columns[keys.SPLIT]
        self.seeds: np.ndarray = np.asarray(columns[keys.SEED], dtype=np.int64)  # (N,)
        self.successes: np.ndarray = np.asarray(columns[keys.SUCCESS], dtype=bool)  # (N,)
        self.extras: list[dict[str, Any]] = [json.loads(text) for text in columns[keys.EXTRA]]

        # spoken instructions (format 2, optional): one ragged int16 waveform per episode
        self._audio = EpisodeAudio(self, attrs)  # validates the rate and the audio arrays
        self.audio_sample_rate: int | None = self._audio.sample_rate
        self.audio_ends: np.ndarray | None = self._audio.ends  # (N,) cumulative exclusive ends
        self.audio_starts: np.ndarray | None = self._audio.starts  # (N,)
        if check_values:
            for key in LOWDIM_KEYS:
                if key in self.arrays:
                    self._check_finite(key)

    # ------------------------------------------------------------------ validation
    def open_array(self, name: str) -> zarr.Array:
        """Array ``name`` (``data/<key>`` or ``meta/<column>``), opened once per store object,
        or InvalidStoreError when it is missing or a group."""
        if name in self._opened:  # each zarr.json is parsed once per open
            return self._opened[name]
        try:
            node = self._group[name]
        except KeyError:
            raise InvalidStoreError(f"{self.path}: array '{name}' is missing; {REPAIR}") from None
        if not isinstance(node, zarr.Array):
            raise InvalidStoreError(
                f"{self.path}: '{name}' is a group, expected an array; {REPAIR}"
            )
        self._opened[name] = node
        return node

    def _meta_column(self, name: str, kind: type) -> list[Any]:
        path = meta_path(name)
        array = self.open_array(path)
        if kind is str:
            if array.dtype.kind not in "TUO":  # numpy StringDType, fixed unicode, object
                raise InvalidStoreError(
                    f"{self.path}: array '{path}' has dtype {array.dtype}, expected strings; "
                    f"{REPAIR}"
                )
        else:
            check_dtype(self.path, array, path, np.dtype(kind), ndim=1)
        check_per_episode(self.path, path, array.shape[0], self.num_episodes, what=name)
        if not self.num_episodes:
            return []
        return self.read_committed(path).tolist()

    def _data_array(self, key: str) -> zarr.Array:
        name = data_path(key)
        array = self.open_array(name)
        dtype = expected_dtype(key)
        if dtype is not None:
            check_dtype(self.path, array, name, dtype, ndim=4 if is_image_key(key) else 2)
        check_covers(
            self.path, name, array.shape[0], self.episode_ends, keys.EPISODE_ENDS, unit="steps"
        )
        return array

    def _check_finite(self, key: str) -> None:
        values = self.read(key)  # (T, D)
        bad = ~np.isfinite(values).all(axis=tuple(range(1, values.ndim)))  # (T,)
        if bad.any():
            step = int(np.argmax(bad))
            episode = self.episode_of(step)
            raise InvalidStoreError(
                f"{self.path}: '{data_path(key)}' holds NaN/inf at step {step} (episode {episode}, "
                f"task {self.tasks[episode]!r}, step {step - self.episode_starts[episode]} of the "
                f"episode); re-collect that episode or copy the store without it"
            )

    # ------------------------------------------------------------------ chunks
    def span(self, name: str, array: zarr.Array | None = None) -> tuple[zarr.Array, integrity.Span]:
        """Array ``name`` (``data/<key>`` or ``meta/<column>``) and its committed part, cut to
        the array's length (a shorter one is reported by the length checks)."""
        array = self.open_array(name) if array is None else array
        if name.startswith(keys.DATA + "/"):  # steps, mapped to episodes by episode_ends
            size, unit, ends = min(array.shape[0], self.num_steps), "steps", self.episode_ends
        else:
            size, unit, ends = min(array.shape[0], self.num_episodes), "episodes", None
        return array, integrity.Span(name, size, unit, ends)

    def check_committed(
        self, names: Sequence[str], spans: Sequence[tuple[zarr.Array, integrity.Span]] = ()
    ) -> None:
        """With ``check_chunks``: raise InvalidStoreError unless every committed chunk of the
        arrays ``names`` (and of ``spans``: ``(array, Span)`` pairs) is on disk."""
        if self.check_chunks:
            pairs = [self.span(name) for name in names] + list(spans)
            integrity.check_chunks(self.path, pairs, self._all_chunks_written)

    def read_committed(self, name: str) -> np.ndarray:
        """The committed entries of meta/ array ``name``, or an error naming a broken chunk."""
        array, span = self.span(name)
        return integrity.read_range(self.path, array, span, 0, span.length)  # (N,)

    def verify(self) -> int:
        """Decode every committed chunk of every array (reads the whole store; slow on a big
        one); raise one InvalidStoreError naming each that fails. Returns the chunks read."""
        names = [meta_path(keys.EPISODE_ENDS), *map(meta_path, META_COLUMNS)]
        pairs = [self.span(name) for name in [*names, *map(data_path, self.arrays)]]
        return integrity.verify_chunks(self.path, pairs + self._audio.spans())

    # ------------------------------------------------------------------ reading
    def episode_of(self, step: int) -> int:
        """Index of the episode holding global ``step``."""
        return int(np.searchsorted(self.episode_ends, step, side="right"))

    def read(self, key: str, start: int = 0, stop: int | None = None, progress: bool = False):
        """Committed steps ``[start, stop)`` of ``data/<key>`` as one numpy array.

        ``progress`` reads chunk-aligned blocks under a progress bar (for loading big caches).
        """
        if key not in self.arrays:
            raise KeyError(f"key {key!r} is not in the store {self.path} (keys: {self.keys})")
        array, span = self.span(data_path(key), self.arrays[key])
        stop = self.num_steps if stop is None else min(stop, self.num_steps)
        if not progress:
            return integrity.read_range(self.path, array, span, start, stop)  # (stop - start, ...)
        out = np.empty((stop - start, *array.shape[1:]), dtype=array.dtype)  # (stop - start, ...)
        block = max(array.chunks[0], (64 << 20) // max(1, out[:1].nbytes))  # ~64 MB per read
        for lo in show_progress(range(start, stop, block), desc=f"loading {key}", unit="block"):
            hi = min(lo + block, stop)
            block_values = integrity.read_range(self.path, array, span, lo, hi)  # (hi - lo, ...)
            out[lo - start : hi - start] = block_values
        return out

    def episode(self, index: int) -> dict[str, np.ndarray]:
        """Every data array of one episode: ``{key: (L, ...)}``."""
        start, end = self.episode_bounds(index)
        return {key: self.read(key, start, end) for key in self.keys}

    @property
    def has_audio(self) -> bool:
        """Whether every episode carries a spoken instruction (``audio(index)``)."""
        return self.audio_sample_rate is not None

    @property
    def num_audio_samples(self) -> int:
        """Committed samples of ``meta/audio`` (0 without audio)."""
        return self._audio.num_samples

    def read_audio_pcm(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Committed samples ``[start, stop)`` of ``meta/audio``: int16 ``(stop - start,)``."""
        return self._audio.read_pcm(start, stop)

    def audio_pcm(self, index: int) -> np.ndarray:
        """Episode ``index``'s spoken instruction as stored: int16 PCM ``(S_i,)``."""
        return self._audio.pcm(index)

    def audio(self, index: int) -> np.ndarray:
        """Episode ``index``'s spoken instruction: float32 ``(S_i,)`` in [-1, 1], at its rate."""
        return self._audio.waveform(index)  # (S_i,)

    def episode_meta(self, index: int) -> dict[str, Any]:
        """The metadata the episode was appended with, plus its ``length`` (not its audio)."""
        self.episode_bounds(index)
        return {
            keys.INSTRUCTION: self.instructions[index],
            keys.TASK: self.tasks[index],
            keys.SPLIT: self.splits[index],
            keys.SEED: int(self.seeds[index]),
            keys.SUCCESS: bool(self.successes[index]),
            keys.LENGTH: int(self.episode_lengths[index]),
            **self.extras[index],
        }

    def episode_bounds(self, index: int) -> tuple[int, int]:
        """Steps ``[start, end)`` of episode ``index``, or IndexError naming the range."""
        if not 0 <= index < self.num_episodes:
            raise IndexError(f"episode={index} out of range: the store has {self.num_episodes}")
        return int(self.episode_starts[index]), int(self.episode_ends[index])

    # ------------------------------------------------------------------ reporting
    def disk_bytes(self, key: str | None = None) -> int:
        """Bytes on disk of the whole store, or of ``data/<key>``."""
        return integrity.directory_bytes(self.path / keys.DATA / key if key else self.path)

    def bytes_per_frame(self, key: str | None = None) -> float:
        """Bytes on disk per step of ``data/<key>``, or of all data arrays together."""
        if not self.num_steps:
            return 0.0
        total = self.disk_bytes(key) if key else self.disk_bytes_of_data()
        return total / self.num_steps

    def disk_bytes_of_data(self) -> int:
        return sum(self.disk_bytes(key) for key in self.keys)

    def summary(self, num_instructions: int = 5) -> dict[str, Any]:
        """Everything ``vla-data info`` prints, as one JSON-ready dict."""
        key_info = {}
        for key in self.keys:
            array = self.arrays.get(key)
            key_info[key] = {
                "shape": list(array.shape[1:]) if array is not None else None,
                "dtype": str(array.dtype) if array is not None else None,
                "chunks": list(array.chunks) if array is not None else None,
                "compressors": [str(c) for c in array.compressors] if array is not None else [],
                "disk_bytes": self.disk_bytes(key),
                "bytes_per_frame": self.bytes_per_frame(key),
            }
        examples = list(dict.fromkeys(self.instructions))[:num_instructions]
        return {
            "path": str(self.path),
            "schema": SCHEMA,
            "format_version": self.format_version,
            "episodes": self.num_episodes,
            "steps": self.num_steps,
            "mean_episode_length": float(self.episode_lengths.mean()) if self.num_episodes else 0.0,
            "success_rate": float(self.successes.mean()) if self.num_episodes else None,
            "keys": key_info,
            "tasks": dict(Counter(self.tasks)),
            "splits": dict(Counter(self.splits)),
            # extra metadata fields and how many episodes carry each (e.g. target, speech, or
            # driver: episodes a learner drove, policies/dagger.py)
            "extras": dict(Counter(k for extra in self.extras for k in extra)),
            "instructions": examples,
            "audio": self._audio.summary(),  # seconds of speech and disk, or None
            "env_spec": self.env_spec,
            "disk_bytes": self.disk_bytes(),
            "bytes_per_frame": self.bytes_per_frame(),
        }

    def __len__(self) -> int:
        return self.num_episodes

    def __repr__(self) -> str:
        return (
            f"EpisodeStore({str(self.path)!r}, episodes={self.num_episodes}, "
            f"steps={self.num_steps}, keys={self.keys})"
        )
