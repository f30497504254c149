"""Training windows over an episode store: past observations, future actions, the instruction.

Sample ``i`` is one step ``t`` of one episode. It holds the ``obs_horizon`` observations ending
at ``t`` (repeating the episode's first frame where the window starts before the episode, as
diffusion_policy pads) and the ``action_horizon`` actions starting at ``t`` (repeating the last
action past the episode end, with ``action_mask`` False there, so the loss can skip padding).
Every step of an episode is a sample, the last one included. With ``audio=True`` a sample also
holds its episode's spoken instruction, whole; ``collate_windows`` pads those to the batch's
longest and records the real lengths.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from torch.utils.data import Dataset, default_collate
from zarr.storage import LocalStore

from vla import keys
from vla.audio.audio_encoder import pad_clips
from vla.data.episode_split import DATA_SPLITS, EpisodeSplit, select_tasks
from vla.data.episode_store import EpisodeStore
from vla.data.normalization_stats import NormalizationStats
from vla.data.ragged import segment_rows, segment_starts, take_segments
from vla.data.store_format import data_path, is_image_key, meta_path, pcm_to_float
from vla.data.store_integrity import Span, read_range
from vla.history import check_history, observation_steps
from vla.progress import progress

# what a speech model is asked when it co-trains on transcripts (``transcribe_fraction``)
TRANSCRIBE_QUESTION = "what was said?"


BALANCES = ("task", "episode")  # WindowDataset.sample_weights groups


class WindowDataset(Dataset):
    """Windows of one split of a store, as dicts with the keys of :mod:`vla.keys`.

    Per sample: ``IMAGE`` (T, V, 3, H, W) uint8, ``STATE`` (T, S) float32, ``GOAL`` (S,) float32
    (the state at the episode's last step), ``ACTION`` (H, D) float32, ``ACTION_MASK`` (H,)
    bool, ``INSTRUCTION`` str, ``TASK`` str, with T = ``obs_horizon``, V = ``len(image_keys)``,
    H = ``action_horizon``; with ``audio``, also
    ``AUDIO`` (S_e,) float32 in [-1, 1], the episode's spoken instruction at
    ``audio_sample_rate`` Hz (the store's: check it against the audio encoder's).

    Args:
        path: the store folder.
        obs_horizon: observations per sample, the current one last.
        action_horizon: actions per sample, the current step's first.
        image_keys: store keys of the cameras to stack on the V axis (same image size);
            empty for a state-only policy (no ``IMAGE`` in samples).
        state_key: store key of proprioception, or None (no ``STATE`` in samples).
        split: "train", "val" or "all"; see :class:`EpisodeSplit` for how episodes are assigned.
        val_fraction: share of "train"-labelled episodes held out for validation.
        split_seed: seed of that draw; same seed, same split.
        cache: decode every frame into RAM once (fast; needs ~T * H * W * 3 bytes per camera).
            Without it each worker reads the frames of each sample from the store. Actions and
            states are always in RAM (they are small).
        history: which past frames a window holds: ``recent`` (the last T) or ``start`` (the
            episode's first frame, then the last T - 1); see :mod:`vla.history`.
        qa_fraction: share of samples that also carry their episode's ``QUESTION`` / ``ANSWER``
            (stored by tasks that ask one, e.g. recall: "which object lit up?"), for RT-2 style
            co-training on text answers about the same frames; the rest carry ``""`` / None,
            which the text loss skips. Which samples is fixed by the index (reproducible).
        transcribe_fraction: share of samples (of those without a question) asked
            ``TRANSCRIBE_QUESTION`` with the episode's instruction text as the answer: with
            ``audio``, the model must say what it heard, a dense signal that teaches the audio
            encoder the words (ASR as RT-2 style co-training) besides the action loss.
        audio: add each episode's spoken instruction (stores collected with
            ``vla-collect ... speech=true``). With ``cache`` the split's audio stays in RAM as
            16-bit PCM (32 KB per second at 16 kHz) and is converted per sample.
        tasks: only the episodes of these tasks (``select_tasks``), or None for all.
    """

    def __init__(
        self,
        path: str | Path,
        obs_horizon: int = 1,
        action_horizon: int = 8,
        image_keys: Sequence[str] = (keys.IMAGE,),
        state_key: str | None = keys.STATE,
        split: str = "train",
        val_fraction: float = 0.1,
        split_seed: int = 0,
        cache: bool = False,
        history: str = "recent",
        qa_fraction: float = 0.0,
        audio: bool = False,
        transcribe_fraction: float = 0.0,
        tasks: Sequence[str] | None = None,
    ) -> None:
        if obs_horizon < 1 or action_horizon < 1:
            raise ValueError(
                f"obs_horizon={obs_horizon} and action_horizon={action_horizon} must be >= 1"
            )
        if split not in DATA_SPLITS:
            raise ValueError(f"split={split!r} must be one of {DATA_SPLITS}")
        if isinstance(image_keys, str):
            raise ValueError(
                f"image_keys={image_keys!r} must be a list of keys, e.g. ['{keys.IMAGE}']"
            )
        self.path = Path(path)
        self.obs_horizon = obs_horizon
        self.action_horizon = action_horizon
        self.image_keys = list(image_keys)
        self.state_key = state_key
        self.split = split
        self.cache = cache
        self.history = check_history(history, obs_horizon)
        if not (0.0 <= qa_fraction <= 1.0 and 0.0 <= transcribe_fraction <= 1 - qa_fraction):
            raise ValueError(
                f"qa_fraction={qa_fraction} and transcribe_fraction={transcribe_fraction} must "
                "be >= 0 with a sum <= 1"
            )
        if transcribe_fraction > 0 and not audio:
            raise ValueError(
                f"transcribe_fraction={transcribe_fraction} asks the model what it heard: it "
                "needs audio=true (a store collected with speech=true)"
            )
        self.qa_fraction, self.transcribe_fraction = qa_fraction, transcribe_fraction

        store = EpisodeStore(self.path)
        self._check_keys(store)
        self.audio = audio
        self.audio_sample_rate: int | None = store.audio_sample_rate  # Hz, None: no audio
        if audio and not store.has_audio:
            raise ValueError(
                f"audio=True but {self.path} holds no spoken instructions: collect a store with "
                "them (`vla-collect ... speech=true`) or set audio=false"
            )
        labels = select_tasks(store.splits, store.tasks, tasks)
        self.episode_split = EpisodeSplit.from_labels(labels, val_fraction, split_seed)
        self.episodes = self.episode_split.episodes(split)  # (E,) episode indices
        self.store_num_episodes = store.num_episodes
        self.image_shape = (
            tuple(store.arrays[self.image_keys[0]].shape[1:]) if self.image_keys else None
        )

        lengths = store.episode_lengths[self.episodes]  # (E,)
        self._episode = np.repeat(self.episodes, lengths).astype(np.int64)  # (N,) per sample
        # (N,) global step of each sample
        self._step = segment_rows(store.episode_starts, store.episode_ends, self.episodes)
        self._starts = store.episode_starts  # (N_ep,)
        self._ends = store.episode_ends  # (N_ep,)
        self._instructions = store.instructions
        self._qa: list[tuple[str, str] | None] = [
            (x[keys.QUESTION], x[keys.ANSWER]) if keys.ANSWER in x else None for x in store.extras
        ]
        if qa_fraction > 0 and not any(self._qa[e] for e in self.episodes):
            raise ValueError(
                f"qa_fraction={qa_fraction} but no {split!r} episode of {self.path} has a "
                f"{keys.QUESTION!r} / {keys.ANSWER!r} (only tasks that ask one store them, e.g. "
                "vla/Recall-v0): set qa_fraction=0"
            )
        # which samples carry their question: a fixed draw per index
        draw = np.random.default_rng(split_seed).random(len(self._episode))  # (N,)
        self._carries_qa = draw < qa_fraction  # (N,)
        self._transcribes = (draw >= qa_fraction) & (draw < qa_fraction + transcribe_fraction)
        self._tasks = store.tasks
        self._act_offsets = np.arange(action_horizon)  # (H,) steps ahead of t

        self._action = store.read(keys.ACTION)  # (T_all, D)
        self._state = store.read(state_key) if state_key else None  # (T_all, S)
        # the cache holds only this split's episodes, back to back: row = global step + offset
        cached_starts = segment_starts(np.cumsum(lengths))  # (E,)
        self._cache_offset = np.zeros(store.num_episodes, np.int64)  # (N_ep,)
        self._cache_offset[self.episodes] = cached_starts - store.episode_starts[self.episodes]
        # decoded before DataLoader workers fork, so they share these pages copy-on-write; a
        # camera listed twice in image_keys (read twice by the model) is decoded and held once
        cached = dict.fromkeys(self.image_keys) if cache else {}
        self._frames = {k: self._load_frames(store, k) for k in cached}
        # audio: (start, end) sample bounds per episode, in the store or (cached) in RAM
        self._audio_bounds = np.zeros((store.num_episodes, 2), np.int64)  # (N_ep, 2)
        self._audio_pcm: np.ndarray | None = None  # (S_split,) int16 when cached
        if audio:
            self._audio_bounds[:] = np.stack([store.audio_starts, store.audio_ends], axis=1)
            if cache:
                self._audio_pcm = self._load_audio(store)
        self._arrays: dict[str, zarr.Array] | None = None  # opened lazily, once per process
        self._audio_array: zarr.Array | None = None
        self._pid = -1
        # committed extents of the lazily read arrays: a chunk that fails to decode is named
        self._spans = {k: store.span(data_path(k))[1] for k in self.image_keys}
        if audio:
            name = meta_path(keys.AUDIO)
            self._spans[name] = Span(name, store.num_audio_samples, "samples", store.audio_ends)

    def sample_weights(self, balance: str) -> np.ndarray:
        """``(N,)`` sampling weights that give every group of ``balance`` the same share of draws:
        ``task`` (each task's windows together weigh the same, whatever its episodes' number and
        length) or ``episode`` (each episode the same, whatever its length)."""
        if balance == "task":
            groups = np.array([self._tasks[e] for e in self._episode])  # (N,) task names
        elif balance == "episode":
            groups = self._episode  # (N,)
        else:
            raise ValueError(f"balance={balance!r} must be one of {BALANCES} (or null: uniform)")
        _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
        return 1.0 / counts[inverse]  # (N,)

    def _check_keys(self, store: EpisodeStore) -> None:
        if store.num_episodes == 0:
            raise ValueError(f"{self.path} holds no episodes yet: collect some first")
        wanted = [*self.image_keys, keys.ACTION, *([self.state_key] if self.state_key else [])]
        for key in wanted:
            if key not in store.arrays:
                raise ValueError(
                    f"key {key!r} is not in {self.path} (its keys: {store.keys}); fix image_keys / "
                    "state_key in the dataset config"
                )
        for key in self.image_keys:
            if not is_image_key(key):
                raise ValueError(
                    f"image_keys has {key!r}, which is not a camera key ({keys.IMAGE}*)"
                )
        shapes = {k: tuple(store.arrays[k].shape[1:]) for k in self.image_keys}
        if len(set(shapes.values())) > 1:
            raise ValueError(
                f"cameras {shapes} differ in size: they stack on one axis; pick same-size ones"
            )

    def _load_frames(self, store: EpisodeStore, key: str) -> np.ndarray:
        array = store.arrays[key]
        frames = np.empty((len(self._step), *array.shape[1:]), array.dtype)  # (N, H, W, 3)
        row = 0
        for e in progress(self.episodes, desc=f"caching {key} ({self.split})", unit="episode"):
            start, end = int(store.episode_starts[e]), int(store.episode_ends[e])
            frames[row : row + end - start] = store.read(key, start, end)  # (L, H, W, 3)
            row += end - start
        return frames

    def _load_audio(self, store: EpisodeStore) -> np.ndarray:
        """The split's waveforms back to back, int16; rebases ``_audio_bounds`` onto them."""
        pcm = store.read_audio_pcm()  # (S_all,) every committed sample in one read
        if len(self.episodes) != store.num_episodes:  # a subset: keep only its samples
            lo, hi = self._audio_bounds.T  # (N_ep,) each: the store's sample bounds
            pcm, ends = take_segments(pcm, lo, hi, self.episodes)  # (S_split,), (E,)
            self._audio_bounds[self.episodes] = np.stack([segment_starts(ends), ends], axis=1)
        return pcm

    def __len__(self) -> int:
        return len(self._step)

    def _window(
        self, index: int | np.ndarray
    ) -> tuple[Any, Any, np.ndarray, np.ndarray, np.ndarray]:
        """Where the window(s) ``index`` (an int, or ``(B,)``) read: episode and its end
        (scalars or ``(B,)``), observation steps ``(..., T)``, action steps ``(..., H)`` (the last
        action repeated past the episode end) and their mask ``(..., H)`` (False there)."""
        t, episode = self._step[index], self._episode[index]
        start, end = self._starts[episode], self._ends[episode]
        obs = observation_steps(t, start, self.obs_horizon, self.history)  # (..., T) steps
        act = np.asarray(t)[..., None] + self._act_offsets  # (..., H)
        last = np.asarray(end)[..., None]  # (..., 1)
        return episode, end, obs, np.minimum(act, last - 1), act < last

    def __getitem__(self, index: int) -> dict[str, Any]:
        episode, end, obs, act, mask = self._window(index)  # (), (), (T,), (H,), (H,)
        episode, end = int(episode), int(end)
        sample: dict[str, Any] = {}
        if self.image_keys:
            views = [self._read_frames(k, obs, episode) for k in self.image_keys]  # V (T, H, W, 3)
            one = len(views) == 1  # one camera: a view, no copy
            frames = views[0][:, None] if one else np.stack(views, axis=1)  # (T, V, H, W, 3)
            sample[keys.IMAGE] = torch.from_numpy(frames).permute(0, 1, 4, 2, 3)  # (T, V, 3, H, W)
        if self._state is not None:
            sample[keys.STATE] = torch.from_numpy(self._state[obs])  # (T, S)
            sample[keys.GOAL] = torch.from_numpy(self._state[end - 1])  # (S,) where it ended
        sample[keys.ACTION] = torch.from_numpy(self._action[act])  # (H, D)
        sample[keys.ACTION_MASK] = torch.from_numpy(mask)  # (H,)
        sample[keys.INSTRUCTION] = self._instructions[episode]
        sample[keys.TASK] = self._tasks[episode]
        if self.qa_fraction > 0 or self.transcribe_fraction > 0:
            qa = self._qa[episode] if self._carries_qa[index] else None
            if self._transcribes[index]:
                qa = (TRANSCRIBE_QUESTION, self._instructions[episode])
            sample[keys.QUESTION], sample[keys.ANSWER] = qa if qa else ("", None)
        if self.audio:
            pcm = self._read_audio(episode)  # (S_e,) int16
            sample[keys.AUDIO] = torch.from_numpy(pcm_to_float(pcm))  # (S_e,)
        return sample

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Any]:
        """A whole batch (``torch``'s DataLoader calls this when it exists): the same as
        ``collate_windows([self[i] for i in indices])``, gathered with one fancy index per array
        when every camera is cached and the samples carry no audio or questions (a quickstart
        batch of 64 windows: ~2.4 -> 0.6 ms); otherwise sample by sample."""
        per_sample = self.audio or self.qa_fraction > 0 or self.transcribe_fraction > 0
        if per_sample or any(k not in self._frames for k in self.image_keys):
            return collate_windows([self[i] for i in indices])
        index = np.asarray(indices, np.int64)  # (B,)
        episode, end, obs, act, mask = self._window(index)  # (B,), (B,), (B, T), (B, H), (B, H)
        batch: dict[str, Any] = {}
        if self.image_keys:
            rows = obs + self._cache_offset[episode][:, None]  # (B, T) rows of the cache
            frames = np.stack([self._frames[k][rows] for k in self.image_keys], axis=2)
            batch[keys.IMAGE] = torch.from_numpy(frames).permute(0, 1, 2, 5, 3, 4).contiguous()
        if self._state is not None:
            batch[keys.STATE] = torch.from_numpy(self._state[obs])  # (B, T, S)
            batch[keys.GOAL] = torch.from_numpy(self._state[end - 1])  # (B, S)
        batch[keys.ACTION] = torch.from_numpy(self._action[act])  # (B, H, D)
        batch[keys.ACTION_MASK] = torch.from_numpy(mask)  # (B, H)
        batch[keys.INSTRUCTION] = [self._instructions[e] for e in episode]
        batch[keys.TASK] = [self._tasks[e] for e in episode]
        return batch

    def _read_audio(self, episode: int) -> np.ndarray:
        lo, hi = (int(b) for b in self._audio_bounds[episode])
        if self._audio_pcm is not None:
            return self._audio_pcm[lo:hi]  # (S_e,)
        self._open_arrays()
        span = self._spans[meta_path(keys.AUDIO)]
        return read_range(self.path, self._audio_array, span, lo, hi)  # (S_e,)

    def _open_arrays(self) -> None:
        if self._arrays is None or self._pid != os.getpid():
            # first read in this process (a DataLoader worker): open once, never per sample
            store = LocalStore(self.path, read_only=True)
            self._arrays = {
                k: zarr.open_array(store, path=data_path(k), mode="r") for k in self.image_keys
            }
            if self.audio:
                self._audio_array = zarr.open_array(store, path=meta_path(keys.AUDIO), mode="r")
            self._pid = os.getpid()

    def _read_frames(self, key: str, obs: np.ndarray, episode: int) -> np.ndarray:
        if key in self._frames:
            return self._frames[key][obs + self._cache_offset[episode]]  # (T, H, W, 3)
        self._open_arrays()
        lo, hi = int(obs[0]), int(obs[-1]) + 1
        array, span = self._arrays[key], self._spans[key]
        frames = read_range(self.path, array, span, lo, hi)  # (hi - lo, H, W, 3)
        return frames[obs - lo]  # (T, H, W, 3)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = state["_audio_array"] = None  # zarr handles are reopened in the worker
        return state

    def normalization_stats(self, use_cache: bool = True) -> dict[str, NormalizationStats]:
        """Action (and state) statistics over the *training* episodes of this split, cached."""
        stat_keys = [keys.ACTION, *([self.state_key] if self.state_key else [])]
        return NormalizationStats.from_store(
            EpisodeStore(self.path, check_values=False),
            self.episode_split.train,
            stat_keys,
            use_cache,
        )


def collate_windows(samples: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """Stack tensors on a new batch axis and keep strings as lists (``INSTRUCTION``, ``TASK``).

    ``AUDIO`` clips differ in length: rows are zero-padded to the longest, and ``AUDIO_LENGTH``
    (B,) int64 holds each row's real sample count. Tensors go through ``default_collate``, which
    in a DataLoader worker stacks straight into shared memory, so a batch crosses to the main
    process without another copy.
    """
    if isinstance(samples, dict):  # a batch already (WindowDataset.__getitems__)
        return samples
    batch: dict[str, Any] = {}
    for key, value in samples[0].items():
        column = [sample[key] for sample in samples]
        if key == keys.AUDIO:
            column, batch[keys.AUDIO_LENGTH] = pad_clips(column)  # B x (N,), (B,)
        is_tensor = isinstance(value, torch.Tensor)
        batch[key] = default_collate(column) if is_tensor else column  # (B, ...) or list
    return batch
