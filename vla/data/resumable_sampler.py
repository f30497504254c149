"""An endless shuffled stream of sample indices that a resumed run continues exactly.

Why endless: training is counted in steps (``trainer.max_steps``), not epochs. With finite epochs
and ``drop_last`` every epoch drops ``len(dataset) % batch`` samples, so "where is step s in the
data" depends on the epoch boundaries; and a Lightning run resumed mid-epoch counts the batches it
had done against the shortened epoch of a sampler that skips them — it could end up with an empty
epoch and train zero steps. Here the data is one stream: epoch ``e`` is the ``e``-th seeded
permutation of the dataset, the stream is their concatenation, and a batch may span two epochs,
so every sample is seen once per epoch and step ``s`` of a run with batch ``B`` on ``W`` ranks
always reads stream positions ``[s * B * W, (s + 1) * B * W)``, resumed or not.

Weighted (``weights``): epoch ``e`` is instead ``size`` seeded draws with replacement, sample ``i``
drawn with probability ``weights[i] / sum(weights)`` (task-balanced sampling: a task with short
episodes is not outvoted by one with long ones); an "epoch" is then ``size`` draws, and resuming
is exact in the same way.

Data parallel: rank ``r`` of ``W`` takes positions ``r, r + W, r + 2W ...`` (the trainer runs with
``use_distributed_sampler: false``, so Lightning does not wrap it), so the ranks' batches of a
step partition one global batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 without torch.distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ResumableRandomSampler(Sampler[int]):
    """Endless stream of seeded per-epoch permutations of ``range(size)``, sharded over ranks.

    Args:
        size: samples in the dataset.
        seed: seed of the permutations (epoch ``e`` uses ``seed * 1_000_003 + e``).
        weights: ``(size,)`` non-negative sampling weights, or None for permutations.
    """

    def __init__(self, size: int, seed: int = 0, weights: Sequence[float] | None = None):
        if size < 1:
            raise ValueError(f"size={size} must be >= 1 (an empty training split?)")
        self.size, self.seed = size, seed
        self.weights: torch.Tensor | None = None
        if weights is not None:
            w = torch.as_tensor(weights, dtype=torch.float64)  # (size,)
            if w.shape != (size,) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(
                    f"weights must be {size} finite values >= 0 with a positive sum; got shape "
                    f"{tuple(w.shape)}, min {float(w.min()) if w.numel() else None}"
                )
            self.weights = w
        self.position = 0  # global stream position the next iteration starts at

    def resume_at(self, samples_seen: int) -> None:
        """Start the next iteration after ``samples_seen`` samples of the global stream."""
        if samples_seen < 0:
            raise ValueError(f"samples_seen={samples_seen} must be >= 0")
        self.position = samples_seen

    def epoch_of(self, samples_seen: int) -> float:
        """Passes over the data after ``samples_seen`` stream positions."""
        return samples_seen / self.size

    def order(self, epoch: int) -> torch.Tensor:
        """The order epoch ``epoch`` visits the samples in ``(size,)``: a permutation, or with
        ``weights`` ``size`` weighted draws with replacement."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if self.weights is not None:
            return torch.multinomial(self.weights, self.size, replacement=True, generator=g)
        return torch.randperm(self.size, generator=g)  # (size,)

    def stream(self, start: int, rank: int = 0, world: int = 1) -> Iterator[int]:
        """Indices at global positions ``start + rank + k * world``, k = 0, 1, ... (endless)."""
        p = start + rank
        while True:
            epoch, offset = divmod(p, self.size)
            chunk = self.order(epoch)[offset::world]  # this rank's positions in this epoch
            yield from chunk.tolist()
            p += len(chunk) * world  # first of this rank's positions in the next epoch

    def __iter__(self) -> Iterator[int]:
        rank, world = rank_and_world()
        return self.stream(self.position, rank, world)
