"""UTF-8 byte tokenizer: 256 byte ids, ``<pad>``, ``<eos>``, then added tokens (ByT5 / Perceiver).

No vocabulary to learn, so it works before any data exists and covers every string; the price is
sequence length (one token per byte), which costs compute in the LM (measured with
``benchmarks/model.py``: 24 instruction bytes cost as much as 16 image tokens). ``BPETokenizer`` is the default for that reason.
"""

import json
from collections.abc import Sequence
from pathlib import Path

from vla.hydra_config import target_config
from vla.text.text_tokenizer import TextTokenizer, check_text

_FILE = "byte_tokenizer.json"
_N_BYTES = 256


class ByteTokenizer(TextTokenizer):
    """Ids 0..255 are bytes, 256 is ``<pad>``, 257 is ``<eos>``, added tokens follow from 258.

    Args:
        path: folder written by ``save_pretrained`` (restores the added tokens), or None.
    """

    def __init__(self, path: str | None = None) -> None:
        self.config = target_config(self, path=None)
        self._added: list[str] = []
        if path is not None:
            file = Path(path) / _FILE
            if not file.is_file():
                raise FileNotFoundError(
                    f"path={path!r} has no {_FILE}: save one with save_pretrained"
                )
            self._added = list(json.loads(file.read_text())["added_tokens"])

    @property
    def vocab_size(self) -> int:
        return _N_BYTES + 2 + len(self._added)

    @property
    def pad_id(self) -> int:
        return _N_BYTES

    @property
    def eos_id(self) -> int:
        return _N_BYTES + 1

    def encode(self, text: str) -> list[int]:
        return list(check_text(text).encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        out, buf = [], bytearray()
        for i in ids:
            if i < _N_BYTES:
                buf.append(i)
                continue
            out.append(buf.decode("utf-8", errors="replace"))
            buf = bytearray()
            if i >= _N_BYTES + 2:
                out.append(self._added[i - _N_BYTES - 2])
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    def add_tokens(self, names: Sequence[str]) -> list[int]:
        for name in names:
            if name not in self._added:
                self._added.append(name)
        return [_N_BYTES + 2 + self._added.index(n) for n in names]

    def save_pretrained(self, directory: str | Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / _FILE).write_text(json.dumps({"added_tokens": self._added}))
