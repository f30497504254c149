"""BLIP-2's Q-Former: learned queries alternate self-attention among themselves and
cross-attention to the frozen image features (Li et al. 2023), then project to the LM."""

import torch
from torch import Tensor, nn

from vla.adapters.adapter import Adapter
from vla.adapters.attention_block import CrossAttention, FeedForward, SelfAttention
from vla.hydra_config import target_config


class QFormer(Adapter):
    """``(B, P, C) -> (B, num_queries, D)``: per layer self-attn, cross-attn, MLP.

    BLIP-2 uses a 12-layer BERT with cross-attention every other layer and text-conditioned
    objectives; this keeps only the query path, the part the LM sees.

    Args:
        num_queries: Q, the number of output tokens (BLIP-2: 32).
        depth: number of layers.
        dim: internal width (None: ``out_dim``).
        num_heads: attention heads.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_patches: int,
        num_queries: int = 16,
        depth: int = 2,
        dim: int | None = None,
        num_heads: int = 4,
    ) -> None:
        super().__init__(in_dim, out_dim, num_patches)
        if num_queries < 1 or depth < 1:
            raise ValueError(f"num_queries={num_queries} and depth={depth} must be >= 1")
        self.config = target_config(
            self, num_queries=num_queries, depth=depth, dim=dim, num_heads=num_heads
        )
        width = dim or out_dim
        self.num_tokens = num_queries
        self.proj_in = nn.Linear(in_dim, width)
        self.pos = nn.Parameter(torch.randn(num_patches, width) * 0.02)  # (P, W)
        self.queries = nn.Parameter(torch.randn(num_queries, width) * 0.02)  # (Q, W)
        self.self_attn = nn.ModuleList(SelfAttention(width, num_heads) for _ in range(depth))
        self.cross_attn = nn.ModuleList(CrossAttention(width, num_heads) for _ in range(depth))
        self.ff = nn.ModuleList(FeedForward(width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, out_dim)

    def forward(self, patches: Tensor) -> Tensor:
        x = self.proj_in(patches) + self.pos  # (B, P, W)
        q = self.queries.expand(x.shape[0], -1, -1)  # (B, Q, W)
        for sa, ca, ff in zip(self.self_attn, self.cross_attn, self.ff, strict=True):
            q = q + sa(q)  # (B, Q, W)
            q = q + ca(q, x)  # (B, Q, W)
            q = q + ff(q)  # (B, Q, W)
        return self.proj_out(self.norm(q))  # (B, Q, D)
