"""Spatial softmax keypoints (Levine et al. 2016; robomimic and diffusion_policy's image encoders):
each of K learned maps over the patch grid is turned into a softmax and read out as its expected
image position, so "where is it" comes out as coordinates at sub-patch precision instead of as a
pattern over coarse grid cells. The K (x, y) pairs and the softmax-weighted features are then
projected to Q LM tokens.

``conditioned=true`` lets the instruction aim the keypoints (CLIPort's language-conditioned
attention; Shridhar et al. 2021): each keypoint's map gets a query computed from the pooled
instruction, ``logits = maps(patches) + patches @ query(instruction)``. The query is linear in the
pooled words (a LayerNorm, then one linear map), so a colour and a shape add their evidence at
every patch, and an object whose pair of words was never a target in training still scores where
both hold. The query map starts at zero: training begins from the unconditioned keypoints."""

import math

import torch
from torch import Tensor, nn

from vla.adapters.adapter import Adapter
from vla.hydra_config import target_config


class SpatialSoftmax(Adapter):
    """``(B, P, C)`` on a square patch grid -> ``(B, num_tokens, D)``.

    Args:
        num_keypoints: K learned keypoint maps (1x1 projections of the patch features).
        num_tokens: Q output tokens; each reads all K keypoints (an MLP per token group).
        conditioned: the instruction adds a query to each keypoint map; ``forward`` then takes the
            pooled instruction ``condition`` ``(B, out_dim)`` (the VLA passes its own).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_patches: int,
        num_keypoints: int = 32,
        num_tokens: int = 4,
        conditioned: bool = False,
    ) -> None:
        super().__init__(in_dim, out_dim, num_patches)
        side = math.isqrt(num_patches)
        if side * side != num_patches:
            raise ValueError(
                f"spatial softmax needs a square patch grid; got {num_patches} patches "
                "(use a CNN encoder without token_grid pooling, or a ViT with a square input)"
            )
        if num_keypoints < 1 or num_tokens < 1:
            raise ValueError(
                f"num_keypoints={num_keypoints} and num_tokens={num_tokens} must be >= 1"
            )
        self.config = target_config(
            self, num_keypoints=num_keypoints, num_tokens=num_tokens, conditioned=conditioned
        )
        self.conditioned = conditioned
        self.num_tokens, self.num_keypoints = num_tokens, num_keypoints
        axis = torch.linspace(-1.0, 1.0, side)  # cell centres, row-major like the patches
        yy, xx = torch.meshgrid(axis, axis, indexing="ij")
        self.register_buffer("grid", torch.stack([xx, yy], -1).reshape(num_patches, 2))  # (P, 2)
        self.maps = nn.Linear(in_dim, num_keypoints)
        self.log_temperature = nn.Parameter(torch.zeros(()))
        feat = 2 * num_keypoints + in_dim
        self.proj = nn.Sequential(
            nn.LayerNorm(feat),
            nn.Linear(feat, out_dim),
            nn.GELU(),
            nn.Linear(out_dim, num_tokens * out_dim),
        )
        self.query: nn.Sequential | None = None
        if conditioned:  # built last: an unconditioned adapter draws the same weights as before
            self.query = nn.Sequential(
                nn.LayerNorm(out_dim), nn.Linear(out_dim, num_keypoints * in_dim)
            )
            nn.init.zeros_(self.query[-1].weight)
            nn.init.zeros_(self.query[-1].bias)

    def forward(self, patches: Tensor, condition: Tensor | None = None) -> Tensor:
        logits = self.maps(patches)  # (B, P, K)
        if self.query is not None:
            expected = (patches.shape[0], self.out_dim)
            if condition is None or tuple(condition.shape) != expected:
                got = None if condition is None else tuple(condition.shape)
                raise ValueError(
                    f"a conditioned spatial softmax needs condition {expected}, got {got}"
                )
            query = self.query(condition).unflatten(
                1, (self.num_keypoints, self.in_dim)
            )  # (B, K, C)
            logits = logits + patches @ query.transpose(1, 2) / math.sqrt(self.in_dim)  # (B, P, K)
        elif condition is not None:
            raise ValueError("condition given, but this spatial softmax has conditioned=false")
        logits = logits / self.log_temperature.exp()  # (B, P, K)
        attn = logits.softmax(dim=1)  # (B, P, K) a distribution over the grid per keypoint
        points = attn.transpose(1, 2) @ self.grid  # (B, K, 2) expected (x, y) in [-1, 1]
        pooled = (attn.mean(-1, keepdim=True) * patches).sum(1)  # (B, C) what sits at them
        x = torch.cat([points.flatten(1), pooled], dim=1)  # (B, 2K + C)
        return self.proj(x).unflatten(1, (self.num_tokens, self.out_dim))  # (B, Q, D)
