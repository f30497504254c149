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

Why the alignment loss (``transcript_alignment_loss``): trained on the action loss alone, the
encoder and the LM wait on each other — the LM cannot use speech tokens that carry nothing yet,
and the encoder gets no useful gradient through an LM that ignores them (measured: validation
action loss flat, 0-10% success after 2,200 steps, where the encoder alone names colour and shape
in 250 steps: benchmarks/speech_keywords.py). Contrasting each clip's pooled speech tokens with the
pooled LM embeddings of its transcript (CLIP's InfoNCE, Radford et al. 2021; the speech-to-text
embedding alignment of speech LLMs) tells the encoder which words to carry, in the LM's own space.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
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


def transcript_alignment_loss(
    speech: Tensor,
    text: Tensor,
    text_mask: Tensor,
    transcripts: Sequence[str],
    temperature: float = 0.1,
) -> Tensor:
    """InfoNCE from each clip's mean speech token to the mean embedding of its transcript.

    ``speech`` ``(B, Q, D)``, ``text`` ``(B, L, D)`` token embeddings of the transcripts with
    ``text_mask`` ``(B, L)``. Both sides are centred on the batch mean before the cosine (the
    template words every command shares would otherwise dominate it), the text side is a fixed
    target (no gradient), and clips with the same transcript all count as positives. Returned as
    the KL divergence from the target (0 = each clip picks out its transcript).
    """
    s = speech.float().mean(1)  # (B, D)
    w = text_mask.unsqueeze(-1).float()  # (B, L, 1)
    t = ((text.float() * w).sum(1) / w.sum(1).clamp_min(1)).detach()  # (B, D)
    s = F.normalize(s - s.mean(0), dim=-1)  # (B, D)
    t = F.normalize(t - t.mean(0), dim=-1)  # (B, D)
    logits = s @ t.T / temperature  # (B, B)
    same = torch.tensor(
        [[a == b for b in transcripts] for a in transcripts], device=s.device
    ).float()  # (B, B)
    target = same / same.sum(1, keepdim=True)  # (B, B) rows sum to 1
    # KL = cross-entropy - the target's entropy: 0 when matched, whatever the batch's duplicates
    # (a batch of few episodes has many; its cross-entropy could never go below their entropy)
    entropy = -(target * target.clamp_min(1e-12).log()).sum(1).mean()
    return F.cross_entropy(logits, target) - entropy
