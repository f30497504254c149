"""Instruction normalization: what a person types and what the training data says must meet.

Training instructions are lower case, single-spaced, without closing punctuation (the env's
templates; a foreign store is normalized the same way before the tokenizer is fitted), so
"  Touch the Red cube. " and "touch the red cube" must reach the model as the same tokens.
Questions and answers are not touched (their "?" is part of what co-training learned).
"""

from __future__ import annotations

import unicodedata

_OUTER = " .!?;,:"  # closing / opening punctuation a command may carry


def normalize_instruction(text: str) -> str:
    """Unicode NFKC, lower case, whitespace runs -> one space, outer punctuation dropped."""
    if not isinstance(text, str):
        raise TypeError(f"instruction must be a str, got {type(text).__name__}: {text!r}")
    folded = unicodedata.normalize("NFKC", text).lower()
    return " ".join(folded.split()).strip(_OUTER)
