"""Filler words: random vocabulary words inserted into training instructions only."""

import pytest
import torch

from tests.vla.test_text_encoder import save_tiny_bert, word_context_vla
from vla.checkpoint import load_checkpoint, save_checkpoint
from vla.text.filler_words import FillerWords, vocabulary_words

pytestmark = pytest.mark.usefixtures("single_thread")


def test_vocabulary_words_keep_whole_alphabetic_words():
    vocab = {"[CLS]": 0, "##ing": 1, "red": 2, "at": 3, "zebra": 4, "1999": 5, "café": 6}
    assert vocabulary_words(vocab) == ["red", "zebra"]


def test_fillers_insert_poisson_many_words_and_keep_the_instruction_in_order():
    fillers = FillerWords(["alpha", "beta", "gamma", "red"], rate=1.0, exclude=lambda w: w == "red")
    assert fillers.words == ["alpha", "beta", "gamma"]
    torch.manual_seed(0)
    text = "touch the red cube"
    out = fillers([text] * 2000)
    added = torch.tensor([len(o.split()) - 4 for o in out], dtype=torch.float)
    assert 0.9 < added.mean() < 1.1 and 0.9 < added.var() < 1.1  # Poisson(1)
    assert (added == 0).float().mean() > 0.3  # about e^-1 unchanged
    for o in out:
        kept = [w for w in o.split() if w not in fillers.words]
        assert kept == text.split()  # only fillers were added, the words kept their order
    starts = sum(o.split()[0] in fillers.words for o in out)
    ends = sum(o.split()[-1] in fillers.words for o in out)
    assert starts > 50 and ends > 50  # any gap, the ends included
    torch.manual_seed(0)
    assert fillers([text] * 2000) == out  # seeded: the same draws


def test_fillers_bad_settings():
    with pytest.raises(ValueError, match="rate=0"):
        FillerWords(["alpha"], rate=0)
    with pytest.raises(ValueError, match="no filler words"):
        FillerWords(["red"], rate=1.0, exclude=lambda w: True)


def test_a_vla_inserts_fillers_in_training_only(tmp_path, vla_factory, batch_factory):
    model = word_context_vla(vla_factory, save_tiny_bert(tmp_path / "bert"), filler_words=2.0)
    prompt = model.prompt
    # the tiny vocabulary's whole words less the training ones: what fillers are drawn from
    torch.manual_seed(0)
    filled = prompt.fillers(["touch the red cube"] * 200)
    assert set(prompt._fillers.words) == {"poke", "green", "block", "sphere", "and"}
    assert any(len(t.split()) > 4 for t in filled)
    assert all(w in model.text_encoder._cache for w in prompt._fillers.words)  # encoded at once

    batch = batch_factory(model)
    seen = []
    encode = model.text_encoder.forward
    model.text_encoder.forward = lambda texts: (seen.append(list(texts)), encode(texts))[1]
    model.train()
    model(batch)["loss"].backward()
    assert seen[-1] != list(batch["instruction"])  # training: fillers inserted (rate 2)
    model.eval()
    with torch.no_grad():
        model(batch)
    assert seen[-1] == list(batch["instruction"])  # evaluation reads the instruction as given
    model.text_encoder.forward = encode
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "ckpt"))
    assert loaded.prompt.filler_words == 2.0


def test_fillers_need_a_text_encoder(vla_factory):
    with pytest.raises(ValueError, match="filler_words draws its words"):
        vla_factory(filler_words=1.0)
    with pytest.raises(ValueError, match="filler_words=-1"):
        vla_factory(filler_words=-1.0)
