from copy import deepcopy
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from transformers import AutoModelForCausalLM, LlamaConfig

from vla.causal_lm import CausalLM


def save_tiny_llama(folder: Path, llama: dict, vocab_size: int = 300) -> None:
    torch.manual_seed(3)
    config = LlamaConfig(**{**llama, "vocab_size": vocab_size})
    AutoModelForCausalLM.from_config(config).save_pretrained(str(folder))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_build_from_config_and_resize(arch: str, llm_configs: dict) -> None:
    lm = CausalLM(config=llm_configs[arch])
    assert lm.hidden_size == 32
    lm.resize(100)
    assert lm.vocab_size == 100 and lm.model.get_output_embeddings().weight.shape[0] == 100
    ids = torch.tensor([[1, 2, 99]])
    mask = torch.ones(1, 3, dtype=torch.long)
    hidden, cache = lm(lm.embed(ids), mask, torch.arange(3)[None])
    assert hidden.shape == (1, 3, 32) and cache is None
    weight, _ = lm.output_rows(torch.tensor([5, 7]))
    assert weight.shape == (2, 32)
    rebuilt = instantiate(lm.export_config())
    assert type(rebuilt.model) is type(lm.model)


def test_compiled_training_keeps_the_rotary_table_eager_in_copies_too(llm_configs: dict) -> None:
    lm = CausalLM(config=llm_configs["llama"]).train()
    ids, mask, pos = torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.long), torch.arange(3)
    eager, _ = lm(lm.embed(ids), mask, pos[None])
    lm.compile_training(backend="eager")  # dynamo traces; the eager backend skips inductor's build
    rotary = lm.body.rotary_emb
    assert rotary.forward.__self__ is rotary  # the inlined sin / cos stay out of the graph
    copy = deepcopy(lm)
    assert copy.body.rotary_emb.forward.__self__ is copy.body.rotary_emb
    compiled, _ = lm(lm.embed(ids), mask, pos[None])
    assert torch.allclose(compiled, eager, atol=1e-6)
    assert torch.allclose(copy(copy.embed(ids), mask, pos[None])[0], eager, atol=1e-6)


def test_load_local_pretrained_folder(tmp_path: Path, llm_configs: dict) -> None:
    save_tiny_llama(tmp_path, llm_configs["llama"])
    source = AutoModelForCausalLM.from_pretrained(str(tmp_path))
    lm = CausalLM(path=str(tmp_path))
    assert lm.vocab_size == 300
    for name, value in source.state_dict().items():
        assert torch.equal(lm.model.state_dict()[name], value), name
    assert next(lm.parameters()).dtype == torch.float32
    node = lm.export_config()  # rebuilds the architecture without the folder
    assert node["path"] is None and node["config"]["vocab_size"] == 300
    assert instantiate(node).vocab_size == 300


def test_bad_arguments_are_named(tmp_path: Path, llm_configs: dict) -> None:
    with pytest.raises(ValueError, match="exactly one of config="):
        CausalLM()
    with pytest.raises(ValueError, match="exactly one of config="):
        CausalLM(config=llm_configs["llama"], path=str(tmp_path))
    with pytest.raises(ValueError, match="model_type"):
        CausalLM(config={"hidden_size": 8})
    with pytest.raises(FileNotFoundError, match="no config.json"):
        CausalLM(path=str(tmp_path))
