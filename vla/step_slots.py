"""Parallel decoding with one LM query slot per action step (``VLA(action_slots="step")``).

The LM reads H query slots instead of H * D (one per action token); this linear map turns each
step's output state into the D states its action tokens' bin logits are read from. The LM's
sequence is H * (D - 1) positions shorter: 12 for the quickstart's H=4, D=4 (a 1.12x faster
training step there; README "Training speed").
"""

import torch
from torch import Tensor, nn


class StepSlotSplit(nn.Linear):
    """``(B, H, D_lm)`` step states -> ``(B, H * D, D_lm)`` action-token states.

    Starts as D copies of the step's state, told apart by small noise, so an untrained model
    begins where token slots would and each token's state can then drift from its step's."""

    def __init__(self, hidden_size: int, action_dim: int) -> None:
        super().__init__(hidden_size, action_dim * hidden_size)
        self.action_dim = action_dim
        with torch.no_grad():
            self.weight.copy_(torch.eye(hidden_size).repeat(action_dim, 1))
            self.weight.add_(torch.randn(action_dim * hidden_size, hidden_size) * 0.02)
            self.bias.zero_()

    def forward(self, hidden: Tensor) -> Tensor:
        states = super().forward(hidden)  # (B, H, D * D_lm)
        return states.unflatten(-1, (self.action_dim, -1)).flatten(1, 2)  # (B, H * D, D_lm)
