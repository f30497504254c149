"""Rollout success during training: a few seeded episodes every N steps, logged as a metric.

Configured from ``vla-train`` by ``_target_`` (``callbacks.rollout``), so the ``vla`` package
never imports envs or policies.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

from policies.evaluate import evaluate
from policies.spoken_instruction_env import speech_wrappers
from policies.vla_policy import VLAPolicy
from vla.training.checkpoints import validates

METRIC = "rollout/success_rate"


class RolloutEvaluation(L.Callback):
    """Every ``every_n_steps``: ``episodes`` seeded episodes in ``env`` with the current weights
    (the EMA copy when there is one); logs ``rollout/success_rate`` for checkpoint selection.

    Args:
        env: env config node; its cameras / image size must match the training data.
        every_n_steps: how often (0 disables).
        episodes: episodes per evaluation (seeds ``seed`` ... ``seed + episodes - 1``).
        n_action_steps: as in :class:`VLAPolicy`.
        num_envs: envs stepping together (1: in this process, no start-up cost).
    """

    def __init__(
        self,
        env: dict[str, Any] | DictConfig,
        every_n_steps: int = 500,
        episodes: int = 10,
        seed: int = 100_000,
        n_action_steps: int | None = None,
        num_envs: int = 1,
    ):
        if every_n_steps < 0 or episodes < 1:
            raise ValueError(
                f"every_n_steps={every_n_steps} must be >= 0, episodes={episodes} >= 1"
            )
        self.env = OmegaConf.to_container(env, resolve=True) if isinstance(env, DictConfig) else env
        self.every_n_steps, self.episodes, self.seed = every_n_steps, episodes, seed
        self.n_action_steps, self.num_envs = n_action_steps, num_envs
        self.history: list[tuple[int, float]] = []

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.run_if_due(trainer, module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not validates(trainer):  # no validation loop (dataset.val_fraction=0): roll out here
            self.run_if_due(trainer, module)

    def run_if_due(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        step = trainer.global_step
        last = bool(trainer.max_steps) and step >= trainer.max_steps
        due = self.every_n_steps and (step % self.every_n_steps == 0 or last)
        if trainer.sanity_checking or not due:
            return
        if trainer.is_global_zero:
            model = module.policy_model
            was_training = model.training
            model.eval()
            keys = tuple(trainer.datamodule.window_args["image_keys"])
            policy = VLAPolicy(model, keys, self.n_action_steps)
            # a speech model hears the instruction in the env split's voices
            hear = speech_wrappers(policy, split=self.env.get("split", "train"))
            report = evaluate(self.env, policy, self.episodes, self.seed, self.num_envs,
                              out=None, progress=False, env_wrappers=hear)  # fmt: skip
            model.train(was_training)
            self.history.append((step, report["success_rate"]))
            module.log(METRIC, report["success_rate"], rank_zero_only=True)
            minutes = (time.perf_counter() - self._start) / 60  # for success-vs-time curves
            module.log("rollout/train_minutes", minutes, rank_zero_only=True)
