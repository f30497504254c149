"""Which words of an instruction the fitted text tokenizer knows as one token, as ids.

A from-scratch tokenizer is fitted on the training instructions, so a word it holds as a single
token is (up to its vocabulary budget) a word seen in training; any other word spells out in
several pieces. ``vla.prompt``'s learned word embeddings read these ids beside a word-context
text encoder's pretrained vectors.
"""

from collections.abc import Sequence

import torch
from torch import Tensor

from vla.text.text_encoder import TextEncoder
from vla.text.text_tokenizer import TextTokenizer


class KnownWords:
    """``texts -> (B, L)`` ids of their words, left-padded with -1; -1 for an unknown word."""

    def __init__(self, tokenizer: TextTokenizer) -> None:
        self.tokenizer = tokenizer
        self._ids: dict[str, int] = {}  # word -> its one token id, or -1

    def id(self, word: str) -> int:
        """The tokenizer's id of ``word`` when it is one token, else -1 (cached)."""
        got = self._ids.get(word)
        if got is None:
            pieces = self.tokenizer.encode(word)
            got = pieces[0] if len(pieces) == 1 else -1
            self._ids[word] = got
        return got

    def __call__(self, texts: Sequence[str], longest: int) -> Tensor:
        """Ids ``(B, longest)`` of each text's words (``TextEncoder.words``), right-aligned like
        the word-context states."""
        ids = torch.full((len(texts), longest), -1, dtype=torch.long)  # (B, L)
        for row, text in enumerate(texts):
            word_ids = [self.id(w) for w in TextEncoder.words(text)]
            if word_ids:
                ids[row, longest - len(word_ids) :] = torch.tensor(word_ids)
        return ids
