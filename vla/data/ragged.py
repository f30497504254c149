"""Ragged arrays: variable-length segments stored back to back and cut by cumulative ends.

The episode store keeps two of them: ``data/<key>`` (steps, cut by ``meta/episode_ends``) and
``meta/audio`` (samples, cut by ``meta/audio_ends``). Segment i is ``values[ends[i-1]:ends[i]]``
(the first starts at 0), so the ends alone say where every segment lies; an empty segment is
two equal ends. The writer packs segments with these helpers, and the store and the window
dataset cut them with the same, so the offset arithmetic lives in one place.

A bottom module: it imports nothing of ``vla``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def segment_starts(ends: np.ndarray) -> np.ndarray:
    """``(N,)`` int64 start of each segment from its ``(N,)`` cumulative exclusive ends."""
    starts = np.zeros(len(ends), np.int64)  # (N,)
    starts[1:] = ends[:-1]
    return starts


def pack_segments(parts: Sequence[np.ndarray], offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``parts`` back to back, ``(sum S_i, ...)``, and their ``(k,)`` int64 cumulative exclusive
    ends counted from ``offset`` (the entries stored before them).

    One part is returned as it is, not copied (the writer's common case: one episode).
    """
    if not parts:
        raise ValueError("parts is empty: pack_segments takes the dtype and shape from a part")
    ends = offset + np.cumsum([len(part) for part in parts], dtype=np.int64)  # (k,)
    values = parts[0] if len(parts) == 1 else np.concatenate(parts)  # (sum S_i, ...)
    return values, ends


def take_segments(
    values: np.ndarray, starts: np.ndarray, ends: np.ndarray, indices: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Segments ``indices`` of ``values`` (cut by ``starts`` / ``ends``, each ``(N,)``) back to
    back, ``(sum S_i, ...)``, with their new ``(k,)`` int64 cumulative ends (from 0).

    Always a copy, so the result never pins ``values`` (e.g. a whole store's audio) in memory.
    """
    indices = np.asarray(indices, dtype=np.int64)  # (k,)
    lo, hi = starts[indices], ends[indices]  # (k,) each
    taken = np.concatenate(
        [values[a:b] for a, b in zip(lo, hi, strict=True)] or [values[:0]]
    )  # (sum S_i, ...)
    return taken, np.cumsum(hi - lo, dtype=np.int64)  # (k,)


def segment_rows(
    starts: np.ndarray, ends: np.ndarray, indices: Sequence[int] | np.ndarray
) -> np.ndarray:
    """``(M,)`` int64 rows of segments ``indices``, in order: index arrays for a fancy read of
    a few segments (e.g. the steps of a split's episodes)."""
    rows = [np.arange(starts[i], ends[i], dtype=np.int64) for i in indices]  # (S_i,) each
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)  # (M,)
