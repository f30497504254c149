"""Write side of the episode store: append whole episodes, each committed atomically.

Why an append is atomic (against ``kill -9``, an exception, a crash, at any instruction):

* zarr 3.1.6's ``LocalStore`` writes every key (a chunk or a ``zarr.json``) to a temporary
  ``<key>.<uuid>.partial`` file and then ``rename``s it over the key, so each file is either
  the old or the new version, never torn. A kill leaves at most stray ``.partial`` files, which
  readers never open and the next writer deletes.
* ``meta/episode_ends`` is the commit record and the single source of truth. ``append`` first
  writes the payload — ``data/<key>`` steps and ``meta/<column>`` entries — past the committed
  end (growing those arrays' shapes), where no reader looks. Then it writes the chunk of
  ``episode_ends`` holding the new end *without* growing its shape (through a view with the
  grown shape), and last it commits by replacing ``meta/episode_ends/zarr.json`` with the grown
  shape: one rename. Before it the episode does not exist; after it, it is complete.
* Chunks that hold committed steps are only ever replaced whole by a rename, with the committed
  values copied in, so a kill never damages an earlier episode.
* Reopening a writer truncates the uncommitted tails and continues after the last committed
  episode (``num_episodes``), so a collector resumes to a requested count.
* Spoken instructions ride along unchanged (``EpisodeAudioWriter``): an episode's samples
  (``meta/audio``) and its ``meta/audio_ends`` entry are payload, written past the committed ends
  in the same batch as the rest; reopening cuts ``audio_ends`` to ``num_episodes`` and ``audio``
  to the last committed sample end. The audio arrays and the ``audio_sample_rate`` attribute
  appear at the first episode (they are dropped again if it never committed), so a store has
  audio for every episode or for none.

Every chunk is written, even one equal to the fill value everywhere (zarr 3 skips those by
default): readers take an absent chunk for damage (store_integrity), so every array handle is
created or reopened with ``write_empty_chunks`` and new stores say so (``all_chunks_written``).

A directory lock (``flock``) makes a second writer on the same store fail fast; the kernel
releases it when the process dies, so a killed writer never leaves a stale lock. Power loss is
a different failure (the page cache is lost): ``durable=True`` adds ``os.sync()`` barriers
around the commit for that, at a cost per episode.
"""

from __future__ import annotations

import asyncio
import fcntl
import math
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec
from zarr.core.sync import sync
from zarr.storage import LocalStore

from vla import keys as vla_keys  # `keys` is the constructor argument the collector passes
from vla.data.episode_audio import EpisodeAudioWriter
from vla.data.episode_checks import check_episode, check_meta, to_json
from vla.data.episode_store import EpisodeStore
from vla.data.ragged import pack_segments
from vla.data.store_format import (
    ATTR_ALL_CHUNKS,
    ATTR_ENV_SPEC,
    ATTR_KEYS,
    META_COLUMNS,
    check_header,
    data_path,
    is_image_key,
    meta_path,
    new_store_attrs,
)
from vla.data.store_integrity import WRITE_EVERY_CHUNK, open_group

META_CHUNK = 4096  # episodes per chunk of a meta/ column: one small file rewritten per append
_PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")  # zarr LocalStore's temporary file names


async def _put_all(writes: list[tuple[zarr.Array, int, int, Any]]) -> None:
    """Grow each array to ``stop`` along time and write ``value`` into ``[start, stop)``."""

    async def put(array: zarr.AsyncArray, start: int, stop: int, value: Any) -> None:
        await array.resize((stop, *array.shape[1:]))
        await array.setitem(slice(start, stop), value)

    await asyncio.gather(*(put(a.async_array, lo, hi, v) for a, lo, hi, v in writes))


