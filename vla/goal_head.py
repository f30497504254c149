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
from), or with ``goal_query`` a query slot of its own placed before them (``VLA.split_slots``),
and regresses the final state's ``state_dims`` in the model's normalized units (q01..q99 ->
[-1, 1]): where the episode ends (``absolute``), or how far that is from the sample's latest
state (``relative``: final minus current, the displacement still to go, which says both where
the goal is and when the hand is there), or both at once (``both``: two outputs per dimension).
By default it is training-only: decoding never reads it, so a policy acts exactly as it would
without it; :meth:`GoalHead.forward` can still be called on slot states to ask where a policy
thinks it is going. With ``act_on_goal`` (:class:`GoalConditioning`) the actions also read the
displacement to the goal: the demonstration's in training, the head's prediction when acting.
"""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla.observation_encoder import ObservationEncoder

GoalTarget = Literal["absolute", "relative", "both"]
GOAL_TARGETS: tuple[str, ...] = ("absolute", "relative", "both")


def goal_outputs(goal_dim: int, target: str) -> int:
    """How many numbers the head predicts for ``goal_dim`` state dimensions: ``both`` targets
    give the absolute and the relative one side by side."""
    return 2 * goal_dim if target == "both" else goal_dim


class GoalHead(nn.Module):
    """Slot states ``(B, n, D)`` -> the predicted normalized final state ``(B, S')``.

    Args:
        hidden_size: D, the LM's width.
        goal_dim: its outputs: S', the number of state dimensions the model reads
            (``state_dims``), or 2 S' for the ``both`` target (:func:`goal_outputs`).
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
    ``state_dims``, less the latest of ``state`` ``(B, T, S)`` for a ``relative`` target; for
    ``both``, the two side by side ``(B, 2 S')``."""
    out = obs.normalize_state(goal)  # (B, S')
    if target == "absolute":
        return out
    to_go = out - obs.normalize_state(state[:, -1].to(out.device))  # what is still to go
    return to_go if target == "relative" else torch.cat([out, to_go], dim=-1)


def goal_to_go(obs: ObservationEncoder, predicted: Tensor, state: Tensor, target: str) -> Tensor:
    """The head's output ``(B, S')`` (or ``(B, 2 S')`` for ``both``) as the normalized
    displacement still to go ``(B, S')`` from the latest of ``state`` ``(B, T, S)``: the head's
    two estimates averaged for ``both``."""
    if target == "relative":
        return predicted
    latest = obs.normalize_state(state[:, -1].to(predicted.device))  # (B, S')
    if target == "absolute":
        return predicted - latest
    absolute, to_go = predicted.chunk(2, dim=-1)
    return (absolute - latest + to_go) / 2


def goal_in_state_units(
    obs: ObservationEncoder, predicted: Tensor, state: Tensor, target: str
) -> Tensor:
    """The inverse of :func:`goal_target`: the head's output ``(B, S')`` as the final state's
    ``state_dims`` in the state's own units, from the inputs' ``state`` ``(B, T, S)``; for
    ``both``, the mean of the head's two estimates of it."""
    final = predicted  # (B, S') normalized: the absolute target as it is
    if target != "absolute":
        latest = obs.normalize_state(state[:, -1].to(predicted.device))  # (B, S')
        final = latest + goal_to_go(obs, predicted, state, target)
    dims = obs.state_dims
    low, high = obs.state_low[dims], obs.state_high[dims]  # (S',)
    return (final + 1) / 2 * (high - low) + low  # (B, S')


class GoalConditioning(nn.Module):
    """Acting on the goal (``act_on_goal``): the displacement still to go ``(B, S')`` -> a vector
    ``(B, 1, D)`` added to every action slot's state before the action head reads it.

    In training the displacement is the demonstration's own (final minus latest state, plus
    Gaussian noise of std ``noise`` in normalized units, so the actions do not trust it to the
    millimetre), at inference the goal head's prediction: the policy first says where its episode
    ends, then moves there, the actions consistent with the aim by construction (foresight, then
    an inverse model: Seer, Tian et al. 2024; hindsight goals as inputs: Ghosh et al. 2019). The
    last layer starts at zero: a fresh model acts as it would without it.
    """

    def __init__(self, goal_dim: int, hidden_size: int, noise: float = 0.1) -> None:
        super().__init__()
        if not noise >= 0 or noise == float("inf"):
            raise ValueError(f"goal_input_noise={noise} must be a finite std >= 0 (0 = none)")
        self.noise = noise
        self.net = nn.Sequential(
            nn.Linear(goal_dim, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size)
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, to_go: Tensor) -> Tensor:
        if self.training and self.noise:
            to_go = to_go + self.noise * torch.randn_like(to_go)
        return self.net(to_go.float())[:, None]  # (B, 1, D)


def goal_loss(predicted: Tensor, goal: Tensor) -> Tensor:
    """Mean squared error between the predicted and the real normalized goal, both ``(B, S')``."""
    return F.mse_loss(predicted.float(), goal.float())


def build_goal_parts(
    weight: float,
    goal_dim: int,
    hidden_size: int,
    target: str = "absolute",
    act_on_goal: bool = False,
    input_noise: float = 0.1,
    goal_query: bool = False,
    decoding: str = "parallel",
) -> tuple[GoalHead | None, GoalConditioning | None, nn.Parameter | None]:
    """The goal parts of a VLA whose LM is ``hidden_size`` wide and reads ``goal_dim`` state
    dimensions (0: no state): the head (``weight`` > 0), the conditioning of ``act_on_goal`` and
    the ``goal_query`` slot ``(1, D)``, each None when off; bad settings are clear errors:
    ``weight`` a finite weight >= 0, > 0 only with a state and for either option; ``target``
    one of ``GOAL_TARGETS``; either option with ``decoding='parallel'`` only."""
    if target not in GOAL_TARGETS:
        raise ValueError(f"goal_target={target!r} is not one of {list(GOAL_TARGETS)}")
    if not weight >= 0 or weight == float("inf"):
        raise ValueError(f"goal_loss={weight} must be a finite weight >= 0 (0 = off)")
    if weight > 0 and not goal_dim:
        raise ValueError(
            f"goal_loss={weight} predicts the episode's final state, but this model reads no "
            "state (state_low / state_high are null): set goal_loss=0 or give it the state"
        )
    for name, on, what in (
        ("act_on_goal", act_on_goal, "acts on the goal head's prediction"),
        ("goal_query", goal_query, "gives the goal head a slot"),
    ):
        if on and not weight > 0:
            raise ValueError(
                f"{name}=true {what}, but goal_loss={weight} builds no head: set goal_loss > 0 "
                f"(e.g. 1.0) or {name}=false"
            )
        if on and decoding != "parallel":
            raise ValueError(f"{name}=true needs decoding='parallel' (one forward per chunk)")
    if not weight > 0:
        return None, None, None
    head = GoalHead(hidden_size, goal_outputs(goal_dim, target))
    conditioning = GoalConditioning(goal_dim, hidden_size, input_noise) if act_on_goal else None
    query = nn.Parameter(torch.randn(1, hidden_size) * 0.02) if goal_query else None
    return head, conditioning, query
