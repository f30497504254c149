"""The Policy protocol: everything that evaluates takes one, so scripted experts and learned
policies go through the same rollout code."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    def reset(self) -> None:
        """Forget everything about the previous episode (queues, phases, RNG streams stay)."""

    def act(self, obs: dict) -> np.ndarray:
        """One action (D,) for one observation dict from the env."""

    def act_chunk(self, obs: dict) -> np.ndarray:
        """A chunk of future actions (H, D); ``act`` returns its first row or a queued one."""
