"""A shuffling sampler that can start mid-epoch, so a resumed run sees the data it would have."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableRandomSampler(Sampler[int]):
    """A new seeded permutation every epoch (``set_epoch``, which Lightning calls), optionally
    skipping the first ``start`` indices of the current epoch.

    On resume the trainer restores the step count but restarts the epoch's iteration; skipping
    the samples already consumed continues at the same data position (``resume_at``).
    """

    def __init__(self, size: int, seed: int = 0):
        if size < 1:
            raise ValueError(f"size={size} must be >= 1 (an empty training split?)")
        self.size, self.seed, self.epoch, self.start = size, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.start = 0  # the skip applies to the epoch we resumed in only
        self.epoch = epoch

    def resume_at(self, samples_seen: int) -> None:
        """Position after ``samples_seen`` samples since training began."""
        self.epoch, self.start = divmod(samples_seen, self.size)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=g)  # (size,)
        yield from order[self.start :].tolist()

    def __len__(self) -> int:
        return self.size - self.start
