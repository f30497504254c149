"""The text tokenizer interface the VLA relies on (instruction in, ids out, action tokens added).

Three implementations: ``ByteTokenizer`` (UTF-8 bytes), ``BPETokenizer`` (byte-level BPE fitted on
the dataset's instructions) and ``HFTokenizer`` (the tokenizer of a pretrained LM in a local
folder). Every one of them handles any string offline: there is no unknown token.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


class TextTokenizer(ABC):
    """Text <-> ids, plus explicit extra tokens (the action bins) appended to the vocabulary."""

    config: dict[str, Any]

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, added tokens included: the LM's embedding needs at least this many rows."""

    @property
    @abstractmethod
    def pad_id(self) -> int: ...

    @property
    @abstractmethod
    def eos_id(self) -> int: ...

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` without padding or end-of-sequence."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str: ...

    @abstractmethod
    def add_tokens(self, names: Sequence[str]) -> list[int]:
        """Add ``names`` as single tokens (idempotent) and return their ids, in order."""

    @abstractmethod
    def save_pretrained(self, directory: str | Path) -> None:
        """Write the files that ``cls(path=directory)`` reads back."""

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def fit(self, texts: Iterable[str]) -> None:  # noqa: B027 - fixed tokenizers learn nothing
        """Learn the vocabulary from the training split's text; fixed tokenizers ignore this."""


def check_text(text: object, what: str = "instruction") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}: {text!r}")
    return text