class EpisodeWriter:
    """The single writer of a store: ``append(episode, meta)`` adds one committed episode.

    Creates the store if ``path`` does not exist (or is an empty folder), otherwise reopens it
    and appends after its committed episodes. Data arrays are created at the first append from
    that episode's shapes and dtypes; so are the audio arrays, when its meta carries a spoken
    instruction (``meta["audio"]`` with ``meta["audio_sample_rate"]``): then every later episode
    must carry one at the same rate, and without it none may.

    Args:
        path: the store folder.
        env_spec: JSON-able description of the env (action space, control frequency, cameras and
            image sizes); required to create, checked equal when reopening.
        keys: the data keys every episode holds (e.g. ``["image", "state", "action"]``);
            ``None`` takes them from the store or the first episode.
        compression_level: zstd level for every array (3: ~20x on rendered frames, fast).
        image_chunk_bytes: target raw bytes per image chunk; frames per chunk is the power of two
            below it (96x96 RGB -> 32 frames: consecutive frames compress together, and a random
            read still decodes under 1 MB).
        lowdim_chunk_steps: steps per chunk of non-image arrays.
        durable: ``os.sync()`` before and after each commit, for power-loss safety.
    """

    def __init__(
        self,
        path: str | Path,
        env_spec: Mapping[str, Any] | None = None,
        keys: Sequence[str] | None = None,
        compression_level: int = 3,
        image_chunk_bytes: int = 1 << 20,
        lowdim_chunk_steps: int = 4096,
        durable: bool = False,
    ) -> None:
        if not 1 <= compression_level <= 22:
            raise ValueError(
                f"compression_level={compression_level} must be in 1..22 (zstd levels)"
            )
        if image_chunk_bytes < 1 or lowdim_chunk_steps < 1:
            raise ValueError(
                f"image_chunk_bytes={image_chunk_bytes} and lowdim_chunk_steps="
                f"{lowdim_chunk_steps} must be >= 1"
            )
        if keys is not None and (isinstance(keys, str) or len(set(keys)) != len(keys) or not keys):
            raise ValueError(f"keys={keys!r} must be a non-empty list of distinct names")
        self.path = Path(path)
        self.compression_level = compression_level
        self.image_chunk_bytes = image_chunk_bytes
        self.lowdim_chunk_steps = lowdim_chunk_steps
        self.durable = durable
        spec = None if env_spec is None else to_json(dict(env_spec), "env_spec")

        if not self.path.exists() or (self.path.is_dir() and not any(self.path.iterdir())):
            if spec is None:
                raise ValueError(
                    f"env_spec is required to create the store {self.path}: pass a dict with the "
                    "action space, control frequency, camera names and image sizes"
                )
            self._create(spec, keys)
        self._lock_fd = self._lock()
        try:
            self._open(spec, keys)
        except BaseException:
            self.close()
            raise

    @classmethod
    def create_or_open(
        cls,
        path: str | Path,
        *,
        env_spec: Mapping[str, Any] | None = None,
        keys: Sequence[str] | None = None,
        **options: Any,
    ) -> EpisodeWriter:
        """Create the store at ``path`` or reopen it to append after its committed episodes."""
        return cls(path, env_spec=env_spec, keys=keys, **options)

    # ------------------------------------------------------------------ opening
    def _create(self, spec: dict[str, Any], data_keys: Sequence[str] | None) -> None:
        # built beside the target and renamed into place: a store exists complete or not at all
        tmp = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex}.tmp"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        attrs = new_store_attrs(spec, list(data_keys or []))
        group = zarr.create_group(store=LocalStore(tmp), attributes=attrs)
        group.create_group(vla_keys.DATA)
        for name, dtype in {vla_keys.EPISODE_ENDS: np.int64, **META_COLUMNS}.items():
            group.create_array(
                meta_path(name),
                shape=(0,),
                chunks=(META_CHUNK,),
                dtype=dtype,
                compressors=ZstdCodec(level=self.compression_level),
                config=WRITE_EVERY_CHUNK,
            )
        try:
            os.rename(tmp, self.path)  # replaces an empty folder too (POSIX rename)
        except OSError:
            # another process created it first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
            if not (self.path / "zarr.json").exists():
                raise

    def _lock(self) -> int:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(
                f"{self.path} is open in another EpisodeWriter: a store has one writer; send "
                "episodes from worker processes to a single writer process"
            ) from None
        return fd

    def _open(self, spec: dict[str, Any] | None, data_keys: Sequence[str] | None) -> None:
        # we hold the lock, so any .partial file belongs to a dead writer
        for root, _, files in os.walk(self.path):
            for name in files:
                if _PARTIAL.search(name):
                    os.unlink(os.path.join(root, name))
        self._group = open_group(self.path, read_only=False)
        attrs = self._group.attrs.asdict()
        check_header(self.path, attrs)
        if spec is not None and attrs.get(ATTR_ENV_SPEC) != spec:
            raise ValueError(
                f"env_spec={spec} differs from the store's {attrs.get(ATTR_ENV_SPEC)} at "
                f"{self.path}: episodes from another env setup would mix; use a new path"
            )
        store = EpisodeStore(self.path, check_values=False)  # validates the committed part
        self.num_episodes = store.num_episodes
        self.num_steps = store.num_steps
        self.env_spec: dict[str, Any] = store.env_spec
        self.keys: list[str] = store.keys
        if data_keys is not None and self.keys and list(data_keys) != self.keys:
            raise ValueError(
                f"keys={list(data_keys)} differ from the store's keys {self.keys} at "
                f"{self.path}: pass the same keys (or None) to append to it"
            )
        if data_keys is not None and not self.keys:
            self.keys = list(data_keys)
            self._group.attrs.update({ATTR_KEYS: self.keys})

        # zarr's runtime config is per handle, not stored: ask every handle to write all chunks
        self._ends = self._array(meta_path(vla_keys.EPISODE_ENDS))
        self._columns = {name: self._array(meta_path(name)) for name in META_COLUMNS}
        self._data: dict[str, zarr.Array] = {}
        self.format_version: int = store.format_version
        self._audio = EpisodeAudioWriter(
            self._group,
            self.path,
            self.compression_level,
            ends_chunk=META_CHUNK,
            num_episodes=store.num_episodes,
            sample_rate=store.audio_sample_rate,
            num_samples=store.num_audio_samples,
        )
        if self.num_episodes == 0:
            # nothing committed: drop arrays a killed first append may have half-created
            if vla_keys.DATA in self._group:
                del self._group[vla_keys.DATA]
            self._group.create_group(vla_keys.DATA)
            self._audio.drop()  # the next first episode decides again whether there is audio
            if not attrs.get(ATTR_ALL_CHUNKS):  # an old empty store: from now on every chunk
                self._group.attrs.update({ATTR_ALL_CHUNKS: True})
        else:
            self._data = {key: self._array(data_path(key)) for key in self.keys}
        # drop uncommitted tails so appends continue right after the last committed episode
        for array in self._data.values():
            if array.shape[0] != self.num_steps:
                array.resize((self.num_steps, *array.shape[1:]))
        for array in self._columns.values():  # (episode_ends itself is the commit: never longer)
            if array.shape[0] != self.num_episodes:
                array.resize((self.num_episodes,))
        self._audio.truncate(self.num_episodes)

    def _array(self, name: str) -> zarr.Array:
        return self._group[name].with_config(WRITE_EVERY_CHUNK)

    @property
    def has_audio(self) -> bool:
        """Whether the store's episodes carry spoken instructions."""
        return self.audio_sample_rate is not None

    @property
    def audio_sample_rate(self) -> int | None:
        """The store's ``audio_sample_rate`` (Hz), None while its episodes carry no audio."""
        return self._audio.sample_rate

    @property
    def num_audio_samples(self) -> int:
        """Committed samples of ``meta/audio`` (0 without audio)."""
        return self._audio.num_samples

    # ------------------------------------------------------------------ appending
    def append(self, episode: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> int:
        """Append one episode and commit it; returns its index.

        Args:
            episode: ``{key: (L, ...)}`` arrays of equal length L >= 1: images uint8
                (L, H, W, 3), ``state`` / ``action`` float (stored float32, must be finite).
            meta: ``instruction`` and ``task`` (str, required); ``split`` (default "train"),
                ``seed`` (int, default -1), ``success`` (bool, default True), optional
                ``length`` (checked); ``audio``, a float mono waveform (S,) in [-1, 1] (stored as
                16-bit PCM), with ``audio_sample_rate`` (int Hz): required in a store with audio,
                refused in one whose episodes have none; any other JSON-able fields are kept as
                extras.
        """
        return self.append_many([(episode, meta)])[0]

    def append_many(
        self, items: Sequence[tuple[Mapping[str, np.ndarray], Mapping[str, Any]]]
    ) -> list[int]:
        """Append several ``(episode, meta)`` pairs under one commit; returns their indices.

        All or none are committed. Cheaper per episode than ``append`` (the ~20 small metadata
        writes of a commit are shared), so a writer fed by many workers can drain its queue here.
        """
        if not items:
            return []
        checked, pcm = [], []
        rate = self.audio_sample_rate  # the store's; an empty store takes its first episode's
        for j, (episode, meta) in enumerate(items):
            arrays = check_episode(episode, self.keys, self._data)
            if not self._data:  # shapes of later episodes are checked against these arrays
                self._create_data_arrays(arrays)
            length = len(next(iter(arrays.values())))
            checked.append((arrays, check_meta(meta, length)))
            clip, rate = self._audio.check(meta, self.num_episodes + j, rate)  # (S,) int16 | None
            if clip is not None:
                pcm.append(clip)
        if rate is not None and not self._audio.created:  # only after every episode passed
            self.format_version = self._audio.create(rate, self.format_version)
        n, old, k = self.num_episodes, self.num_steps, len(checked)

        # 1) payload past the committed end: readers ignore it until episode_ends grows. One
        # concurrent batch (zarr's async API) rather than ~20 sequential file round trips.
        packed = {
            key: pack_segments([arrays[key] for arrays, _ in checked], offset=old)
            for key in self._data
        }  # key -> ((sum L, ...) steps, (k,) step ends)
        ends = next(iter(packed.values()))[1]  # (k,) the same for every key: lengths are checked
        new = int(ends[-1])
        writes = [(array, old, new, packed[key][0]) for key, array in self._data.items()]
        writes += [
            (column, n, n + k, [row[name] for _, row in checked])
            for name, column in self._columns.items()
        ]
        audio_writes, audio_end = self._audio.writes(pcm, n)
        sync(_put_all(writes + audio_writes))
        if self.durable:
            os.sync()  # payload on disk before the commit can be

        # 2) the new ends go into their chunk through a view with the grown shape: chunk files
        # change, but meta/episode_ends/zarr.json still says n episodes
        grown = zarr.Array(
            zarr.AsyncArray(
                metadata=self._ends.metadata.update_shape((n + k,)),
                store_path=self._ends.store_path,
                config=self._ends.config,
            )
        )
        grown[n : n + k] = ends

        # 3) commit: one atomic rename of meta/episode_ends/zarr.json with shape n + k
        self._ends.resize((n + k,))
        if self.durable:
            os.sync()
        self.num_episodes, self.num_steps = n + k, new
        self._audio.num_samples = audio_end
        return list(range(n, n + k))

    def _create_data_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for key, value in arrays.items():
            if is_image_key(key):
                frame_bytes = max(1, value[0].nbytes)
                # power of two, so episode boundaries of power-of-two lengths align with chunks
                steps = 2 ** max(0, int(math.log2(max(1, self.image_chunk_bytes // frame_bytes))))
            else:
                steps = self.lowdim_chunk_steps
            self._data[key] = self._group.create_array(
                data_path(key),
                shape=(0, *value.shape[1:]),
                chunks=(steps, *value.shape[1:]),
                dtype=value.dtype,
                compressors=ZstdCodec(level=self.compression_level),
                fill_value=0,
                config=WRITE_EVERY_CHUNK,  # an all-zero chunk is stored too (not "missing")
            )
        if not self.keys:
            self.keys = list(arrays)
            self._group.attrs.update({ATTR_KEYS: self.keys})

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Release the store lock; appends are committed already, nothing to flush."""
        if getattr(self, "_lock_fd", None) is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EpisodeWriter({str(self.path)!r}, episodes={self.num_episodes}, steps={self.num_steps})"
