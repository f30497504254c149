import json

import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

from vla import keys
from vla.action_tokenizer import ActionTokenizer
from vla.adapters import PerceiverResampler
from vla.causal_lm import CausalLM
from vla.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint, save_checkpoint
from vla.model import VLA
from vla.prompt import PromptInputs
from vla.text import BPETokenizer, HFTokenizer

pytestmark = pytest.mark.usefixtures("single_thread")
TEXTS = ["touch the red cube", "go", "reach the blue ball please"]


def predict(model: VLA, batch: dict) -> torch.Tensor:
    return model.predict_actions(
        PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], batch.get(keys.STATE))
    )


def trained_a_little(model: VLA, batch: dict) -> VLA:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # move the weights (BatchNorm statistics too) away from their init
        opt.zero_grad()
        model(batch)["loss"].backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize(
    ("decoding", "llm", "slots"),
    [
        ("parallel", "llama", "token"),
        ("parallel", "llama", "step"),
        ("autoregressive", "gpt2", "token"),
    ],
)
def test_save_load_predicts_identical_actions(
    decoding, llm, slots, tmp_path, vla_factory, batch_factory
):
    tok = BPETokenizer(vocab_size=300)
    tok.fit(TEXTS * 3)
    model = vla_factory(
        llm=llm,
        decoding=decoding,
        text_tokenizer=tok,
        adapter=PerceiverResampler,
        action_slots=slots,
    )
    batch = batch_factory(model, b=3)
    model = trained_a_little(model, batch)
    before = predict(model, batch)
    path = save_checkpoint(model, tmp_path / "ckpt", norm_stats={"action": {"mean": [0.1, 0.2]}})
    loaded = load_checkpoint(path)
    assert not loaded.training
    assert torch.equal(predict(loaded, batch), before)
    assert loaded.num_slots == model.num_slots  # the slot layout travels in config.json
    assert torch.equal(loaded.action_tokenizer.token_ids, model.action_tokenizer.token_ids)
    assert loaded.text_tokenizer.encode("touch the red cube") == tok.encode("touch the red cube")
    files = {p.name for p in path.rglob("*") if p.is_file()}
    assert not any(f.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt")) for f in files)  # no pickle
    stats = json.loads((path / "normalization.json").read_text())
    assert stats["action"]["q01"] == [-1.0, -1.0] and stats["action"]["mean"] == [0.1, 0.2]
    assert stats["state"]["q99"] == [1.0, 1.0, 1.0]
    bins = json.loads((path / "action_tokenizer.json").read_text())
    assert bins["token_ids"] == model.action_tokenizer.token_ids.tolist()


def test_overwrite_is_atomic_and_leaves_no_temp_folders(tmp_path, vla_factory, batch_factory):
    model = vla_factory()
    batch = batch_factory(model)
    save_checkpoint(model, tmp_path / "ckpt")
    model = trained_a_little(model, batch)
    save_checkpoint(model, tmp_path / "ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert torch.equal(predict(load_checkpoint(tmp_path / "ckpt"), batch), predict(model, batch))


def test_model_from_a_local_pretrained_lm_survives_the_folder(
    tmp_path, llm_configs, vla_factory, batch_factory
):
    lm_dir = tmp_path / "tiny-llama"
    base = BPETokenizer(vocab_size=300, lowercase=False)
    base.fit(TEXTS)
    inner: Tokenizer = base._tok
    PreTrainedTokenizerFast(
        tokenizer_object=inner, eos_token="<eos>", pad_token="<pad>"
    ).save_pretrained(str(lm_dir))
    torch.manual_seed(5)
    config = LlamaConfig(**{**llm_configs["llama"], "vocab_size": 300})
    AutoModelForCausalLM.from_config(config).save_pretrained(str(lm_dir))

    model = VLA(
        vision=vla_factory().obs.vision,
        adapter=PerceiverResampler,
        llm=CausalLM(path=str(lm_dir)),
        text_tokenizer=HFTokenizer(path=str(lm_dir)),
        action_tokenizer=ActionTokenizer(low=[-1.0, -1.0], high=[2.0, 2.0], n_bins=16),
        action_horizon=2,
        decoding="autoregressive",
    ).eval()
    n_text = len(PreTrainedTokenizerFast.from_pretrained(str(lm_dir)))  # 289 < the LM's 300 rows
    assert model.action_tokenizer.token_ids.tolist() == list(range(n_text, n_text + 16))
    assert model.llm.vocab_size == max(300, n_text + 16)  # spare rows reused, then grown
    batch = batch_factory(model)
    before = predict(model, batch)
    save_checkpoint(model, tmp_path / "ckpt")
    for f in lm_dir.iterdir():  # the original folder is gone
        f.unlink()
    lm_dir.rmdir()
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert torch.equal(predict(loaded, batch), before)


def test_incomplete_or_foreign_checkpoints_are_refused(tmp_path, vla_factory):
    model = vla_factory()
    path = save_checkpoint(model, tmp_path / "ckpt")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_checkpoint(tmp_path / "nothing")
    (path / WEIGHTS_FILE).rename(tmp_path / "weights")
    with pytest.raises(FileNotFoundError, match=r"incomplete: missing \['model.safetensors'\]"):
        load_checkpoint(path)
    (tmp_path / "weights").rename(path / WEIGHTS_FILE)
    meta = json.loads((path / CONFIG_FILE).read_text())
    (path / CONFIG_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        load_checkpoint(path)
    (path / CONFIG_FILE).write_text(json.dumps(meta))
    other = save_checkpoint(vla_factory(action_horizon=3), tmp_path / "other")
    (other / WEIGHTS_FILE).replace(path / WEIGHTS_FILE)  # weights of another architecture
    with pytest.raises(ValueError, match="model.safetensors: .* bytes but the checkpoint recorded"):
        load_checkpoint(path)  # the integrity record catches the swap first
    del meta["files"]  # a format-1 folder (no record): the shape check still refuses it
    (path / CONFIG_FILE).write_text(json.dumps({**meta, "format_version": 1}))
    with pytest.raises(ValueError, match="do not"):
        load_checkpoint(path)
