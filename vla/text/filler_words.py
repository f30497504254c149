"""Filler words: training instructions with random words inserted, so new words read as noise.

A policy trained on a handful of sentence frames sees only a few dozen distinct words, and every
one of them is either informative (a colour, a shape) or always there ("the", "touch"). Nothing
teaches it what to do with a word it has never seen, so a user's "poke the red cube" moves the
pooled instruction somewhere no training instruction went (all-MiniLM-L6-v2's nearest word to
"poke" among the touch task's words is "ball", 0.33 cosine). Inserting words drawn from a large
vocabulary at random places in training instructions, with the action unchanged, teaches the
text path that a word outside the task's vocabulary carries nothing, whichever direction its
pretrained vector points in.

The words come from the pretrained text encoder's own vocabulary (all-MiniLM-L6-v2: 21,358
alphabetic words of 3+ letters), minus every word the training instructions use (the fitted
text tokenizer's one-token words), so a filler never names a task's colour or object. The number
inserted per instruction is Poisson-distributed with mean ``rate``, each at a uniformly drawn
gap between words (the ends included), from torch's random stream (seeded runs repeat).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from vla.text.text_encoder import TextEncoder

_WARM_BATCH = 2048  # filler words encoded per text-encoder forward when the cache is warmed


def vocabulary_words(vocabulary: Iterable[str], min_length: int = 3) -> list[str]:
    """The whole words of a tokenizer's vocabulary: alphabetic ASCII, ``min_length`` letters or
    more (word pieces such as ``##ing``, numbers and special tokens left out), sorted."""
    return sorted(w for w in vocabulary if w.isascii() and w.isalpha() and len(w) >= min_length)


class FillerWords:
    """``texts -> texts`` with random filler words inserted (training only: the caller decides).

    Args:
        words: the words to draw from (at least one).
        rate: mean number of words inserted per instruction (Poisson), > 0.
        exclude: a predicate; words for which it is true are never drawn (the task's own words).
    """

    def __init__(
        self,
        words: Sequence[str],
        rate: float,
        exclude: Callable[[str], bool] | None = None,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"filler rate={rate} must be > 0 (mean words per instruction)")
        kept = [w for w in dict.fromkeys(words) if not (exclude and exclude(w))]
        if not kept:
            raise ValueError("no filler words to draw from (the vocabulary is empty or excluded)")
        self.words = kept
        self.rate = float(rate)

    @classmethod
    def for_text_encoder(
        cls, encoder: TextEncoder, rate: float, exclude: Callable[[str], bool] | None = None
    ) -> FillerWords:
        """Fillers drawn from ``encoder``'s vocabulary (``vocabulary_words``). With a word-context
        encoder whose cache holds them all, each word's vector is computed now, in large batches
        (MiniLM's 21k words: seconds), rather than a few new words in every training step."""
        fillers = cls(vocabulary_words(encoder.tokenizer.get_vocab()), rate, exclude)
        if encoder.context == "word" and len(fillers) <= encoder.cache_size:
            for i in range(0, len(fillers), _WARM_BATCH):
                encoder.encode(fillers.words[i : i + _WARM_BATCH])
        return fillers

    def __len__(self) -> int:
        return len(self.words)

    def __call__(self, texts: Sequence[str]) -> list[str]:
        counts = torch.poisson(torch.full((len(texts),), self.rate)).long().tolist()
        out = []
        for text, n in zip(texts, counts, strict=True):
            tokens = text.split()
            for _ in range(n):
                word = self.words[int(torch.randint(len(self.words), ()))]
                tokens.insert(int(torch.randint(len(tokens) + 1, ())), word)
            out.append(" ".join(tokens))
        return out
