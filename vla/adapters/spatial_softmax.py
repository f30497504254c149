"""Spatial softmax keypoints (Levine et al. 2016; robomimic and diffusion_policy's image encoders):
each of K learned maps over the patch grid is turned into a softmax and read out as its expected
image position, so "where is it" comes out as coordinates at sub-patch precision instead of as a
pattern over coarse grid cells. The K (x, y) pairs and the softmax-weighted features are then
projected to Q LM tokens."""

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
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_patches: int,
        num_keypoints: int = 32,
        num_tokens: int = 4,
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
        self.config = target_config(self, num_keypoints=num_keypoints, num_tokens=num_tokens)
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

    def forward(self, patches: Tensor) -> Tensor:
        logits = self.maps(patches) / self.log_temperature.exp()  # (B, P, K)
        attn = logits.softmax(dim=1)  # (B, P, K) a distribution over the grid per keypoint
        points = attn.transpose(1, 2) @ self.grid  # (B, K, 2) expected (x, y) in [-1, 1]
        pooled = (attn.mean(-1, keepdim=True) * patches).sum(1)  # (B, C) what sits at them
        x = torch.cat([points.flatten(1), pooled], dim=1)  # (B, 2K + C)
        return self.proj(x).unflatten(1, (self.num_tokens, self.out_dim))  # (B, Q, D)
