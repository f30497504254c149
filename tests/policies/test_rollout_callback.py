"""Rollout success during training: a tiny Lightning run logs what ``evaluate`` measures."""

import csv

import lightning as L
import pytest
from lightning.pytorch.loggers import CSVLogger

from policies.collect import collect
from policies.evaluate import evaluate
from policies.rollout_callback import METRIC, RolloutEvaluation
from policies.vla_policy import VLAPolicy
from vla.data import EpisodeDataModule
from vla.training.module import VLATrainingModule

TOUCH = {"_target_": "gymnasium.make", "id": "envs:vla/Touch-v0", "image_size": 32}


@pytest.mark.slow
def test_a_tiny_run_logs_the_rollout_success_rate_of_its_weights(tmp_path, tiny_vla):
    store = tmp_path / "touch.zarr"
    collect(TOUCH, store, episodes=4, workers=1, progress=False)
    data = EpisodeDataModule(str(store), batch_size=4, num_workers=0, action_horizon=2,
                             persistent_workers=False)  # fmt: skip
    module = VLATrainingModule(tiny_vla(state=True, action_horizon=2, seed=0).train(), warmup_steps=0,
                               max_steps=4)  # fmt: skip
    rollouts = RolloutEvaluation(TOUCH, every_n_steps=2, episodes=2, seed=7)
    never = RolloutEvaluation(TOUCH, every_n_steps=0)  # 0 disables
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=4, val_check_interval=2,
        check_val_every_n_epoch=None, limit_val_batches=1, num_sanity_val_steps=0,
        use_distributed_sampler=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, logger=CSVLogger(tmp_path, name="logs", version=""),
        callbacks=[rollouts, never],
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    assert [step for step, _ in rollouts.history] == [2, 4] and never.history == []
    # the last rate is what evaluate gives for the final weights, episodes and seeds
    policy = VLAPolicy(module.policy_model.eval(), ("image",))
    report = evaluate(TOUCH, policy, episodes=2, seed=7, num_envs=1, progress=False)
    assert rollouts.history[-1][1] == report["success_rate"]
    with open(tmp_path / "logs" / "metrics.csv") as f:
        logged = [row for row in csv.DictReader(f) if row.get(METRIC)]
    assert [float(r[METRIC]) for r in logged] == [rate for _, rate in rollouts.history]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="every_n_steps=-1 must be >= 0"):
        RolloutEvaluation(TOUCH, every_n_steps=-1)
    with pytest.raises(ValueError, match="episodes=0 >= 1"):
        RolloutEvaluation(TOUCH, episodes=0)
