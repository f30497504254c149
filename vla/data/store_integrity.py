"""Chunk-level integrity of an episode store: committed chunks exist, and failed reads say where.

Why: zarr reads an absent chunk file as the array's fill value, so a deleted chunk of
``data/action`` or ``data/image`` silently becomes zero actions and black frames; and a chunk
overwritten with junk fails deep inside numcodecs with a message that names no array. Guards:

* :func:`check_chunks` (EpisodeStore runs it on open, ``check_chunks=True``): every chunk file
  the *committed* part of an array needs (steps < ``num_steps``, episodes < ``num_episodes``,
  committed audio samples; keys from the array's chunk grid) exists and is not empty. It stats
  files and decodes nothing, so opening stays cheap (~900 files, ~10 ms, for a 3,000-episode
  store with two 64x64 cameras).
* :func:`read_range`: reads ``[start, stop)`` of an array; a chunk that fails to decode raises
  :class:`InvalidStoreError` naming the store, the array, the chunk file, its steps and episodes,
  and the fix. :func:`verify_chunks` decodes every committed chunk that way (``vla-data info
  --verify``): the only check that finds junk bytes before a read trips on them.
* :func:`open_group`: the root group of a store, or an error saying what the path is instead.
* :func:`content_digest`: a digest of arrays' chunk listings (names, sizes, mtimes) and
  ``zarr.json``, so a cache keyed by it (NormalizationStats) dies with the data it came from.

zarr 3 skips writing a chunk equal to the fill value everywhere (``write_empty_chunks=False``,
its default), which would make a real all-zero chunk (silence, zero actions, black frames) look
missing. EpisodeWriter therefore opens every array with :data:`WRITE_EVERY_CHUNK` and marks its
stores with the root attribute ``all_chunks_written`` (``store_format.ATTR_ALL_CHUNKS``). In an
older store without the mark a missing chunk of ``meta/seed``, ``meta/success`` or ``meta/audio``
may be plain zeros, False or silence (common values there), so it is a warning; any other missing
chunk is an error.

Of ``vla.data`` this module imports only ``store_error`` and ``store_format``: ``episode_store``,
which imports it, stays above it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.storage import LocalStore

from vla import keys
from vla.data.store_error import REPAIR, InvalidStoreError
from vla.data.store_format import meta_path

WRITE_EVERY_CHUNK = {"write_empty_chunks": True}  # zarr ArrayConfig for every written array
# arrays where, in a store without ATTR_ALL_CHUNKS, an absent chunk can be ordinary fill values
_MAY_BE_FILL = {meta_path(name) for name in (keys.SEED, keys.SUCCESS, keys.AUDIO)}
_SHOWN = 3  # problems listed per array; the rest are counted


@dataclass(frozen=True)
class Span:
    """The committed part of one array's first axis and how its entries map to episodes.

    Args:
        name: the array's path in the store, e.g. ``"data/action"``.
        length: committed entries along the first axis.
        unit: what an entry is: ``"steps"``, ``"episodes"`` (one per episode) or ``"samples"``.
        ends: (N,) cumulative exclusive ends of each episode's entries (``meta/episode_ends``
            for steps, ``meta/audio_ends`` for samples); None when entry i is episode i.
    """

    name: str
    length: int
    unit: str
    ends: np.ndarray | None = None

    def describe(self, lo: int, hi: int) -> str:
        """``"steps 0-4095: episodes 0-412"`` for entries ``[lo, hi)`` (cut to the committed)."""
        hi = max(lo + 1, min(hi, self.length))
        text = f"{self.unit} {lo}-{hi - 1}"
        if self.ends is None:
            return text
        first, last = np.searchsorted(self.ends, [lo, hi - 1], side="right")
        return f"{text}: " + (f"episode {first}" if first == last else f"episodes {first}-{last}")


def open_group(path: Path, read_only: bool = True) -> zarr.Group:
    """Open the root group of a store, or raise InvalidStoreError saying what ``path`` is instead."""
    if not path.exists():
        raise InvalidStoreError(
            f"{path}: no such episode store; create one with "
            "EpisodeWriter.create_or_open(path, env_spec=...) or check the path"
        )
    if not (path / "zarr.json").is_file():
        raise InvalidStoreError(
            f"{path}: not a Zarr v3 store (no zarr.json); point at the store folder itself "
            "(the one holding data/ and meta/)"
        )
    try:
        node = zarr.open(
            store=LocalStore(path, read_only=read_only), mode="r" if read_only else "r+"
        )
    except Exception as err:  # any zarr parse failure is one message to the user
        raise InvalidStoreError(f"{path}: unreadable Zarr metadata ({err}); {REPAIR}") from err
    if not isinstance(node, zarr.Group):
        raise InvalidStoreError(f"{path}: is a Zarr array, not an episode store (a group)")
    return node


def _rows(array: zarr.Array) -> int:
    """Entries along the first axis per stored object (a chunk file, or a shard)."""
    return (array.shards or array.chunks)[0]


def committed_keys(array: zarr.Array, length: int) -> list[tuple[int, str]]:
    """``(chunk index along the first axis, store key)`` of every object that holds entries
    ``[0, length)``: the whole grid along the other axes."""
    grid = array.shards or array.chunks
    rows = -(-length // grid[0])
    others = [range(-(-size // step)) for size, step in zip(array.shape[1:], grid[1:], strict=True)]
    return [
        (i, array.metadata.encode_chunk_key((i, *rest)))
        for i in range(rows)
        for rest in itertools.product(*others)
    ]


def stored_files(folder: Path) -> dict[str, os.stat_result]:
    """Chunk files under an array folder by store key (``c/0/0``), with their stat; metadata
    and a dead writer's ``.partial`` files left out."""
    files: dict[str, os.stat_result] = {}
    for root, _, names in os.walk(folder):
        for name in names:
            if name in ("zarr.json", ".zarray", ".zattrs") or name.endswith(".partial"):
                continue
            full = os.path.join(root, name)
            files[Path(os.path.relpath(full, folder)).as_posix()] = os.stat(full)
    return files


