import re

import numpy as np
import pytest

from envs.instructions import TEMPLATES, InstructionGenerator
from envs.palette import COLOURS, SHAPES, combos, is_test_combo


def test_combo_splits_are_disjoint_and_cover_everything():
    train, test = set(combos("train")), set(combos("test"))
    assert not train & test
    assert train | test == {(c, s) for c in COLOURS for s in SHAPES}
    # every colour and every shape is a target in train, so test measures composition only
    assert {c for c, _ in train} == set(COLOURS) and {s for _, s in train} == set(SHAPES)
    assert all(is_test_combo(c, s) for c, s in test)


@pytest.mark.parametrize("task", TEMPLATES)
def test_templates_are_disjoint_and_plentiful(task):
    train, test = TEMPLATES[task]["train"], TEMPLATES[task]["test"]
    assert len(train) + len(test) >= 5 and len(train) >= 5 and len(test) >= 1
    assert not set(train) & set(test)


def _as_regex(template: str) -> re.Pattern:
    parts = re.split(r"\{\w+\}", template)
    return re.compile("^" + "(.+)".join(re.escape(p) for p in parts) + "$")


@pytest.mark.parametrize("task", TEMPLATES)
def test_generated_test_sentences_never_use_a_train_template(task):
    gen = InstructionGenerator(task, "test")
    train_patterns = [_as_regex(t) for t in TEMPLATES[task]["train"]]
    rng = np.random.default_rng(0)
    for _ in range(50):
        text = gen(
            rng, "red", "cube", place=("pad", "blue"), relation="left", anchor=("green", "sphere")
        )
        assert not any(p.match(text) for p in train_patterns), text
        assert "{" not in text


def test_generator_fills_every_slot():
    rng = np.random.default_rng(1)
    text = InstructionGenerator("pick_place", "train")(rng, "red", "cube", place=("bowl", None))
    assert "red" in text and ("cube" in text or "block" in text) and "bowl" in text


def test_generator_names_one_attribute_when_asked():
    gen = InstructionGenerator("touch", "train")
    by_colour = gen(np.random.default_rng(3), "red", "cube", naming="colour")
    assert "red" in by_colour and "cube" not in by_colour and "block" not in by_colour
    assert "red object" in by_colour or "red one" in by_colour
    by_shape = gen(np.random.default_rng(3), "red", "cube", naming="shape")
    assert "red" not in by_shape and ("cube" in by_shape or "block" in by_shape)
    # the default is unchanged by the option: the same draws, the same sentence
    assert gen(np.random.default_rng(3), "red", "cube") == gen(
        np.random.default_rng(3), "red", "cube", naming="both"
    )
    with pytest.raises(ValueError, match="naming='size' is not valid"):
        gen(np.random.default_rng(3), "red", "cube", naming="size")


def test_generator_rejects_unknown_task_and_split():
    with pytest.raises(ValueError, match="task='dance' is not valid"):
        InstructionGenerator("dance")
    with pytest.raises(ValueError, match="split='dev' is not valid"):
        InstructionGenerator("touch", "dev")
