"""Flamingo's Perceiver Resampler: learned latents cross-attend to the patches, giving a fixed
number of tokens whatever the image size (Alayrac et al. 2022)."""

import torch
from torch import Tensor, nn

from vla.adapters.adapter import Adapter
from vla.adapters.attention_block import CrossAttention, FeedForward
from vla.hydra_config import target_config


class PerceiverResampler(Adapter):
    """``(B, P, C) -> (B, num_latents, D)``.

    Patches get a learned position embedding first: attention pooling is permutation-invariant,
    and where an object is in the image is what a reaching policy needs.

    Args:
        num_latents: Q, the number of output tokens.
        depth: number of (cross-attention, MLP) layers.
        dim: internal width (None: ``out_dim``).
        num_heads: attention heads.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_patches: int,
        num_latents: int = 16,
        depth: int = 2,
        dim: int | None = None,
        num_heads: int = 4,
    ) -> None:
        super().__init__(in_dim, out_dim, num_patches)
        if num_latents < 1 or depth < 1:
            raise ValueError(f"num_latents={num_latents} and depth={depth} must be >= 1")
        self.config = target_config(
            self, num_latents=num_latents, depth=depth, dim=dim, num_heads=num_heads
        )
        width = dim or out_dim
        self.num_tokens = num_latents
        self.proj_in = nn.Linear(in_dim, width)
        self.pos = nn.Parameter(torch.randn(num_patches, width) * 0.02)  # (P, W)
        self.latents = nn.Parameter(torch.randn(num_latents, width) * 0.02)  # (Q, W)
        self.attn = nn.ModuleList(
            CrossAttention(width, num_heads, include_queries=True) for _ in range(depth)
        )
        self.ff = nn.ModuleList(FeedForward(width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, out_dim)

    def forward(self, patches: Tensor) -> Tensor:
        x = self.proj_in(patches) + self.pos  # (B, P, W)
        lat = self.latents.expand(x.shape[0], -1, -1)  # (B, Q, W)
        for attn, ff in zip(self.attn, self.ff, strict=True):
            lat = lat + attn(lat, x)  # (B, Q, W)
            lat = lat + ff(lat)  # (B, Q, W)
        return self.proj_out(self.norm(lat))  # (B, Q, D)
