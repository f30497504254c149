"""What a VLA reads in one batch: frames, the instruction or question text, state, spoken audio.

:class:`PromptInputs` is the batch side of ``vla.prompt``: the prompt encoder turns it into LM
tokens, and the VLA's actions, text answers and speech alignment all take it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vla import keys


@dataclass(frozen=True)
class PromptInputs:
    """One batch of what the model reads (``B`` rows).

    Attributes:
        images: ``(B, T, V, 3, H, W)`` uint8 frames (T = obs_horizon, V = cameras).
        texts: one instruction (or, for text answers, question) per row.
        state: ``(B, T, S)`` proprioception, or None for a model without state input.
        audio: ``(B, N)`` spoken instructions at the audio encoder's rate (speech models).
        audio_length: ``(B,)`` samples of each clip before its zero padding.
    """

    images: Tensor
    texts: Sequence[str]
    state: Tensor | None = None
    audio: Tensor | None = None
    audio_length: Tensor | None = None

    @classmethod
    def from_batch(
        cls, batch: Mapping[str, Any], texts: Sequence[str] | None = None
    ) -> PromptInputs:
        """The prompt of a training batch (``vla.keys``); ``texts`` replaces its instructions."""
        return cls(
            images=batch[keys.IMAGE],
            texts=batch[keys.INSTRUCTION] if texts is None else texts,
            state=batch.get(keys.STATE),
            audio=batch.get(keys.AUDIO),
            audio_length=batch.get(keys.AUDIO_LENGTH),
        )

    def to(self, device: torch.device) -> PromptInputs:
        """The same inputs as tensors on ``device`` (arrays become tensors)."""

        def move(x: Any) -> Tensor | None:
            return None if x is None else torch.as_tensor(x, device=device)

        return dataclasses.replace(
            self,
            images=move(self.images),
            state=move(self.state),
            audio=move(self.audio),
            audio_length=move(self.audio_length),
        )

    def rows(self, index: Sequence[int]) -> PromptInputs:
        """The sub-batch of rows ``index``."""
        idx = torch.as_tensor(list(index), dtype=torch.long, device=self.images.device)

        def pick(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[idx.to(x.device)]

        return PromptInputs(
            images=self.images[idx],
            texts=[self.texts[i] for i in index],
            state=pick(self.state),
            audio=pick(self.audio),
            audio_length=pick(self.audio_length),
        )

    def with_texts(self, texts: Sequence[str]) -> PromptInputs:
        return dataclasses.replace(self, texts=texts)
