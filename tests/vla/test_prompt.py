"""The prompt's instruction span: word dropout hides tokens in training only, never a whole one."""

import pytest
import torch

from vla.prompt import drop_words

pytestmark = pytest.mark.usefixtures("single_thread")


def test_drop_words_hides_real_tokens_only_and_keeps_one_per_instruction():
    torch.manual_seed(0)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]] * 200)  # (600, 5)
    dropped = drop_words(mask, 0.5)
    assert (dropped <= mask).all()  # padding never becomes a token
    assert (dropped[mask.sum(1) > 0].sum(1) >= 1).all()  # every instruction keeps a word
    assert (dropped[2::3] == 0).all()  # an empty instruction stays empty
    kept = dropped[1::3].float().mean().item()
    assert 0.45 < kept < 0.6  # ~half dropped (a little more kept: the one-word floor)
    assert torch.equal(drop_words(mask, 0.0), mask)


def test_text_dropout_acts_in_training_only(vla_factory):
    model = vla_factory(text_dropout=0.5)
    texts = ["reach the blue ball please"] * 64
    torch.manual_seed(0)
    _, train_mask = model.train().prompt.embed_text(texts)
    _, eval_mask = model.eval().prompt.embed_text(texts)
    assert train_mask.sum() < eval_mask.sum()
    assert (eval_mask == 1).all()
    with pytest.raises(ValueError, match="text_dropout=1.0 must be in"):
        vla_factory(text_dropout=1.0)
