from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vla import keys
from vla.data import EpisodeDataModule

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_config_composes_and_loads(store_factory):
    path = store_factory(6)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        cfg = compose(
            overrides=["+dataset=default", f"dataset.path={path}", "dataset.num_workers=0"]
        )
    module = instantiate(cfg.dataset)
    assert isinstance(module, EpisodeDataModule)
    module.prepare_data()
    module.setup("fit")
    assert set(module.train_set.episodes).isdisjoint(module.val_set.episodes)
    batch = next(iter(module.train_dataloader()))
    size = cfg.dataset.batch_size  # full even past the data's end: the stream wraps to epoch 2
    assert len(module.train_set) < size
    assert batch[keys.ACTION].shape == (size, cfg.dataset.action_horizon, 4)
    assert isinstance(batch[keys.INSTRUCTION], list) and len(batch[keys.TASK]) == size
    assert len(list(module.val_dataloader())) >= 1
    stats = module.normalization_stats
    assert stats[keys.ACTION].q01.shape == (4,) and stats[keys.STATE].q99.shape == (7,)
    # a CPU batch is already where the CPU trainer wants it: handed over as it is
    assert module.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch
    meta = module.transfer_batch_to_device(batch, torch.device("meta"), 0)  # any other: moved
    assert (
        meta[keys.ACTION].device.type == "meta"
        and meta[keys.INSTRUCTION] == batch[keys.INSTRUCTION]
    )


def test_horizons_follow_the_model_config(tmp_path):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        cfg = compose(overrides=["+dataset=default", "dataset.path=x", "+model.action_horizon=5"])
    assert cfg.dataset.action_horizon == 5 and cfg.dataset.obs_horizon == 1


def test_audio_config_reaches_the_batches(store_factory):
    path = store_factory(4, audio=True)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        cfg = compose(
            overrides=[
                "+dataset=default",
                f"dataset.path={path}",
                "dataset.num_workers=0",
                "dataset.audio=true",
            ]
        )
    module = instantiate(cfg.dataset)
    module.setup("fit")
    assert module.train_set.audio_sample_rate == 16000
    batch = next(iter(module.train_dataloader()))
    assert batch[keys.AUDIO].shape == (
        len(batch[keys.AUDIO_LENGTH]),
        batch[keys.AUDIO_LENGTH].max(),
    )


def test_task_balanced_sampling(store_factory):
    """Touch episodes (odd) are 2 steps, push episodes (even) 8: uniform windows would be 20%
    touch; balance=task draws half of the batches from each task, balance=episode each episode
    alike."""
    path = store_factory(20, lengths=[8 if i % 2 == 0 else 2 for i in range(20)])
    shares = {}
    for balance in (None, "task", "episode"):
        module = EpisodeDataModule(
            str(path), batch_size=500, num_workers=0, action_horizon=1, val_fraction=0.0,
            balance=balance, cache=True,
        )  # fmt: skip
        module.setup("fit")
        tasks = next(iter(module.train_dataloader()))[keys.TASK]
        shares[balance] = sum(t == "vla/Touch-v0" for t in tasks) / len(tasks)
    assert abs(shares[None] - 0.2) < 0.01  # a permutation: exact up to the epoch boundary
    assert abs(shares["task"] - 0.5) < 0.07
    assert abs(shares["episode"] - 0.5) < 0.07  # 10 touch episodes of 20
    with pytest.raises(ValueError, match="balance='colour'"):
        EpisodeDataModule(str(path), balance="colour")


def test_a_task_selection_trains_on_those_episodes_only(store_factory):
    path = store_factory(12)  # even episodes push, odd touch (conftest)
    module = EpisodeDataModule(str(path), batch_size=40, num_workers=0, tasks=["vla/Push-v0"])
    module.setup("fit")
    episodes = np.concatenate([module.train_set.episodes, module.val_set.episodes])
    assert sorted(episodes.tolist()) == list(range(0, 12, 2))
    assert set(next(iter(module.train_dataloader()))[keys.TASK]) == {"vla/Push-v0"}
    stats = module.normalization_stats[keys.ACTION]  # over the selected episodes' actions too
    everything = EpisodeDataModule(str(path), num_workers=0).normalization_stats[keys.ACTION]
    assert not np.allclose(stats.q99, everything.q99)
    with pytest.raises(ValueError, match=r"no episode of \['vla/Lift-v0'\]"):
        EpisodeDataModule(str(path), num_workers=0, tasks=["vla/Lift-v0"]).setup("fit")
