"""Object colours and shapes, their words, and the held-out colour x shape split.

Split (documented in envs/README.md): colour ``i`` x shape ``j`` (indices into COLOURS and
SHAPES) is a *test* combination when ``(i + j) % 4 == 0``. That holds out 6 of the 24
combinations while every colour and every shape still appears as a target in both splits,
so the test split measures composition ("blue sphere" from "blue cube" + "red sphere"),
not a new word.
"""

from __future__ import annotations

# RGB in [0, 1]; chosen to stay distinct at 64x64 under the scene's flat lighting
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.12, 0.12),
    "green": (0.12, 0.68, 0.18),
    "blue": (0.12, 0.28, 0.92),
    "yellow": (0.95, 0.85, 0.12),
    "purple": (0.56, 0.18, 0.76),
    "orange": (1.0, 0.5, 0.05),
    "cyan": (0.1, 0.8, 0.86),
    "white": (0.96, 0.96, 0.96),
}
SHAPES: tuple[str, ...] = ("cube", "cylinder", "sphere")
# nouns an instruction may use for each shape (the first is the canonical name)
NOUNS: dict[str, tuple[str, ...]] = {
    "cube": ("cube", "block"),
    "cylinder": ("cylinder", "can"),
    "sphere": ("sphere", "ball"),
}
SPLITS: tuple[str, ...] = ("train", "test")
HALF_SIZE = 0.022  # every object is 4.4 cm across and 4.4 cm tall


def check_choice(field: str, value: str, choices) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{field}={value!r} is not valid; choose one of {sorted(choices)}")
    return value


def check_views(cameras, choices, image_size: int, render_size: int) -> tuple[str, ...]:
    """The env's cameras as a tuple, after checking them and the image and video sizes (every env
    of this package observes named cameras at a square size in [16, 512] pixels)."""
    if not isinstance(image_size, int) or not 16 <= image_size <= 512:
        raise ValueError(f"image_size={image_size!r} must be an int in [16, 512]")
    if not 16 <= render_size <= 512:
        raise ValueError(f"render_size={render_size!r} must be in [16, 512]")
    names = tuple(cameras)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"cameras={cameras!r} must be a non-empty list without repeats")
    for cam in names:
        check_choice("camera", cam, choices)
    return names


def is_test_combo(colour: str, shape: str) -> bool:
    """True when colour x shape is held out for the test split."""
    check_choice("colour", colour, COLOURS)
    check_choice("shape", shape, SHAPES)
    return (list(COLOURS).index(colour) + SHAPES.index(shape)) % 4 == 0


def combos(split: str) -> list[tuple[str, str]]:
    """Colour x shape combinations that may be the *target* of an instruction in ``split``."""
    check_choice("split", split, SPLITS)
    want_test = split == "test"
    return [(c, s) for c in COLOURS for s in SHAPES if is_test_combo(c, s) == want_test]
