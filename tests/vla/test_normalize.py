import pytest
import torch

from vla import keys
from vla.prompt import PromptInputs
from vla.text.normalize import normalize_instruction

pytestmark = pytest.mark.usefixtures("single_thread")


def test_what_a_person_types_meets_the_training_form():
    for typed in ("Touch the red cube.", "  touch  the RED cube ", "touch the red cube!",
                  "touch the red cube", "\ttouch the red\u00a0cube?"):  # fmt: skip
        assert normalize_instruction(typed) == "touch the red cube"
    assert normalize_instruction("the cube left of the ball: touch it") == (
        "the cube left of the ball: touch it"  # inner punctuation is words' business
    )
    assert normalize_instruction("") == "" and normalize_instruction(" . ") == ""
    with pytest.raises(TypeError, match="must be a str"):
        normalize_instruction(None)


def test_the_model_acts_the_same_on_either_form(vla_factory, batch_factory):
    model = vla_factory().eval()
    batch = batch_factory(model, b=2)
    plain = model.predict_actions(
        PromptInputs(batch[keys.IMAGE], ["touch the red cube", "go left"], batch[keys.STATE])
    )
    typed = model.predict_actions(
        PromptInputs(batch[keys.IMAGE], ["Touch the red cube.", "  Go LEFT! "], batch[keys.STATE])
    )
    assert torch.equal(plain, typed)
    loss = model({**batch, keys.INSTRUCTION: ["Touch the red cube.", "go"]})["loss"]
    same = model({**batch, keys.INSTRUCTION: ["touch the red cube", "go"]})["loss"]
    assert torch.equal(loss, same)
