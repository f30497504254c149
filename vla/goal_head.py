"""Hindsight goal prediction: an auxiliary loss that asks the policy where its episode ends.

Every demonstration ends where its task is done: touch ends on the target, reach on the goal
marker, pick-and-place at the destination. The state at an episode's last step is therefore a
label of *where the instruction points* that every store already holds, with no annotation and
no simulator access (hindsight relabelling, Andrychowicz et al. 2017, used here as a target
rather than as a goal input). Predicting it from each step's observation gives the grounding a
dense signal of its own: the action loss only says which way to move next, the goal says which
object in the scene the words name (auxiliary tasks in visuomotor learning: Levine et al. 2016's
feature points, Jaderberg et al. 2017's UNREAL).

The head reads the mean of the LM's action-slot states (the representation the actions come
from) and regresses the final state's ``state_dims`` in the model's normalized units (q01..q99
-> [-1, 1]): where the episode ends (``absolute``), or how far that is from the sample's latest
state (``relative``: final minus current, the displacement still to go, which says both where
the goal is and when the hand is there). It is training-only: decoding never reads it, so a policy acts exactly as it would
without it; :meth:`GoalHead.forward` can still be called on slot states to ask where a policy
thinks it is going.
"""

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from vla.observation_encoder import ObservationEncoder

GoalTarget = Literal["absolute", "relative"]
GOAL_TARGETS: tuple[str, ...] = ("absolute", "relative")


class GoalHead(nn.Module):
    """Slot states ``(B, n, D)`` -> the predicted normalized final state ``(B, S')``.

    Args:
        hidden_size: D, the LM's width.
        goal_dim: S', the number of state dimensions the model reads (``state_dims``).
    """

    def __init__(self, hidden_size: int, goal_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(hidden_size),
            nn.Linear(hidden_size, hidden_size),
            nn.GELU(),
            nn.Linear(hidden_size, goal_dim),
        )

    def forward(self, slot_states: Tensor) -> Tensor:
        return self.net(slot_states.float().mean(dim=1))  # (B, S')


def goal_target(obs: ObservationEncoder, goal: Tensor, state: Tensor, target: str) -> Tensor:
    """The head's target ``(B, S')`` for final states ``goal`` ``(B, S)``: their normalized
    ``state_dims``, less the latest of ``state`` ``(B, T, S)`` for a ``relative`` target."""
    out = obs.normalize_state(goal)  # (B, S')
    if target == "relative":  # what is still to go from the latest state
        out = out - obs.normalize_state(state[:, -1].to(out.device))
    return out


def goal_in_state_units(
    obs: ObservationEncoder, predicted: Tensor, state: Tensor, target: str
) -> Tensor:
    """The inverse of :func:`goal_target`: the head's output ``(B, S')`` as the final state's
    ``state_dims`` in the state's own units, from the inputs' ``state`` ``(B, T, S)``."""
    if target == "relative":
        predicted = predicted + obs.normalize_state(state[:, -1].to(predicted.device))
    dims = obs.state_dims
    low, high = obs.state_low[dims], obs.state_high[dims]  # (S',)
    return (predicted + 1) / 2 * (high - low) + low  # (B, S')


def goal_loss(predicted: Tensor, goal: Tensor) -> Tensor:
    """Mean squared error between the predicted and the real normalized goal, both ``(B, S')``."""
    return F.mse_loss(predicted.float(), goal.float())


def check_goal_weight(weight: float, has_state: bool, target: str = "absolute") -> None:
    """``goal_loss`` must be a finite weight >= 0, and > 0 only for a model that reads a state;
    ``target`` one of ``GOAL_TARGETS``."""
    if target not in GOAL_TARGETS:
        raise ValueError(f"goal_target={target!r} is not one of {list(GOAL_TARGETS)}")
    if not weight >= 0 or weight == float("inf"):
        raise ValueError(f"goal_loss={weight} must be a finite weight >= 0 (0 = off)")
    if weight > 0 and not has_state:
        raise ValueError(
            f"goal_loss={weight} predicts the episode's final state, but this model reads no "
            "state (state_low / state_high are null): set goal_loss=0 or give it the state"
        )
