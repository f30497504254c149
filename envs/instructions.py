"""Instruction generator: paraphrase templates per task, with disjoint train / test templates.

The test split never sees a train template (and vice versa), so a policy evaluated on
``split="test"`` must follow wordings it was not trained on. Noun synonyms ("cube"/"block")
and relation phrasings are shared by both splits: the held-out part is the sentence frame.
"""

from __future__ import annotations

import numpy as np

from envs.palette import NOUNS, SPLITS, check_choice

# {obj} = "<colour> <noun>", {place} = "<colour> pad" | "bowl", {prep} = in / on,
# {noun} = the referent's noun (relation task), {rel} = relation phrase, {anchor} = "<colour> <noun>"
TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "touch": {
        "train": (
            "touch the {obj}",
            "tap the {obj}",
            "put your gripper on the {obj}",
            "reach the {obj} and touch it",
            "go touch the {obj}",
            "make contact with the {obj}",
        ),
        "test": ("poke the {obj}", "move over to the {obj} and tap it"),
    },
    "lift": {
        "train": (
            "pick up the {obj}",
            "lift the {obj}",
            "grab the {obj} and raise it",
            "raise the {obj} off the table",
            "grasp the {obj} and lift it up",
            "take the {obj} and hold it up",
        ),
        "test": ("hoist the {obj}", "pick the {obj} up off the table"),
    },
    "push": {
        "train": (
            "push the {obj} onto the {place}",
            "slide the {obj} to the {place}",
            "shove the {obj} onto the {place}",
            "move the {obj} onto the {place} by pushing it",
            "nudge the {obj} onto the {place}",
            "push the {obj} until it is on the {place}",
        ),
        "test": (
            "drive the {obj} onto the {place}",
            "get the {obj} onto the {place} without lifting it",
        ),
    },
    "pick_place": {
        "train": (
            "put the {obj} {prep} the {place}",
            "place the {obj} {prep} the {place}",
            "move the {obj} {prep} the {place}",
            "pick up the {obj} and drop it {prep} the {place}",
            "set the {obj} down {prep} the {place}",
            "transfer the {obj} {prep} the {place}",
        ),
        "test": (
            "stow the {obj} {prep} the {place}",
            "carry the {obj} and leave it {prep} the {place}",
        ),
    },
    "relation": {
        "train": (
            "touch the {noun} {rel} the {anchor}",
            "tap the {noun} {rel} the {anchor}",
            "put your gripper on the {noun} {rel} the {anchor}",
            "find the {noun} {rel} the {anchor} and touch it",
            "go to the {noun} {rel} the {anchor}",
            "reach for the {noun} {rel} the {anchor}",
        ),
        "test": ("poke the {noun} {rel} the {anchor}", "the {noun} {rel} the {anchor}: touch it"),
    },
    # the referent is never named: it is the object the light shone under (envs/tasks/recall.py)
    "recall": {
        "train": (
            "touch the object that lit up",
            "tap the one that lit up",
            "touch the object that glowed",
            "put your gripper on the object that was highlighted",
            "go to the one that lit up and touch it",
            "make contact with the object that glowed",
        ),
        "test": ("poke the thing that flashed", "the object that lit up at the start: tap it"),
    },
}

# relations are from the front camera's point of view: left = -x, in front = -y
RELATIONS: dict[str, tuple[str, ...]] = {
    "left": ("left of", "to the left of"),
    "right": ("right of", "to the right of"),
    "front": ("in front of",),
    "behind": ("behind",),
}
PLACE_NOUNS = {"pad": ("pad", "mat"), "bowl": ("bowl",)}
PREPOSITIONS = {"pad": ("on", "onto"), "bowl": ("in", "into")}
# how an instruction names its target object: by colour and shape ("the red cube"), or, where the
# scene makes one attribute enough, by it alone ("the red one", "the cube"); see
# ``Task.single_attribute``
NAMINGS: tuple[str, ...] = ("both", "colour", "shape")
GENERIC_NOUNS = ("object", "one")  # stands in for the shape when only the colour is named


class InstructionGenerator:
    """Turns an episode's referents into a sentence from ``task``'s templates for ``split``."""

    def __init__(self, task: str, split: str = "train"):
        self.task = check_choice("task", task, TEMPLATES)
        self.split = check_choice("split", split, SPLITS)
        self.templates = TEMPLATES[task][split]

    def __call__(
        self,
        rng: np.random.Generator,
        colour: str,
        shape: str,
        place: tuple[str, str | None] | None = None,
        relation: str | None = None,
        anchor: tuple[str, str] | None = None,
        naming: str = "both",
    ) -> str:
        """``place`` is (kind, colour or None); ``anchor`` is (colour, shape) for relations;
        ``naming`` (one of :data:`NAMINGS`) which of the target's attributes ``{obj}`` says."""
        check_choice("naming", naming, NAMINGS)
        template = self.templates[rng.integers(len(self.templates))]
        noun = _pick(rng, NOUNS[shape])
        obj = f"{colour} {noun}"
        if naming == "colour":  # drawn only then: "both" episodes keep their random stream
            obj = f"{colour} {_pick(rng, GENERIC_NOUNS)}"
        elif naming == "shape":
            obj = noun
        slots = {"obj": obj, "noun": noun}
        if "{place}" in template:
            if place is None:
                raise ValueError(f"task {self.task!r} needs place=(kind, colour)")
            kind, place_colour = place
            place_noun = _pick(rng, PLACE_NOUNS[kind])
            slots["place"] = f"{place_colour} {place_noun}" if place_colour else place_noun
            slots["prep"] = _pick(rng, PREPOSITIONS[kind])
        if "{rel}" in template:
            if relation is None or anchor is None:
                raise ValueError(f"task {self.task!r} needs relation= and anchor=(colour, shape)")
            check_choice("relation", relation, RELATIONS)
            slots["rel"] = _pick(rng, RELATIONS[relation])
            slots["anchor"] = f"{anchor[0]} {_pick(rng, NOUNS[anchor[1]])}"
        return template.format(**slots)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[rng.integers(len(options))]
