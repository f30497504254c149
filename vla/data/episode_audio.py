"""Spoken instructions in an episode store: ``meta/audio``, ``meta/audio_ends`` and the
``audio_sample_rate`` attribute (the whole layout is in ``store_format``'s docstring).

This module owns a store's optional per-episode audio. :class:`EpisodeAudio` validates and
reads the two arrays for :class:`EpisodeStore`, which delegates ``audio(i)``, ``audio_pcm``,
``read_audio_pcm`` and its summary to it. :class:`EpisodeAudioWriter` enforces the
all-or-none rule for :class:`EpisodeWriter`, creates the arrays at a store's first episode, adds
the samples to each append's payload and truncates uncommitted ones on reopen, so the writer's
atomicity argument holds for audio unchanged. They are their hosts' audio halves, split off to
keep each file short. This module imports neither host: EpisodeAudio reads through the store's
public array surface (:class:`AudioHost`), EpisodeAudioWriter is handed the committed counts, and
the names, checks and PCM scaling they share with their hosts come from ``store_format``.

Why ragged and per episode: an instruction is spoken once for the whole episode and its length
follows the words, not the number of steps, so it cannot be a ``data/<key>`` array cut by
``meta/episode_ends``. The episodes' int16 waveforms are concatenated in one array instead, cut by
their own cumulative ends (one per episode, never empty) the way ``data/`` is cut by
``meta/episode_ends``: entries of ``audio_ends`` past ``num_episodes``, and samples past its last
committed entry, are uncommitted and never read.

Format versions: 1 is the layout without audio; 2 adds the optional audio. New stores are
created at version 2; a version 1 store reopened for appending stays version 1 (its episodes
hold no audio, so later ones cannot either and the layout stays exactly version 1, which older
readers still open), except an empty one, which becomes version 2 when its first episode brings
audio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from vla import keys
from vla.data.episode_checks import check_audio
from vla.data.ragged import pack_segments, segment_starts
from vla.data.store_error import REPAIR, InvalidStoreError
from vla.data.store_format import (
    ATTR_AUDIO_SAMPLE_RATE,
    ATTR_FORMAT_VERSION,
    AUDIO_FORMAT_VERSION,
    check_covers,
    check_dtype,
    check_ends,
    check_per_episode,
    meta_path,
    pcm_to_float,
)
from vla.data.store_integrity import WRITE_EVERY_CHUNK, Span, directory_bytes, read_range

AUDIO_CHUNK = 1 << 18  # int16 samples per chunk of meta/audio: 512 KB raw, 16 s at 16 kHz


class AudioHost(Protocol):
    """What EpisodeAudio uses of the store it belongs to: EpisodeStore's public array surface."""

    path: Path
    format_version: int
    num_episodes: int

    def open_array(self, name: str) -> zarr.Array: ...

    def span(self, name: str) -> tuple[zarr.Array, Span]: ...

    def check_committed(
        self, names: Sequence[str], spans: Sequence[tuple[zarr.Array, Span]] = ()
    ) -> None: ...

    def read_committed(self, name: str) -> np.ndarray: ...

    def episode_bounds(self, index: int) -> tuple[int, int]: ...


