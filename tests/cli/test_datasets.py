"""Every store in datasets/ has a card and a recipe that composes into the collector's config
and agrees with the dataset config that training and evaluation select."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import vla  # noqa: F401 -- registers the resolvers the train config uses

ROOT = Path(__file__).resolve().parents[2]
CONFIGS, DATASETS = ROOT / "configs", ROOT / "datasets"
NAMES = sorted(p.name for p in DATASETS.iterdir() if p.is_dir())
# env settings a recipe may add for collection only (evaluation runs the env without them)
COLLECTION_ONLY = {"steps_after_success", "single_attribute"}


def recipe(name: str):
    """``vla-collect --config-dir datasets/<name> --config-name recipe``, composed."""
    with initialize_config_dir(config_dir=str(DATASETS / name), version_base="1.3"):
        return compose("recipe", [f"hydra.searchpath=[file://{CONFIGS}]"])


def train(name: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", [f"dataset={name}"])


def test_every_store_has_a_folder_and_every_folder_a_dataset_config():
    configs = {p.stem for p in (CONFIGS / "dataset").glob("*.yaml")} - {"default"}
    assert NAMES and set(NAMES) == configs


@pytest.mark.parametrize("name", NAMES)
def test_store_has_a_card_and_a_recipe(name):
    folder = DATASETS / name
    assert (folder / "README.md").is_file(), f"datasets/{name}/README.md (the card) is missing"
    assert (folder / "recipe.yaml").is_file(), f"datasets/{name}/recipe.yaml is missing"
    card = (folder / "README.md").read_text()
    assert f"make data-{name}" in card and train(name).dataset.path in card


@pytest.mark.parametrize("name", NAMES)
def test_recipe_collects_what_the_dataset_config_reads(name):
    cfg, data = recipe(name), train(name)
    assert cfg.out == data.dataset.path
    collected = {k: v for k, v in cfg.env.items() if k not in COLLECTION_ONLY}
    assert collected == dict(data.env)  # the same task, cameras and image size
    assert cfg.episodes > 0 and cfg.workers >= 1 and cfg.noise >= 0
