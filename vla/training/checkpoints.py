"""Checkpoints during training, in the ``vla.checkpoint`` format (DESIGN.md).

``<dir>/last``          every ``every_n_steps`` and at the end of training
``<dir>/best_val``      lowest validation loss so far
``<dir>/best_success``  highest rollout success so far (when a rollout callback logs it)
``<dir>/last.ckpt``     the trainer state (optimizer, LR schedule, step) that ``resume`` reads;
                        tensors and plain types only, loaded with ``weights_only=True``

Every folder is written under a temporary name and renamed, so a kill loses at most the steps
since the last save and never leaves a torn checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L

from vla.checkpoint import save_checkpoint
from vla.specs import TrainingInfo

VAL_METRIC = "val/loss"
SUCCESS_METRIC = "rollout/success_rate"
RESUME_FILE = "last.ckpt"


def validates(trainer: L.Trainer) -> bool:
    """Whether the run has a validation loop (``dataset.val_fraction=0`` runs without one: the
    rollouts and ``best_success`` then follow the training steps instead)."""
    return trainer.limit_val_batches != 0


def data_epochs(trainer: L.Trainer) -> float | None:
    """Passes over the training data so far (the sampler is one endless stream, so Lightning's
    epoch counter stays 0); None without a ``vla`` data module."""
    data = getattr(trainer, "datamodule", None)
    sampler = getattr(data, "train_sampler", None)
    if sampler is None or not hasattr(sampler, "epoch_of"):
        return None
    return round(sampler.epoch_of(trainer.global_step * data.batch_size * trainer.world_size), 3)


class PretrainedCheckpoints(L.Callback):
    """Save ``last`` / ``best_val`` / ``best_success`` policy folders and the resume state.

    Args:
        dirpath: the checkpoints folder.
        every_n_steps: save ``last`` (and the resume state) this often.
        norm_stats: the dataset statistics, saved with every checkpoint.
        info: training facts the policy needs at inference (cameras, state key, env spec),
            written to ``training.json``.
    """

    def __init__(
        self,
        dirpath: str | Path,
        every_n_steps: int = 200,
        norm_stats: dict[str, Any] | None = None,
        info: TrainingInfo | None = None,
    ):
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps={every_n_steps} must be >= 1")
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.norm_stats = norm_stats or {}
        self.info = info or TrainingInfo()
        self.best: dict[str, float] = {}

    def _save(self, trainer: L.Trainer, module: L.LightningModule, name: str, **extra: Any) -> None:
        if trainer.is_global_zero:
            info = self.info.with_step(
                step=trainer.global_step, epoch=data_epochs(trainer), **extra
            )
            save_checkpoint(
                module.policy_model, self.dirpath / name, self.norm_stats, extra=info.to_dict()
            )

    def save_resume_state(self, trainer: L.Trainer) -> None:
        path = self.dirpath / RESUME_FILE
        tmp = self.dirpath / f".{RESUME_FILE}.tmp"
        # full state (optimizer, schedule, loops) for resume; every rank calls it (sharded strategies)
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            os.replace(tmp, path)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not validates(trainer):  # after the rollout callback's own on_train_batch_end
            self.save_best(trainer, module)
        if trainer.global_step % self.every_n_steps == 0:
            self._save(trainer, module, "last")
            self.save_resume_state(trainer)

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.save_best(trainer, module)

    def save_best(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Save ``best_val`` / ``best_success`` when the latest logged value beats the best."""
        metrics = trainer.callback_metrics
        for metric, name, better in (
            (VAL_METRIC, "best_val", lambda new, old: new < old),
            (SUCCESS_METRIC, "best_success", lambda new, old: new > old),
        ):
            if metric in metrics:
                value = float(metrics[metric])
                if metric not in self.best or better(value, self.best[metric]):
                    self.best[metric] = value
                    self._save(trainer, module, name, **{metric: value})

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._save(trainer, module, "last")
        self.save_resume_state(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict.get("best", {}))
