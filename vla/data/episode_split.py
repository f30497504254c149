"""Episode-level train/val split: whole episodes go to one side, never steps of one to both.

"Split" means three things in this project, each spelled in one place:

- the **scene split** an env draws from (``envs.palette.SPLITS``: ``train`` / ``test`` targets
  and instruction templates; ``env.split=test`` holds out colour x shape combinations);
- an episode's **label** in a store (``meta/split``): the scene split it was collected in;
- the **data split** here (``DATA_SPLITS``): which of a store's ``train``-labelled episodes
  train the model and which validate it (``dataset.val_fraction``), ``all`` for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TRAIN = "train"
VAL = "val"
ALL = "all"  # both sides: evaluation over everything
DATA_SPLITS = (TRAIN, VAL, ALL)
LEFT_OUT = "left_out"  # the label of an episode a task selection leaves out: in neither side


def select_tasks(
    labels: Sequence[str], episode_tasks: Sequence[str], tasks: Sequence[str] | None
) -> list[str]:
    """The store's episode labels with every episode whose task is not in ``tasks`` relabelled
    ``LEFT_OUT`` (in neither side of a split); ``tasks=None`` keeps them all.

    E.g. a single-task policy trained from a multi-task store: ``dataset.tasks=[push]``."""
    if tasks is None:
        return list(labels)
    if isinstance(tasks, str) or not tasks:
        raise ValueError(f"tasks={tasks!r} must be a non-empty list of task names, or null (all)")
    have = sorted(set(episode_tasks))
    missing = sorted(set(tasks) - set(have))
    if missing:
        raise ValueError(
            f"tasks={list(tasks)}: the store has no episode of {missing}; it has {have}"
        )
    keep = set(tasks)
    return [lab if t in keep else LEFT_OUT for lab, t in zip(labels, episode_tasks, strict=True)]


@dataclass(frozen=True)
class EpisodeSplit:
    """Sorted episode indices of each side.

    Build with :meth:`from_labels`: episodes the store labels ``"val"`` are always validation
    (held out at collection time); episodes labelled ``"train"`` are shuffled with ``seed`` and
    ``round(val_fraction * n)`` of them (at least one when ``val_fraction > 0`` and there are two
    or more, never all) join validation; other labels (``"test"``) are in neither.
    """

    train: np.ndarray  # (N_train,) int64
    val: np.ndarray  # (N_val,) int64

    @classmethod
    def from_labels(cls, labels: Sequence[str], val_fraction: float, seed: int) -> EpisodeSplit:
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(
                f"val_fraction={val_fraction} must be in [0, 1): the share of episodes held out"
            )
        labels = np.asarray(labels, dtype=object)  # (N,)
        train = np.flatnonzero(labels == TRAIN)  # (N_train,)
        fixed_val = np.flatnonzero(labels == VAL)  # (N_fixed,)
        n_val = round(val_fraction * len(train))
        if val_fraction > 0 and len(train) >= 2:
            n_val = min(max(n_val, 1), len(train) - 1)
        order = np.random.default_rng(seed).permutation(len(train))  # (N_train,)
        drawn = train[order[:n_val]]  # (n_val,)
        return cls(
            train=np.sort(train[order[n_val:]]).astype(np.int64),
            val=np.sort(np.concatenate([fixed_val, drawn])).astype(np.int64),
        )

    def episodes(self, split: str) -> np.ndarray:
        """Indices of ``split``: "train", "val" or "all" (both sides)."""
        if split == TRAIN:
            return self.train
        if split == VAL:
            return self.val
        if split == ALL:
            return np.sort(np.concatenate([self.train, self.val]))
        raise ValueError(f"split={split!r} must be one of {DATA_SPLITS}")
