"""LLaVA-1.5's projector: a 2-layer GELU MLP per patch, better than linear (Liu et al. 2023b)."""

from torch import Tensor, nn

from vla.adapters.adapter import Adapter
from vla.hydra_config import target_config


class MLP(Adapter):
    """``(B, P, C) -> (B, P, D)``: Linear -> GELU -> Linear; Q = P.

    Args:
        hidden_dim: width of the hidden layer (None: ``out_dim``, as in LLaVA-1.5).
    """

    def __init__(
        self, in_dim: int, out_dim: int, num_patches: int, hidden_dim: int | None = None
    ) -> None:
        super().__init__(in_dim, out_dim, num_patches)
        if hidden_dim is not None and hidden_dim < 1:
            raise ValueError(f"hidden_dim={hidden_dim} must be >= 1 or null (= out_dim)")
        self.config = target_config(self, hidden_dim=hidden_dim)
        hidden = hidden_dim or out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, patches: Tensor) -> Tensor:
        return self.net(patches)  # (B, P, D)
