from pathlib import Path

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
