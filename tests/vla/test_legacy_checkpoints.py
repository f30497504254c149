"""Checkpoints written before the prompt encoder (format versions 1-2) load and act as they did."""

import json
import shutil
from functools import partial
from pathlib import Path

import pytest
import torch

from vla.adapters import SpatialSoftmax
from vla.checkpoint import init_from_checkpoint, legacy_weight_name, load_checkpoint
from vla.prompt import PromptInputs

pytestmark = pytest.mark.usefixtures("single_thread")
FIXTURES = Path(__file__).parent / "fixtures" / "legacy_checkpoints"


def expected(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.expected.json").read_text())


def test_legacy_names_map_to_the_prompt_encoder():
    assert legacy_weight_name("obs.vision.stem.0.weight", 2) == "prompt.obs.vision.stem.0.weight"
    assert legacy_weight_name("prompt_end", 1) == "prompt.end"
    assert legacy_weight_name("speech.kind_embed", 2) == "prompt.speech.kind_embed"
    assert legacy_weight_name("text_adapter.net.0.weight", 2) == "prompt.text_adapter.net.0.weight"
    assert legacy_weight_name("llm.model.lm_head.weight", 2) == "llm.model.lm_head.weight"
    assert legacy_weight_name("action_queries", 2) == "action_queries"
    assert legacy_weight_name("obs.vision.x", 3) == "obs.vision.x"  # today's names stay


def test_a_format_2_checkpoint_predicts_what_it_predicted_when_saved(tmp_path, batch_factory):
    folder = tmp_path / "film_two_cameras"
    shutil.copytree(FIXTURES / "film_two_cameras", folder)  # as a user would have it
    assert json.loads((folder / "config.json").read_text())["format_version"] == 2
    model = load_checkpoint(folder)
    batch = batch_factory(model, seed=expected("film_two_cameras")["batch_seed"])
    bins = model.predict_action_bins(PromptInputs.from_batch(batch))
    assert bins.tolist() == expected("film_two_cameras")["bins"]
    assert model.obs.num_cameras == 2 and model.obs.film is not None


def test_a_legacy_speech_checkpoint_loads_and_hears_the_same(batch_factory):
    want = expected("speech_both")
    model = load_checkpoint(FIXTURES / "speech_both")
    batch = batch_factory(model, seed=want["batch_seed"])
    spec = want["audio"]
    g = torch.Generator().manual_seed(spec["generator_seed"])
    audio = torch.randn(*spec["shape"], generator=g) * spec["scale"]
    inputs = PromptInputs.from_batch(batch)
    spoken = PromptInputs(
        inputs.images, inputs.texts, inputs.state, audio, torch.tensor(spec["lengths"])
    )
    assert model.predict_action_bins(spoken).tolist() == want["bins"]


def test_init_from_a_legacy_checkpoint_copies_every_weight(vla_factory):
    fresh = vla_factory(
        film=True,
        num_cameras=2,
        adapter=partial(SpatialSoftmax, num_keypoints=4, num_tokens=2),
        seed=5,
    )
    init = init_from_checkpoint(fresh, FIXTURES / "film_two_cameras")
    assert not init["new"] and not init["unused"]  # every old name found its new place
    loaded = load_checkpoint(FIXTURES / "film_two_cameras")
    for name, p in fresh.named_parameters():
        assert torch.equal(p, dict(loaded.named_parameters())[name]), name
