"""Byte-level BPE fitted on the dataset's instructions, with a fixed vocabulary budget (GPT-2 style).

Why this is the default for from-scratch LMs: the LM's sequence length dominates training compute
on a CPU (``benchmarks/model.py``), and an instruction like "touch the red cube" is 18 byte tokens but 4
BPE tokens once the merges are learned from the training split; a word that is one token is also
one embedding to ground rather than a spelling to compose. The base alphabet is all 256 bytes
(``ByteLevel``), so a word never seen in training still encodes, as bytes: there is no unknown token.

The vocabulary budget ``vocab_size`` is fixed at construction, so the LM can be sized before the
tokenizer is fitted; before ``fit`` the tokenizer is plain bytes. Added tokens (the action bins) get
ids from ``vocab_size`` upward and keep them whatever ``fit`` learns. Fitting changes the ids of
ordinary text, so it is allowed once, before training (``fit`` refuses a second time).
"""

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from vla.hydra_config import target_config
from vla.text.text_tokenizer import TextTokenizer, check_text

_SPECIALS = ["<pad>", "<eos>"]
_ADDED_FILE = "added_tokens.json"
_TOKENIZER_FILE = "tokenizer.json"


class BPETokenizer(TextTokenizer):
    """Byte-level BPE with ``<pad>`` = 0, ``<eos>`` = 1, bytes, learned merges, then added tokens.

    Args:
        vocab_size: budget for specials + 256 bytes + merges (>= 258); added tokens come on top.
        lowercase: fold case before tokenizing: commands are case-insensitive, and folding halves
            the number of word tokens the model must learn to ground.
        path: folder written by ``save_pretrained`` (a fitted tokenizer), or None for bytes only.
    """

    def __init__(self, vocab_size: int = 512, lowercase: bool = True, path: str | None = None):
        base = len(_SPECIALS) + 256
        if vocab_size < base:
            raise ValueError(f"vocab_size={vocab_size} must be >= {base} (specials + 256 bytes)")
        self._budget = vocab_size
        self._lowercase = lowercase
        self.config = target_config(self, vocab_size=vocab_size, lowercase=lowercase, path=None)
        self._added: dict[str, int] = {}
        self.fitted = False
        if path is None:
            alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
            vocab = {tok: i for i, tok in enumerate(_SPECIALS + alphabet)}
            self._tok = self._pipeline(Tokenizer(models.BPE(vocab=vocab, merges=[])))
            self._tok.add_special_tokens(_SPECIALS)  # already ids 0 and 1: marks them special
        else:
            self._load(Path(path))

    def _pipeline(self, tok: Tokenizer) -> Tokenizer:
        if self._lowercase:
            tok.normalizer = normalizers.Lowercase()
        # prefix space: "cube" is the same token at the start of a sentence and after a space
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        return tok

    def _load(self, path: Path) -> None:
        for name in (_TOKENIZER_FILE, _ADDED_FILE):
            if not (path / name).is_file():
                raise FileNotFoundError(f"path={str(path)!r} has no {name}: use save_pretrained")
        self._tok = Tokenizer.from_file(str(path / _TOKENIZER_FILE))
        meta = json.loads((path / _ADDED_FILE).read_text())
        if meta["vocab_size"] != self._budget:
            raise ValueError(
                f"path={str(path)!r} holds a tokenizer with vocab_size={meta['vocab_size']}, "
                f"but vocab_size={self._budget} was configured: use the saved value"
            )
        self._added = {name: i for i, name in enumerate(meta["added_tokens"])}
        self.fitted = bool(meta["fitted"])

    @property
    def vocab_size(self) -> int:
        return self._budget + len(self._added)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def eos_id(self) -> int:
        return 1

    def fit(self, texts: Iterable[str]) -> None:
        """Learn merges from ``texts`` (the training split's instructions); allowed once."""
        if self.fitted:
            raise RuntimeError(
                "this BPETokenizer is already fitted; refitting would change the ids a trained "
                "model relies on. Build a new tokenizer to fit on other text."
            )
        texts = [check_text(t, "text to fit on") for t in texts]
        if not texts:
            raise ValueError("fit() got no text: pass the training split's instructions")
        trainer = trainers.BpeTrainer(
            vocab_size=self._budget,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=_SPECIALS,
            show_progress=False,
        )
        tok = self._pipeline(Tokenizer(models.BPE()))
        tok.train_from_iterator(texts, trainer)
        self._tok = tok
        self.fitted = True

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(check_text(text)).ids

    def decode(self, ids: Sequence[int]) -> str:
        names = {i: n for n, i in self._added.items()}
        out, run = [], []
        for i in ids:
            if i < self._budget:
                run.append(i)
                continue
            out.append(self._tok.decode(run, skip_special_tokens=True))
            run = []
            out.append(names[i - self._budget])
        out.append(self._tok.decode(run, skip_special_tokens=True))
        return "".join(out).strip()

    def add_tokens(self, names: Sequence[str]) -> list[int]:
        for name in names:
            self._added.setdefault(name, len(self._added))
        return [self._budget + self._added[n] for n in names]

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._tok.save(str(directory / _TOKENIZER_FILE))
        meta = {
            "vocab_size": self._budget,
            "added_tokens": list(self._added),
            "fitted": self.fitted,
        }
        (directory / _ADDED_FILE).write_text(json.dumps(meta))
