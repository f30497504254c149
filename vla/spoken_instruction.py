"""Spoken instructions -> LM tokens: the PaLM-E idea applied to sound.

A waveform ``(B, N)`` goes through an audio encoder (``vla.audio.AudioEncoder``: log-mel, strided
convolutions, transformer) and then through an adapter of the same interface the cameras use
(``vla.adapters``, built with the encoder's ``embed_dim`` / ``num_patches`` and the LM width), so
any adapter that resamples to a few tokens (attention pool, perceiver, Q-Former) turns speech
into ``Q`` LM-space tokens. A learned embedding marks them as speech (as the camera embeddings
mark views). They take the place of (``instruction=audio``) or join (``instruction=both``) the
instruction's text tokens in the prompt.

Clips shorter than the encoder's context are zero-padded; the encoder zeroes the padded tokens
and the adapter sees them as silence (what padding is).
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from vla.adapters.adapter import Adapter
from vla.audio.audio_encoder import AudioEncoder


class SpokenInstructionEncoder(nn.Module):
    """``(B, N)`` waveform (+ lengths) -> ``(B, Q, D)`` LM-space instruction tokens.

    Args:
        encoder: built audio encoder (its ``sample_rate`` is what the model expects).
        adapter: partial adapter; called with ``in_dim``, ``out_dim``, ``num_patches``.
        out_dim: the LM's hidden size.
    """

    def __init__(self, encoder: AudioEncoder, adapter: Callable[..., Adapter], out_dim: int):
        super().__init__()
        self.encoder = encoder
        self.adapter = adapter(
            in_dim=encoder.embed_dim, out_dim=out_dim, num_patches=encoder.num_patches
        )
        self.kind_embed = nn.Parameter(torch.randn(out_dim) * 0.02)  # (D,) "this is speech"

    @property
    def sample_rate(self) -> int:
        return int(self.encoder.sample_rate)

    @property
    def num_tokens(self) -> int:
        return int(self.adapter.num_tokens)

    def forward(self, audio: Tensor, lengths: Tensor | None = None) -> Tensor:
        if not isinstance(audio, Tensor) or audio.ndim != 2 or not audio.is_floating_point():
            got = tuple(audio.shape) if isinstance(audio, Tensor) else type(audio).__name__
            raise ValueError(
                f"audio must be a float tensor (B, N) of {self.sample_rate} Hz samples in "
                f"[-1, 1], got {got}"
            )
        if lengths is not None and tuple(lengths.shape) != (audio.shape[0],):
            raise ValueError(
                f"audio_length has shape {tuple(lengths.shape)}; expected ({audio.shape[0]},)"
            )
        tokens, _ = self.encoder(audio.float(), lengths)  # (B, P, C), padded tokens zero
        return self.adapter(tokens) + self.kind_embed  # (B, Q, D)
