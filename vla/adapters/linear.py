"""LLaVA's projector: one linear map from each patch to one LM token (Liu et al. 2023)."""

from torch import Tensor, nn

from vla.adapters.adapter import Adapter
from vla.hydra_config import target_config


class Linear(Adapter):
    """``(B, P, C) -> (B, P, D)`` by a single ``nn.Linear``; Q = P."""

    def __init__(self, in_dim: int, out_dim: int, num_patches: int) -> None:
        super().__init__(in_dim, out_dim, num_patches)
        self.config = target_config(self)
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, patches: Tensor) -> Tensor:
        return self.proj(patches)  # (B, P, D)
