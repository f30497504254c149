"""The adapter interface: patch tokens ``(B, P, C)`` -> LM-space tokens ``(B, Q, D_lm)``.

The VLA builds an adapter from a partial Hydra node, passing the sizes it derives from the built
parts: ``adapter(in_dim=vision.embed_dim, out_dim=llm.hidden_size, num_patches=vision.num_patches)``.
Configs hold only the adapter's own choices (depth, number of latents ...).
"""

from torch import Tensor, nn


class Adapter(nn.Module):
    """Base class: subclasses set ``num_tokens`` (Q) and implement ``forward``."""

    def __init__(self, in_dim: int, out_dim: int, num_patches: int) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("num_patches", num_patches)):
            if value < 1:
                raise ValueError(f"{name}={value} must be >= 1 (derived from the vision/LM parts)")
        self.in_dim, self.out_dim, self.num_patches = in_dim, out_dim, num_patches
        self.num_tokens = num_patches  # Q; resamplers override it

    def forward(self, patches: Tensor) -> Tensor:  # (B, P, C) -> (B, Q, D)
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, num_tokens={self.num_tokens}"
