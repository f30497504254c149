"""Pre-norm attention blocks shared by the resampling adapters (Perceiver, Q-Former, pooling)."""

import torch
from torch import Tensor, nn


class FeedForward(nn.Sequential):
    """LayerNorm -> Linear -> GELU -> Linear, the transformer MLP (used with a residual)."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__(
            nn.LayerNorm(dim), nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim)
        )


class CrossAttention(nn.Module):
    """Queries attend to a context; ``include_queries`` also lets them attend to themselves
    (Flamingo's resampler concatenates the latents to the keys / values)."""

    def __init__(self, dim: int, num_heads: int, include_queries: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.include_queries = include_queries

    def forward(self, queries: Tensor, context: Tensor) -> Tensor:
        q = self.norm_q(queries)  # (B, Q, D)
        kv = self.norm_kv(context)  # (B, P, D)
        if self.include_queries:
            kv = torch.cat([kv, q], dim=1)  # (B, P + Q, D)
        out, _ = self.attn(q, kv, kv, need_weights=False)  # (B, Q, D)
        return out


class SelfAttention(nn.Module):
    """Pre-norm self-attention among the queries (Q-Former's query layers)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x)  # (B, Q, D)
        out, _ = self.attn(h, h, h, need_weights=False)  # (B, Q, D)
        return out
