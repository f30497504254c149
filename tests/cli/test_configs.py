"""Every top-level config composes with every option of its groups; CPU parts instantiate."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

import vla  # noqa: F401 -- registers the ${vla.cpu_precision:} resolver the trainer configs use
from envs.keys import image_key

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def options(group: str) -> list[str]:
    """Option names of ``group``, those in subfolders too (``ablations/touch_v1``)."""
    root = CONFIGS / group
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def make(name: str, overrides: list[str], hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=name, overrides=overrides, return_hydra_config=hydra)


@pytest.mark.parametrize("env", options("env"))
def test_env_configs_instantiate(env):
    if env.startswith("metaworld"):  # an extra with its own venv (make metaworld-deps)
        pytest.importorskip("metaworld", reason="Meta-World is an extra: make metaworld-deps")
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


def set_keys(node: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the values a config file sets itself, its defaults list aside."""
    paths = []
    for key, value in node.items():
        if prefix or key != "defaults":
            path = f"{prefix}{key}"
            paths += set_keys(value, f"{path}.") if isinstance(value, dict) and value else [path]
    return paths


def unknown_keys(file: Path, base) -> list[str]:
    """Keys that ``file`` sets and the composed ``base`` lacks: a typo, or a key no code reads."""
    tree = OmegaConf.to_container(base, resolve=False)  # "???" stays a value: the key exists

    def exists(path: str) -> bool:
        node = tree
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    return [k for k in set_keys(OmegaConf.to_container(OmegaConf.load(file))) if not exists(k)]


def choices_of(cfg, without: str) -> list[str]:
    """The group choices ``cfg`` was composed with, as overrides (``model/llm=smollm2``), but
    the choice of group ``without``."""
    return [
        f"~{group}" if choice is None else f"{group}={choice}"  # ~: the group left out
        for group, choice in cfg.hydra.runtime.choices.items()
        if not group.startswith("hydra/") and group != without
    ]


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_are_overrides_of_the_train_config(experiment):
    """Each key an experiment sets exists in the train config composed without it, with the
    group choices it makes (a group it selects may bring keys): it overrides, never adds."""
    cfg = make("train", [f"experiment={experiment}"], hydra=True)
    assert cfg.dataset.path and cfg.out
    base = make("train", choices_of(cfg, "experiment"))
    unknown = unknown_keys(CONFIGS / "experiment" / f"{experiment}.yaml", base)
    assert not unknown, f"experiment={experiment} sets keys the train config lacks: {unknown}"


def test_an_added_key_is_caught(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        "defaults:\n  - override /env: touch\ntrainer:\n  max_step: 10\noptm: {lr: 1}\n"
    )
    assert unknown_keys(typo, make("train", [])) == ["trainer.max_step", "optm.lr"]


@pytest.mark.parametrize("dataset", [d for d in options("dataset") if d != "default"])
def test_dataset_configs_compose_and_only_override(dataset):
    """`dataset=<name>` composes for training and evaluation on top of the data module's settings
    (default.yaml), agrees with itself (one image key per model camera, each one an env camera's:
    a store may hold more views than the model reads), and sets only keys that exist without it
    (it is global: it sets the env and model's too)."""
    cfg = make("train", [f"dataset={dataset}"], hydra=True)
    assert cfg.dataset._target_ == "vla.data.episode_data_module.EpisodeDataModule"
    assert cfg.dataset.path.endswith(".zarr")
    assert len(cfg.dataset.image_keys) == cfg.model.num_cameras
    cameras = tuple(cfg.env.cameras)
    assert set(cfg.dataset.image_keys) <= {image_key(c, cameras) for c in cameras}
    ev = make("eval", [f"dataset={dataset}", "checkpoint=some/dir"])
    assert ev.env == {**cfg.env, "split": "${split}"}  # vla-eval renders what the store holds
    base = make("train", choices_of(cfg, "dataset"))  # the same env, the default dataset
    unknown = unknown_keys(CONFIGS / "dataset" / f"{dataset}.yaml", base)
    assert not unknown, f"dataset={dataset} sets keys the train config lacks: {unknown}"


@pytest.mark.parametrize("policy", options("policy"))
def test_eval_config_composes_with_every_policy(policy):
    cfg = make("eval", [f"policy={policy}", "checkpoint=some/dir"])
    assert cfg.env.split == cfg.split and cfg.policy._target_
    if policy == "expert":
        assert len(instantiate(cfg.policy).policies) == cfg.num_envs


def test_unknown_experiment_is_a_clear_error():
    with pytest.raises(Exception, match="experiment"):
        make("train", ["experiment=does_not_exist"])
