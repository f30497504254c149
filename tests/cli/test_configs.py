"""Every top-level config composes with every option of its groups; CPU parts instantiate."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import vla  # noqa: F401 -- registers the ${vla.cpu_precision:} resolver the trainer configs use

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def options(group: str) -> list[str]:
    """Option names of ``group``, those in subfolders too (``ablations/touch_v1``)."""
    root = CONFIGS / group
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def make(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=name, overrides=overrides, return_hydra_config=False)


@pytest.mark.parametrize("env", options("env"))
def test_env_configs_instantiate(env):
    cfg = make("collect", [f"env={env}", "env.image_size=32"])
    e = instantiate(cfg.env)
    try:
        obs, info = e.reset(seed=0)
        assert obs["image"].shape == (32, 32, 3) and info["instruction"]
    finally:
        e.close()


@pytest.mark.parametrize("trainer", options("trainer"))
def test_train_config_composes_with_every_trainer(trainer):
    cfg = make("train", [f"trainer={trainer}", "dataset.path=x.zarr"])
    assert cfg.trainer._target_ == "lightning.Trainer"
    if trainer == "cpu":
        t = instantiate(cfg.trainer, logger=False)
        assert t.max_steps == cfg.trainer.max_steps


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_are_overrides_of_the_train_config(experiment):
    cfg = make("train", [f"experiment={experiment}"])
    assert cfg.dataset.path and cfg.out


@pytest.mark.parametrize("policy", options("policy"))
def test_eval_config_composes_with_every_policy(policy):
    cfg = make("eval", [f"policy={policy}", "checkpoint=some/dir"])
    assert cfg.env.split == cfg.split and cfg.policy._target_
    if policy == "expert":
        assert len(instantiate(cfg.policy).policies) == cfg.num_envs


def test_unknown_experiment_is_a_clear_error():
    with pytest.raises(Exception, match="experiment"):
        make("train", ["experiment=does_not_exist"])