def _listed(span: Span, kind: str, chunks: list[int], rows: int) -> str:
    shown = ", ".join(f"{i} ({span.describe(i * rows, (i + 1) * rows)})" for i in chunks[:_SHOWN])
    more = f" and {len(chunks) - _SHOWN} more" if len(chunks) > _SHOWN else ""
    noun = "chunk" if len(chunks) == 1 else "chunks"
    return f"array '{span.name}' {kind} {noun} {shown}{more}"


def chunk_problems(path: Path, array: zarr.Array, span: Span) -> list[tuple[bool, str]]:
    """What is wrong with the chunk files of ``span``'s committed entries: ``(absent, line)``,
    one line per kind (absent files, empty files).

    One ``stat`` per expected file (a few microseconds each), not a walk of the folder tree:
    image chunks sit four folders deep (``c/<t>/0/0/0``)."""
    folder = os.fspath(path / span.name)
    missing: dict[int, None] = {}
    empty: dict[int, None] = {}
    for i, key in committed_keys(array, span.length):
        try:
            if os.stat(f"{folder}/{key}").st_size == 0:
                empty[i] = None
        except (FileNotFoundError, NotADirectoryError):
            missing[i] = None
    rows = _rows(array)
    lines = [(True, _listed(span, "is missing", list(missing), rows))] if missing else []
    if empty:
        lines.append((False, _listed(span, "has an empty (0-byte)", list(empty), rows)))
    return lines


def check_chunks(path: Path, arrays: Sequence[tuple[zarr.Array, Span]], all_written: bool) -> None:
    """Raise InvalidStoreError naming every array whose committed chunks are not all on disk.

    ``all_written``: the store carries ``ATTR_ALL_CHUNKS``, so no chunk may be absent; without it
    an absent chunk of an array in ``_MAY_BE_FILL`` is only a warning (see the module docstring).
    """
    errors, doubts = [], []
    for array, span in arrays:
        for absent, line in chunk_problems(path, array, span):
            lenient = absent and not all_written and span.name in _MAY_BE_FILL
            (doubts if lenient else errors).append(line)
    if doubts:
        warnings.warn(
            f"{path}: {'; '.join(doubts)}; this store was written before vla recorded every "
            "chunk, so these may hold only zeros / False / silence (zarr skipped them); if they "
            f"did not, {REPAIR}",
            stacklevel=3,
        )
    if errors:
        raise InvalidStoreError(
            f"{path}: {'; '.join(errors)} (zarr would read absent chunks as zeros, e.g. zero "
            f"actions and black frames); {REPAIR}"
        )


def bad_chunk(array: zarr.Array, span: Span, lo: int, hi: int) -> str | None:
    """What is wrong with the first chunk of ``[lo, hi)`` that fails to read, None if none."""
    rows = _rows(array)
    for i in range(lo // rows, -(-hi // rows)):
        try:
            array[max(lo, i * rows) : min(hi, (i + 1) * rows)]
        except MemoryError:
            raise
        except Exception as err:  # a codec, a shape or an OS error: one message to the user
            key = array.metadata.encode_chunk_key((i, *[0] * (array.ndim - 1)))
            return (
                f"array '{span.name}' chunk {i} ({span.describe(i * rows, (i + 1) * rows)}) "
                f"cannot be read ({type(err).__name__}: {err}): its file {span.name}/{key} is "
                "damaged"
            )
    return None


def read_range(path: Path, array: zarr.Array, span: Span, start: int, stop: int) -> np.ndarray:
    """``array[start:stop]``, or an InvalidStoreError naming the chunk that failed to decode."""
    try:
        return array[start:stop]  # (stop - start, ...)
    except MemoryError:
        raise
    except Exception as err:
        problem = bad_chunk(array, span, start, stop) or (
            f"array '{span.name}' {span.describe(start, stop)} cannot be read "
            f"({type(err).__name__}: {err})"
        )
    raise InvalidStoreError(f"{path}: {problem}; {REPAIR}")  # no chained numcodecs traceback


def verify_chunks(path: Path, arrays: Sequence[tuple[zarr.Array, Span]]) -> int:
    """Decode every committed chunk; raise one InvalidStoreError naming each one that fails.

    Returns the number of chunks decoded. Reads the whole store (slow on a big one).
    """
    problems, count = [], 0
    for array, span in arrays:
        rows = _rows(array)
        for i in range(-(-span.length // rows)):
            problem = bad_chunk(array, span, i * rows, min(span.length, (i + 1) * rows))
            count += 1
            if problem is not None:
                problems.append(problem)
    if problems:
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise InvalidStoreError(f"{path}: {'; '.join(problems[:_SHOWN])}{more}; {REPAIR}")
    return count


def directory_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (apparent sizes, so numbers agree across filesystems)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def content_digest(path: Path, names: Sequence[str]) -> str:
    """Hex digest of arrays' ``zarr.json`` and chunk listings (key, size, mtime_ns): any deleted,
    replaced or rewritten chunk changes it (zarr replaces a chunk by renaming a new file)."""
    digest = hashlib.sha1()
    for name in names:
        folder = path / name
        digest.update(name.encode() + b"\0")
        meta = folder / "zarr.json"
        digest.update(meta.read_bytes() if meta.is_file() else b"-")
        for key, stat in sorted(stored_files(folder).items()):
            digest.update(f"{key}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
