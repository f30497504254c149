"""Spoken-instruction encoder: waveform ``(B, N)`` -> audio tokens ``(B, P, C)`` plus a mask.

Whisper's encoder, shrunk (Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak
Supervision"): a log-mel front end, a strided Conv1d stack (GELU) that shortens the sequence,
sinusoidal positions and a pre-norm transformer encoder. Each utterance's log-mel features are
normalized per mel channel over its own real frames (cepstral mean / variance normalization), which
removes the recording level and a fixed channel colouring before the network sees them.

Padding: shorter clips in a batch are zero-padded; ``lengths`` says how many samples are real. The
padded frames are zeroed before every convolution (exactly what the convolution's own zero padding
does at the end of a lone clip) and masked out of attention, so a clip's real tokens are the same
alone or in a padded batch. The returned mask (True = real token) lets adapters ignore the rest.

Sizes for the adapters: ``embed_dim`` (C) and ``num_patches`` (P for a ``max_seconds`` clip). With
``pad_to_max=True`` (the default) every forward returns exactly ``num_patches`` tokens, as the
adapters with per-patch position embeddings (perceiver, Q-Former, attention pool) need.
"""

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from vla.audio.log_mel import LogMel
from vla.hydra_config import target_config


def pad_clips(clips: Sequence[Tensor]) -> tuple[list[Tensor], Tensor]:
    """Waveforms of different lengths, zero-padded to the longest (what the encoder reads as
    silence), and each one's real sample count ``(B,)`` int64: the encoder's batch convention,
    shared by training batches and policies."""
    lengths = torch.tensor([len(clip) for clip in clips], dtype=torch.int64)  # (B,)
    longest = int(lengths.max())
    return [F.pad(clip, (0, longest - len(clip))) for clip in clips], lengths  # B x (N,), (B,)


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """Fixed sin / cos position codes ``(length, dim)`` (Vaswani et al. 2017; Whisper's encoder)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half) / max(half - 1, 1))  # (dim / 2,)
    angles = torch.arange(length)[:, None] * freqs[None]  # (L, dim / 2)
    codes = torch.cat([angles.sin(), angles.cos()], dim=1)  # (L, 2 * (dim // 2))
    return F.pad(codes, (0, dim - 2 * half))  # (L, dim)


class AudioEncoder(nn.Module):
    """Log-mel -> CMVN -> strided Conv1d + GELU -> transformer: ``(B, N)`` -> ``(B, P, C)``.

    Args:
        sample_rate: rate of the input waveform in Hz.
        max_seconds: audio context; longer input is an error.
        n_mels, n_fft, hop_length: ``LogMel`` settings (hop 160 at 16 kHz = 100 frames/s).
        width: channels of the convolutions and the transformer (``embed_dim``).
        depth: transformer layers.
        heads: attention heads; must divide ``width``.
        conv_strides: one kernel-3 Conv1d per entry, each shortening time by its stride
            (1, 2 or 3: a kernel of 3 would skip frames at larger strides).
        mlp_ratio: transformer feed-forward width as a multiple of ``width``.
        dropout: transformer dropout.
        pad_to_max: pad every batch to ``max_seconds`` so the output always has ``num_patches``
            tokens; False returns only as many as the longest clip needs.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        max_seconds: float = 4.0,
        n_mels: int = 64,
        n_fft: int = 400,
        hop_length: int = 160,
        width: int = 128,
        depth: int = 2,
        heads: int = 4,
        conv_strides: Sequence[int] = (2, 2),
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        pad_to_max: bool = True,
    ) -> None:
        super().__init__()
        strides = [int(s) for s in conv_strides]
        if not strides or any(s not in (1, 2, 3) for s in strides):
            raise ValueError(
                f"conv_strides={list(conv_strides)} must be a non-empty list of 1, 2 or 3 "
                "(kernel-3 convolutions would skip frames at larger strides)"
            )
        for name, value in (("width", width), ("depth", depth), ("heads", heads)):
            if value < 1:
                raise ValueError(f"{name}={value} must be >= 1")
        if width % heads:
            raise ValueError(f"width={width} must be divisible by heads={heads}")
        if max_seconds <= 0:
            raise ValueError(f"max_seconds={max_seconds} must be > 0 (the audio context)")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        self.config = target_config(
            self,
            sample_rate=sample_rate,
            max_seconds=max_seconds,
            n_mels=n_mels,
            n_fft=n_fft,
            hop_length=hop_length,
            width=width,
            depth=depth,
            heads=heads,
            conv_strides=strides,
            mlp_ratio=mlp_ratio,
            dropout=dropout,
            pad_to_max=pad_to_max,
        )
        self.log_mel = LogMel(sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        self.sample_rate, self.max_seconds, self.pad_to_max = sample_rate, max_seconds, pad_to_max
        self.max_samples = round(max_seconds * sample_rate)
        if self.max_samples < 1:
            raise ValueError(f"max_seconds={max_seconds} is shorter than one sample")
        self.convs = nn.ModuleList(
            nn.Conv1d(n_mels if i == 0 else width, width, kernel_size=3, stride=s, padding=1)
            for i, s in enumerate(strides)
        )
        self.num_patches = int(self._tokens_for(torch.tensor(self.max_samples)))
        self.embed_dim = width
        self.register_buffer(
            "pos", sinusoidal_positions(self.num_patches, width), persistent=False
        )  # (P, C)
        layer = nn.TransformerEncoderLayer(
            width,
            heads,
            dim_feedforward=round(mlp_ratio * width),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,  # pre-norm: stable without warm-up (Xiong et al. 2020)
        )
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)  # pre-norm stacks end with a norm

    def _tokens_for(self, samples: Tensor) -> Tensor:
        """Real tokens for clips of ``samples`` samples (integer tensor, any shape)."""
        frames = self.log_mel.num_frames(samples)
        for conv in self.convs:
            frames = (frames - 1) // conv.stride[0] + 1  # kernel 3, padding 1
        return frames

    def forward(self, waveform: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(B, N)`` floats in [-1, 1] -> tokens ``(B, P, C)`` and mask ``(B, P)`` (True = real).

        ``lengths``: real samples per clip ``(B,)`` (the rest is padding), or None (all real).
        Padded tokens come out as zeros."""
        if waveform.ndim != 2 or not waveform.is_floating_point():
            raise ValueError(
                f"waveform has shape {tuple(waveform.shape)} and dtype {waveform.dtype}; "
                "expected float (B, N)"
            )
        b, n = waveform.shape
        if n > self.max_samples:
            raise ValueError(
                f"audio of {n} samples ({n / self.sample_rate:.2f} s) is longer than "
                f"max_seconds={self.max_seconds} ({self.max_samples} samples at "
                f"{self.sample_rate} Hz): trim the clips, or build the encoder with a larger "
                "max_seconds"
            )
        if lengths is None:
            lengths = torch.full((b,), n, dtype=torch.long, device=waveform.device)  # (B,)
        else:
            if lengths.shape != (b,) or lengths.is_floating_point() or lengths.is_complex():
                raise ValueError(
                    f"lengths has shape {tuple(lengths.shape)} and dtype {lengths.dtype}; "
                    f"expected integer sample counts of shape ({b},)"
                )
            lengths = lengths.to(waveform.device, torch.long)  # (B,)
            if bool(((lengths < 1) | (lengths > n)).any()):
                raise ValueError(
                    f"lengths={lengths.tolist()} must be in [1, {n}] (samples per clip, at most "
                    "the padded length)"
                )
        real = torch.arange(n, device=waveform.device) < lengths[:, None]  # (B, N)
        wave = waveform.float() * real  # (B, N) whatever the padding held, it is zeros now
        if self.pad_to_max and n < self.max_samples:
            wave = F.pad(wave, (0, self.max_samples - n))  # (B, N_max)
        feats = self.log_mel(wave)  # (B, M, T)
        frames = self.log_mel.num_frames(lengths)  # (B,)
        mask = torch.arange(feats.shape[-1], device=wave.device) < frames[:, None]  # (B, T)
        x = self._normalize(feats, mask)  # (B, M, T)
        for conv in self.convs:
            x = x * mask[:, None]  # (B, C, T) padded frames = the convolution's zero padding
            x = F.gelu(conv(x))  # (B, W, T')
            frames = (frames - 1) // conv.stride[0] + 1  # (B,)
            mask = torch.arange(x.shape[-1], device=x.device) < frames[:, None]  # (B, T')
        x = x.transpose(1, 2) + self.pos[: x.shape[-1]]  # (B, P, W)
        with self._attention_kernel(x):
            x = self.transformer(x, src_key_padding_mask=~mask)  # (B, P, W)
        tokens = self.norm(x) * mask[..., None]  # (B, P, W)
        return tokens, mask

    @staticmethod
    def _attention_kernel(x: Tensor) -> AbstractContextManager:
        """On the CPU, plain matmul attention: at ~100 tokens SDPA's fused CPU kernel is slower,
        and its bf16 backward was a quarter of the speech model's training step here."""
        if x.device.type != "cpu":
            return nullcontext()
        return sdpa_kernel([SDPBackend.MATH])

    @staticmethod
    def _normalize(feats: Tensor, mask: Tensor) -> Tensor:
        """Per-utterance, per-mel-channel mean / variance normalization over the real frames."""
        weight = mask[:, None].to(feats.dtype)  # (B, 1, T)
        count = weight.sum(-1, keepdim=True)  # (B, 1, 1), >= 1: every clip has a frame
        mean = (feats * weight).sum(-1, keepdim=True) / count  # (B, M, 1)
        var = ((feats - mean).square() * weight).sum(-1, keepdim=True) / count  # (B, M, 1)
        return (feats - mean) * torch.rsqrt(var + 1e-5)  # (B, M, T)

    def extra_repr(self) -> str:
        return (
            f"max_seconds={self.max_seconds}, embed_dim={self.embed_dim}, "
            f"num_patches={self.num_patches}, pad_to_max={self.pad_to_max}"
        )
