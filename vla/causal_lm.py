"""Any Hugging Face causal LM, built from a config dict or loaded from a local pretrained folder.

The VLA talks to the LM only through this wrapper: ``embed`` ids, run the decoder body on
embeddings (``forward``, with an optional KV cache), and read output-embedding rows for a chosen set
of ids (``output_rows``: action logits are computed for the action tokens only, never the full
vocabulary at every position). The vocabulary size is derived, not configured: the VLA resizes the
embeddings to the text tokenizer plus the action tokens, so from-scratch configs leave
``vocab_size`` out.

Weights stay fp32 here; mixed precision (bf16 autocast on GPUs and on CPUs with bf16
instructions, ``vla.precision``) is the trainer's job.
"""

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import AutoConfig, AutoModelForCausalLM

from vla.hydra_config import target_config, to_plain

# from-scratch LMs are built with this many rows, then resized by the VLA
_PLACEHOLDER_VOCAB = 8


class CausalLM(nn.Module):
    """A ``transformers`` causal LM; exactly one of ``config`` and ``path``.

    Args:
        config: ``AutoConfig.for_model`` arguments, ``model_type`` included (llama, qwen2,
            gpt2 ...): built with ``AutoModelForCausalLM.from_config``, random weights.
        path: local folder written by ``save_pretrained`` (config.json + weights): loaded with
            ``from_pretrained(local_files_only=True)``; nothing is downloaded.
    """

    def __init__(self, config: dict[str, Any] | None = None, path: str | None = None) -> None:
        super().__init__()
        if (config is None) == (path is None):
            raise ValueError(
                "pass exactly one of config= (build a from-scratch LM) and path= (load a local "
                f"pretrained folder); got config={'set' if config else None}, path={path!r}"
            )
        self._path = path
        if path is not None:
            if not (Path(path) / "config.json").is_file():
                raise FileNotFoundError(
                    f"path={path!r} has no config.json: pass a folder written by a Hugging Face "
                    "model's save_pretrained (nothing is downloaded)"
                )
            self.model = AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, dtype=torch.float32
            )
            self._config: dict[str, Any] = {}
        else:
            self._config = dict(to_plain(config))
            if "model_type" not in self._config:
                raise ValueError(
                    "config has no model_type: name the architecture, e.g. model_type: llama"
                )
            kwargs = dict(self._config)
            kwargs.setdefault("vocab_size", _PLACEHOLDER_VOCAB)
            hf_config = AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
            self.model = AutoModelForCausalLM.from_config(hf_config)
        self.body = self.model.base_model  # the decoder without the LM head
        params = inspect.signature(self.body.forward).parameters
        # transformers 5 renamed past_key_values -> cache; accept both generations
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    def export_config(self) -> dict[str, Any]:
        """The Hydra node that rebuilds this architecture without its original folder."""
        if self._path is None:
            return target_config(self, config=self._config, path=None)
        full = self.model.config.to_dict()
        return target_config(self, config=full, path=None)

    @property
    def config(self) -> dict[str, Any]:
        return self.export_config()

    @property
    def hidden_size(self) -> int:
        return self.model.get_input_embeddings().embedding_dim

    @property
    def vocab_size(self) -> int:
        return self.model.get_input_embeddings().num_embeddings

    @property
    def max_positions(self) -> int | None:
        """Longest sequence the LM accepts, when its config says (learned position tables)."""
        return getattr(self.model.config, "max_position_embeddings", None)

    def resize(self, vocab_size: int) -> None:
        """Grow the input / output embeddings to ``vocab_size`` rows (never shrinks)."""
        if vocab_size > self.vocab_size:
            # new rows from the model's own init: the mean of a random / tiny table means nothing
            self.model.resize_token_embeddings(vocab_size, mean_resizing=False)

    def embed(self, ids: Tensor) -> Tensor:
        """Token ids ``(B, L)`` -> input embeddings ``(B, L, D)``."""
        return self.model.get_input_embeddings()(ids)  # (B, L, D)

    def output_rows(self, ids: Tensor) -> tuple[Tensor, Tensor | None]:
        """Output-embedding weight ``(K, D)`` and bias ``(K,)`` (or None) of token ``ids`` (K,)."""
        head = self.model.get_output_embeddings()
        bias = head.bias[ids] if getattr(head, "bias", None) is not None else None  # (K,)
        return head.weight[ids], bias  # (K, D)

    def logits(self, hidden: Tensor) -> Tensor:
        """Full-vocabulary logits ``(B, L, V)`` of hidden states ``(B, L, D)``."""
        return self.model.get_output_embeddings()(hidden)  # (B, L, V)

    def forward(
        self,
        embeds: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        cache: Any = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, Any]:
        """Decoder body on ``embeds`` ``(B, L, D)`` -> last hidden states ``(B, L, D)`` and cache.

        ``attention_mask`` ``(B, L_past + L)`` is 1 for real tokens; ``position_ids`` ``(B, L)``
        count real tokens only, so padding never shifts positions.
        """
        kwargs = {self._cache_kwarg: cache} if cache is not None else {}
        out = self.body(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            **kwargs,
        )
        new_cache = out.get(self._cache_kwarg) if use_cache else None
        return out.last_hidden_state, new_cache  # (B, L, D)
