"""Learned-query attention pooling: a few probes attend once to the patches and an MLP follows,
the multi-head attention pooling (MAP) head of SigLIP used by PaliGemma-style models."""

import torch
from torch import Tensor, nn

from vla.adapters.adapter import Adapter
from vla.adapters.attention_block import CrossAttention, FeedForward
from vla.hydra_config import target_config


class AttentionPool(Adapter):
    """``(B, P, C) -> (B, num_queries, D)``: one cross-attention + MLP, then a projection.

    Args:
        num_queries: Q, the number of pooled tokens (SigLIP's MAP head uses 1).
        num_heads: attention heads.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_patches: int,
        num_queries: int = 4,
        num_heads: int = 4,
    ) -> None:
        super().__init__(in_dim, out_dim, num_patches)
        if num_queries < 1:
            raise ValueError(f"num_queries={num_queries} must be >= 1")
        self.config = target_config(self, num_queries=num_queries, num_heads=num_heads)
        self.num_tokens = num_queries
        self.proj_in = nn.Linear(in_dim, out_dim)
        # position embedding: pooling is permutation-invariant, and object position matters
        self.pos = nn.Parameter(torch.randn(num_patches, out_dim) * 0.02)  # (P, D)
        self.queries = nn.Parameter(torch.randn(num_queries, out_dim) * 0.02)  # (Q, D)
        self.attn = CrossAttention(out_dim, num_heads)
        self.ff = FeedForward(out_dim)

    def forward(self, patches: Tensor) -> Tensor:
        x = self.proj_in(patches) + self.pos  # (B, P, D)
        q = self.queries.expand(x.shape[0], -1, -1)  # (B, Q, D)
        q = q + self.attn(q, x)  # (B, Q, D)
        return q + self.ff(q)  # (B, Q, D)
