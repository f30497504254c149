"""Lightning shell over WindowDataset: train/val loaders and the training-split statistics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader

from vla import keys
from vla.data.episode_split import TRAIN, VAL, EpisodeSplit, select_tasks
from vla.data.episode_store import EpisodeStore
from vla.data.normalization_stats import NormalizationStats
from vla.data.resumable_sampler import ResumableRandomSampler
from vla.data.window_dataset import BALANCES, WindowDataset, collate_windows


class EpisodeDataModule(LightningDataModule):
    """Loaders of training windows from one episode store (config: ``configs/dataset``).

    Window and split arguments are :class:`WindowDataset`'s (``audio=True`` adds the spoken
    instruction to every sample; the datasets' ``audio_sample_rate`` is the store's). Statistics are computed (and cached
    in the store) in ``prepare_data``, which Lightning runs once per node, so ranks never race to
    compute them; ``normalization_stats`` then reads them.

    Args:
        batch_size: samples per batch (per device).
        num_workers: loader worker processes (0 loads in the main process).
        pin_memory: page-locked batches for fast host-to-GPU copies; None means "if CUDA".
        persistent_workers: keep workers (and their open store / cache) across epochs.
        shuffle_seed: seed of the training order: an endless stream of per-epoch permutations
            (``ResumableRandomSampler``), so a resumed run continues at the exact data position
            (``train_sampler.resume_at``) and batches never drop samples at epoch ends.
        balance: None (every training window equally often) or ``task`` / ``episode``: draw
            windows so that every task (or episode) gets the same share of the batches
            (``WindowDataset.sample_weights``), e.g. a multi-task store whose touch episodes are
            a third as long as its pick-and-place ones.
        tasks: train and validate on the episodes of these tasks only (e.g. one task of a
            multi-task store), or None for all.
    """

    def __init__(
        self,
        path: str,
        batch_size: int = 64,
        num_workers: int = 2,
        obs_horizon: int = 1,
        action_horizon: int = 8,
        image_keys: Sequence[str] = (keys.IMAGE,),
        state_key: str | None = keys.STATE,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        cache: bool = False,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        shuffle_seed: int = 0,
        history: str = "recent",
        qa_fraction: float = 0.0,
        transcribe_fraction: float = 0.0,
        audio: bool = False,
        balance: str | None = None,
        tasks: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if balance is not None and balance not in BALANCES:
            raise ValueError(f"balance={balance!r} must be one of {BALANCES} or null (uniform)")
        self.balance = balance
        if batch_size < 1 or num_workers < 0:
            raise ValueError(
                f"batch_size={batch_size} must be >= 1 and num_workers={num_workers} >= 0"
            )
        self.path = Path(path)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.window_args = dict(
            obs_horizon=obs_horizon,
            action_horizon=action_horizon,
            image_keys=list(image_keys),  # a Hydra ListConfig becomes a plain list
            state_key=state_key,
            val_fraction=val_fraction,
            split_seed=split_seed,
            cache=cache,
            history=history,
            qa_fraction=qa_fraction,
            transcribe_fraction=transcribe_fraction,
            audio=audio,
            tasks=None if tasks is None else list(tasks),  # a Hydra ListConfig becomes a list
        )
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.shuffle_seed = shuffle_seed
        self.train_sampler: ResumableRandomSampler | None = None
        self.train_set: WindowDataset | None = None
        self.val_set: WindowDataset | None = None
        self._stats: dict[str, NormalizationStats] | None = None

    def prepare_data(self) -> None:
        self.normalization_stats  # noqa: B018 -- computes and caches in the store once

    @property
    def normalization_stats(self) -> dict[str, NormalizationStats]:
        """``{"action": ..., "state": ...}`` over the training episodes (saved in checkpoints)."""
        if self._stats is None:
            store = EpisodeStore(self.path, check_values=False)
            labels = select_tasks(store.splits, store.tasks, self.window_args["tasks"])
            split = EpisodeSplit.from_labels(
                labels, self.window_args["val_fraction"], self.window_args["split_seed"]
            )
            state_key = self.window_args["state_key"]
            stat_keys = [keys.ACTION, *([state_key] if state_key else [])]
            self._stats = NormalizationStats.from_store(store, split.train, stat_keys)
        return self._stats

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None and stage in (None, "fit"):
            self.train_set = WindowDataset(self.path, split=TRAIN, **self.window_args)
            weights = self.train_set.sample_weights(self.balance) if self.balance else None
            self.train_sampler = ResumableRandomSampler(
                len(self.train_set), self.shuffle_seed, weights
            )
        if self.val_set is None and stage in (None, "fit", "validate"):
            self.val_set = WindowDataset(self.path, split=VAL, **self.window_args)

    def _loader(self, dataset: WindowDataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for loaders (the Trainer does)")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=self.train_sampler if train else None,
            # training batches come from an endless stream: all full, none dropped
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            collate_fn=collate_windows,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        """On a CPU the batch is already there: skip Lightning's walk over every entry (the
        instruction strings included; ~0.5 ms a quickstart step)."""
        if device.type == "cpu":
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)
