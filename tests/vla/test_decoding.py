"""Decoding: the KV cache, constrained choice among action bins only, and drawn bins."""

import pytest
import torch

from vla import keys
from vla.decoding import pick, positions
from vla.prompt import PromptInputs

pytestmark = pytest.mark.usefixtures("single_thread")


def test_kv_cache_decoding_equals_full_recompute(vla_factory, batch_factory) -> None:
    model = vla_factory(decoding="autoregressive", action_horizon=3, n_bins=64).eval()
    batch = batch_factory(model, b=4)
    args = (batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
    cached = model.predict_action_bins(PromptInputs(*args), use_cache=True)
    full = model.predict_action_bins(PromptInputs(*args), use_cache=False)
    assert torch.equal(cached, full)
    # and teacher-forced logits of the same tokens agree with the step-by-step choice
    with torch.no_grad():
        prefix, mask = model.prompt(PromptInputs(*args), cached.shape[1])
        logits = model.action_logits(prefix, mask, cached)
    assert torch.equal(logits.argmax(-1), cached)


@pytest.mark.parametrize("decoding", ["parallel", "autoregressive"])
def test_constrained_decoding_never_emits_a_text_token(decoding, vla_factory, batch_factory):
    model = vla_factory(decoding=decoding).eval()
    head = model.llm.model.get_output_embeddings()
    action_ids = model.action_tokenizer.token_ids
    with torch.no_grad():  # make every text token far more likely than any action token
        text = torch.ones(head.weight.shape[0], dtype=torch.bool)
        text[action_ids] = False
        head.weight[text] *= 50
        head.weight[action_ids] *= 0.01
    batch = batch_factory(model, b=4)
    args = (batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
    with torch.no_grad():
        prefix, mask = model.prompt(PromptInputs(*args), 0)
        hidden, _ = model.llm(prefix, mask, positions(mask))
        free_choice = model.llm.logits(hidden[:, -1]).argmax(-1)
    assert not torch.isin(free_choice, action_ids).any()  # unconstrained would pick text
    tokens = model.action_tokenizer.bins_to_tokens(model.predict_action_bins(PromptInputs(*args)))
    assert torch.isin(tokens, action_ids).all()


def test_pick_draws_from_the_softmax_and_is_the_argmax_at_temperature_zero() -> None:
    scores = torch.tensor([[0.0, 2.0, -float("inf")], [1.0, 0.0, 0.0]])  # (2, 3)
    assert pick(scores).tolist() == [1, 0]
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([pick(scores, 1.0, gen) for _ in range(4000)])  # (4000, 2)
    # never a choice of probability 0 (a -inf score); the rest as often as softmax says
    assert not (draws[:, 0] == 2).any()
    freq = (draws[:, 0] == 1).float().mean().item()
    assert abs(freq - torch.softmax(torch.tensor([0.0, 2.0]), 0)[1].item()) < 0.03
    # a colder draw is nearer the argmax; the same seed gives the same draws
    cold = torch.stack([pick(scores, 0.2, gen) for _ in range(500)])
    assert (cold[:, 0] == 1).float().mean() > 0.99
    again = [pick(scores, 1.0, torch.Generator().manual_seed(7)).tolist() for _ in range(2)]
    assert again[0] == again[1]


@pytest.mark.parametrize("decoding", ["parallel", "autoregressive"])
def test_drawn_actions_are_action_bins_reproducible_by_seed(decoding, vla_factory, batch_factory):
    model = vla_factory(decoding=decoding, n_bins=16).eval()
    batch = batch_factory(model, b=3)
    inputs = PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])

    def drawn(seed: int) -> torch.Tensor:
        return model.predict_action_bins(
            inputs, temperature=1.0, generator=torch.Generator().manual_seed(seed)
        )

    a, b, c = drawn(0), drawn(0), drawn(1)
    assert torch.equal(a, b) and not torch.equal(a, c)  # an untrained model is near uniform
    assert a.shape == (3, model.num_action_tokens) and a.min() >= 0 and a.max() < 16
    assert torch.equal(
        model.predict_action_bins(inputs, temperature=0.0), model.predict_action_bins(inputs)
    )


@pytest.mark.parametrize("temperature", [-0.5, float("nan"), float("inf")])
def test_a_bad_temperature_is_refused(temperature, vla_factory, batch_factory) -> None:
    model = vla_factory().eval()
    batch = batch_factory(model, b=1)
    inputs = PromptInputs(batch[keys.IMAGE], batch[keys.INSTRUCTION], batch[keys.STATE])
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        model.predict_actions(inputs, temperature=temperature)