class EpisodeAudio:
    """The committed spoken instructions of an open store, validated (EpisodeStore's audio side).

    Checks the ``audio_sample_rate`` attribute against the format version and, when it is set,
    that ``meta/audio_ends`` has an increasing, positive entry per committed episode and that
    ``meta/audio`` holds every sample they cover, raising :class:`InvalidStoreError` otherwise.
    Without audio ``sample_rate``, ``ends`` and ``starts`` are None and reads raise KeyError.

    Args:
        store: the store being opened; its episode count and array checks are used.
        attrs: the store's root attributes (``audio_sample_rate`` is read from them).
    """

    def __init__(self, store: AudioHost, attrs: Mapping[str, Any]) -> None:
        self.store = store
        self.sample_rate: int | None = self._check_sample_rate(attrs.get(ATTR_AUDIO_SAMPLE_RATE))
        self.ends: np.ndarray | None = None  # (N,) cumulative exclusive sample ends
        self.starts: np.ndarray | None = None  # (N,)
        self._samples: zarr.Array | None = None  # meta/audio (S,) int16
        self._span: Span | None = None  # its committed samples, mapped to episodes
        if self.sample_rate is not None:
            self._load()

    def _check_sample_rate(self, rate: Any) -> int | None:
        path, version = self.store.path, self.store.format_version
        if rate is None:
            return None
        if version < AUDIO_FORMAT_VERSION:
            raise InvalidStoreError(
                f"{path}: attribute {ATTR_AUDIO_SAMPLE_RATE}={rate!r} is set but "
                f"{ATTR_FORMAT_VERSION}={version} stores hold no audio; {REPAIR}"
            )
        if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
            raise InvalidStoreError(
                f"{path}: attribute {ATTR_AUDIO_SAMPLE_RATE}={rate!r} must be a positive int "
                f"(Hz); {REPAIR}"
            )
        return rate

    def _load(self) -> None:
        store, n = self.store, self.store.num_episodes
        self.ends = self.starts = np.zeros(0, np.int64)  # (0,)
        if not n:  # a first episode that never committed may have left the arrays half made
            return
        ends_name, audio_name = meta_path(keys.AUDIO_ENDS), meta_path(keys.AUDIO)
        ends_array = store.open_array(ends_name)
        check_dtype(store.path, ends_array, ends_name, np.dtype(np.int64), ndim=1)
        check_per_episode(store.path, ends_name, ends_array.shape[0], n, what="audio")
        store.check_committed([ends_name])  # before the read: absent chunks read as 0
        ends = np.asarray(store.read_committed(ends_name), dtype=np.int64)  # (N,)
        check_ends(store.path, ends, keys.AUDIO_ENDS, unit="audio sample")
        audio = store.open_array(audio_name)
        check_dtype(store.path, audio, audio_name, np.dtype(np.int16), ndim=1)
        check_covers(store.path, audio_name, audio.shape[0], ends, keys.AUDIO_ENDS, unit="samples")
        self.ends = ends
        self.starts = segment_starts(ends)  # (N,)
        self._samples, self._span = audio, Span(audio_name, int(ends[-1]), "samples", ends)
        store.check_committed([], self.spans()[1:])

    def spans(self) -> list[tuple[zarr.Array, Span]]:
        """``meta/audio_ends`` and ``meta/audio`` with their committed parts ([] without audio)."""
        if self._samples is None or self._span is None:
            return []
        return [self.store.span(meta_path(keys.AUDIO_ENDS)), (self._samples, self._span)]

    @property
    def num_samples(self) -> int:
        """Committed samples of ``meta/audio`` (0 without audio)."""
        return int(self.ends[-1]) if self.ends is not None and len(self.ends) else 0

    def read_pcm(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Committed samples ``[start, stop)`` of ``meta/audio``: int16 ``(stop - start,)``."""
        if self._samples is None:
            raise KeyError(
                f"{self.store.path} holds no audio: collect spoken instructions with "
                "`vla-collect ... speech=true` (or append meta['audio'] with EpisodeWriter)"
            )
        stop = self.num_samples if stop is None else min(stop, self.num_samples)
        path, samples, span = self.store.path, self._samples, self._span
        return read_range(path, samples, span, start, stop)  # (stop - start,)

    def pcm(self, index: int) -> np.ndarray:
        """Episode ``index``'s waveform as stored: int16 PCM ``(S_i,)``."""
        self.store.episode_bounds(index)
        if self.ends is None:
            return self.read_pcm()  # no audio: raises the error that says so
        return self.read_pcm(int(self.starts[index]), int(self.ends[index]))

    def waveform(self, index: int) -> np.ndarray:
        """Episode ``index``'s waveform: float32 ``(S_i,)`` in [-1, 1] at ``sample_rate`` Hz."""
        return pcm_to_float(self.pcm(index))  # (S_i,)

    def summary(self) -> dict[str, Any] | None:
        """Seconds of speech and its disk cost, or None without audio."""
        if self.sample_rate is None:
            return None
        rate, n = self.sample_rate, self.store.num_episodes
        seconds = self.num_samples / rate
        disk = sum(
            directory_bytes(self.store.path / keys.META / name)
            for name in (keys.AUDIO, keys.AUDIO_ENDS)
        )
        return {
            "sample_rate": rate,
            "seconds": seconds,
            "mean_seconds": seconds / n if n else 0.0,
            "disk_bytes": disk,
            "bytes_per_second": disk / seconds if seconds else 0.0,
        }


class EpisodeAudioWriter:
    """EpisodeWriter's audio side: the all-or-none rule, lazy arrays, payload and truncation.

    Built by the writer (which holds the store's lock) from the freshly validated store's counts;
    opening has no side effects: the writer calls ``drop`` or ``truncate`` when it cuts its own
    uncommitted tails.

    Args:
        group: the store's root group, open for writing.
        path: the store folder (for messages).
        compression_level: zstd level of the audio arrays.
        ends_chunk: entries per chunk of ``meta/audio_ends`` (the writer's meta column chunk).
        num_episodes: the store's committed episodes, as just validated (EpisodeStore).
        sample_rate: its ``audio_sample_rate`` in Hz, None while its episodes carry no audio.
        num_samples: its committed samples of ``meta/audio``.
    """

    def __init__(
        self,
        group: zarr.Group,
        path: Path,
        compression_level: int,
        ends_chunk: int,
        *,
        num_episodes: int,
        sample_rate: int | None,
        num_samples: int,
    ) -> None:
        self._group, self.path = group, path
        self.compression_level, self.ends_chunk = compression_level, ends_chunk
        self.sample_rate: int | None = sample_rate
        self.num_samples = num_samples  # committed samples of meta/audio
        self._samples: zarr.Array | None = None  # meta/audio (S,) int16
        self._ends: zarr.Array | None = None  # meta/audio_ends (N,) int64
        if num_episodes and self.sample_rate is not None:
            # write_empty_chunks: a silent chunk is stored too, or it would look missing
            self._samples = group[meta_path(keys.AUDIO)].with_config(WRITE_EVERY_CHUNK)
            self._ends = group[meta_path(keys.AUDIO_ENDS)].with_config(WRITE_EVERY_CHUNK)

    # ------------------------------------------------------------------ opening
    def drop(self) -> None:
        """Nothing committed: remove arrays and rate a killed first append may have left, so
        the next first episode decides again whether the store has audio."""
        meta = self._group[keys.META]
        for name in (keys.AUDIO, keys.AUDIO_ENDS):
            if name in meta:
                del meta[name]
        if self.sample_rate is not None:
            attrs = self._group.attrs.asdict()
            del attrs[ATTR_AUDIO_SAMPLE_RATE]
            self._group.attrs.put(attrs)
            self.sample_rate = None

    def truncate(self, num_episodes: int) -> None:
        """Cut the uncommitted tails: ``audio_ends`` to ``num_episodes``, ``audio`` to the last
        committed sample end."""
        if self._ends is not None and self._ends.shape[0] != num_episodes:
            self._ends.resize((num_episodes,))
        if self._samples is not None and self._samples.shape[0] != self.num_samples:
            self._samples.resize((self.num_samples,))

    # ------------------------------------------------------------------ appending
    def check(
        self, meta: Mapping[str, Any], index: int, rate: int | None
    ) -> tuple[np.ndarray | None, int | None]:
        """Episode ``index``'s (global) int16 PCM, None without audio, and the rate it is checked
        against: ``rate`` (the store's), except that a store's first episode sets it."""
        audio = check_audio(meta)
        if index == 0:
            rate = audio[1] if audio else None
        self._check_rule(audio, rate, index)
        return (audio[0] if audio else None), rate

    def _check_rule(self, audio: tuple[np.ndarray, int] | None, rate: int | None, i: int) -> None:
        """Episode ``i`` (global index) must carry audio iff the store does, at its rate."""
        name = f"meta[{keys.AUDIO!r}]"
        if rate is not None and audio is None:
            raise ValueError(
                f"episode {i} has no {name} but the store {self.path} holds a spoken instruction "
                f"for every episode: pass {name} and meta[{keys.AUDIO_SAMPLE_RATE!r}]={rate}, "
                "or write episodes without audio to a new path"
            )
        if rate is None and audio is not None:
            raise ValueError(
                f"episode {i} has {name} but the store {self.path} holds {i} episodes without "
                "audio: a store's episodes all carry audio or none do; use a new path for "
                "episodes with spoken instructions"
            )
        if audio is not None and audio[1] != rate:
            raise ValueError(
                f"meta[{keys.AUDIO_SAMPLE_RATE!r}]={audio[1]} differs from the store's "
                f"{ATTR_AUDIO_SAMPLE_RATE}={rate} at {self.path}: resample the waveform to {rate} "
                "Hz (vla.audio.resample) or use a new path"
            )

    def create(self, rate: int, format_version: int) -> int:
        """Create the arrays and set ``audio_sample_rate`` (the store's first episode brings
        audio); returns the store's format version, raised to 2 for an empty version 1 store."""
        attrs: dict[str, Any] = {ATTR_AUDIO_SAMPLE_RATE: rate}
        if format_version < AUDIO_FORMAT_VERSION:  # an empty version 1 store gets audio
            attrs[ATTR_FORMAT_VERSION] = format_version = AUDIO_FORMAT_VERSION
        self._group.attrs.update(attrs)  # one rename of zarr.json; dropped on reopen if uncommitted
        zstd = ZstdCodec(level=self.compression_level)
        self._samples = self._group.create_array(
            meta_path(keys.AUDIO),
            shape=(0,),
            chunks=(AUDIO_CHUNK,),
            dtype=np.int16,
            compressors=zstd,
            fill_value=0,
            config=WRITE_EVERY_CHUNK,  # a silent chunk is stored too, or it would look missing
        )
        self._ends = self._group.create_array(
            meta_path(keys.AUDIO_ENDS),
            shape=(0,),
            chunks=(self.ends_chunk,),
            dtype=np.int64,
            compressors=zstd,
            config=WRITE_EVERY_CHUNK,
        )
        self.sample_rate = rate
        return format_version

    @property
    def created(self) -> bool:
        """Whether the arrays exist (the store's episodes carry audio)."""
        return self._samples is not None

    def writes(self, pcm: list[np.ndarray], n: int) -> tuple[list[tuple[Any, ...]], int]:
        """The payload writes of ``pcm`` (one int16 clip per episode appended from index ``n``)
        for ``_put_all``, and the sample end they commit with (``num_samples`` once committed).
        """
        if self._samples is None or self._ends is None:
            return [], self.num_samples
        samples, ends = pack_segments(pcm, offset=self.num_samples)  # (sum S,) int16, (k,)
        end = int(ends[-1])
        return [
            (self._samples, self.num_samples, end, samples),
            (self._ends, n, n + len(pcm), ends),
        ], end
