"""The tokenizer of a pretrained Hugging Face LM, loaded from a local folder (never downloaded).

The folder holds the tokenizer files ``save_pretrained`` writes, or a GGUF file (llama.cpp's
format, which stores the vocabulary and merges as metadata beside the weights): ``gguf_file``
reads the tokenizer from it, and ``save_pretrained`` still writes ordinary tokenizer files, so a
checkpoint's ``tokenizer/`` folder reloads with ``HFTokenizer(path=...)`` and no GGUF.

Action tokens are added with ``add_tokens`` (as special tokens, so a typed instruction cannot be
split into them by accident), which gives them explicit ids: ``len(tokenizer)`` upward, or inside
the LM's padded embedding rows when it has spare ones (Qwen2 does).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from transformers import AutoTokenizer

from vla.hydra_config import target_config
from vla.text.text_tokenizer import TextTokenizer, check_text


class HFTokenizer(TextTokenizer):
    """``AutoTokenizer.from_pretrained(path, local_files_only=True)`` behind ``TextTokenizer``.

    Args:
        path: local folder holding the tokenizer files (usually the pretrained LM's folder).
        gguf_file: name of a GGUF file inside ``path`` to read the tokenizer from (needs
            ``gguf``), e.g. the LM's own ``SmolLM2-135M-Instruct.Q4_1.gguf``.
    """

    def __init__(self, path: str, gguf_file: str | None = None) -> None:
        if not isinstance(path, str | Path) or not Path(path).is_dir():
            raise FileNotFoundError(
                f"path={path!r} is not a folder: pass a local folder holding tokenizer files "
                "(nothing is downloaded); model/text_tokenizer=pretrained reads the LM's folder, "
                "so pair it with model/llm=pretrained"
            )
        kwargs = {}
        if gguf_file is None:
            self.config = target_config(self, path=str(path))
        else:
            full = Path(path) / gguf_file
            if not full.is_file():
                found = sorted(p.name for p in Path(path).glob("*.gguf"))
                raise FileNotFoundError(
                    f"gguf_file={gguf_file!r} is not in path={path!r} (GGUF files there: "
                    f"{found}): name one of them"
                )
            if importlib.util.find_spec("gguf") is None:
                raise ImportError(
                    f"gguf_file={gguf_file!r} needs the 'gguf' package: pip install 'vla[language]'"
                )
            # the resolved file, as for the LM (vla.causal_lm): no dependence on the working dir
            kwargs["gguf_file"] = str(full.resolve())
            self.config = target_config(self, path=str(path), gguf_file=gguf_file)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, **kwargs)
        tok = self.tokenizer
        eos = tok.eos_token_id if tok.eos_token_id is not None else tok.pad_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        if pad is None:
            raise ValueError(f"the tokenizer in path={path!r} has neither a pad nor an eos token")
        self._pad, self._eos = int(pad), int(eos)

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @property
    def pad_id(self) -> int:
        return self._pad

    @property
    def eos_id(self) -> int:
        return self._eos

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer(check_text(text), add_special_tokens=False)["input_ids"]
        # pretrained LMs saw BOS at the start of every text (PaliGemma puts it after the image)
        bos = self.tokenizer.bos_token_id
        return ([bos] if bos is not None else []) + list(ids)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def add_tokens(self, names: Sequence[str]) -> list[int]:
        self.tokenizer.add_tokens(list(names), special_tokens=True)  # existing ones are kept
        ids = self.tokenizer.convert_tokens_to_ids(list(names))
        return [int(i) for i in ids]

    def save_pretrained(self, directory: str | Path) -> None:
        """Ordinary tokenizer files (``tokenizer.json`` ...), whatever the source: a GGUF-read
        tokenizer reloads from them with ``HFTokenizer(path=directory)``."""
        self.tokenizer.save_pretrained(str(directory))
