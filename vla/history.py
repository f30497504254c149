"""Which past frames an observation holds (``history``), shared by training windows and policies.

- ``recent``: the last ``T`` frames, the current one last (diffusion policy, Octo). Cheap, but
  an event more than ``T - 1`` steps ago is forgotten.
- ``start``: the episode's first frame, then the last ``T - 1`` (a key frame of the episode
  start, as video VLMs keep sampled past frames). What was shown at the start (which object lit
  up, what the scene looked like before the robot moved) stays in view for the whole episode at
  the cost of one extra frame, however long the episode.

Before the episode has ``T`` frames the first frame is repeated (diffusion_policy's padding), so
a window and a live policy see the same frames at every step.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

History = Literal["recent", "start"]
HISTORIES: tuple[str, ...] = ("recent", "start")


def check_history(history: str, obs_horizon: int) -> str:
    """``history`` if valid with ``obs_horizon`` frames, else a ValueError naming the fix."""
    if history not in HISTORIES:
        raise ValueError(f"history={history!r} must be one of {HISTORIES}")
    if history == "start" and obs_horizon < 2:
        raise ValueError(
            f"history='start' keeps the episode's first frame beside the current one: it needs "
            f"obs_horizon >= 2, got {obs_horizon}"
        )
    return history


def observation_steps(
    t: int | np.ndarray, start: int | np.ndarray, obs_horizon: int, history: str
) -> np.ndarray:
    """Steps ``(T,)`` of the frames an observation at step ``t`` holds (episode from ``start``);
    ``(B, T)`` for arrays ``t`` and ``start`` of shape ``(B,)`` (a batch of windows at once)."""
    t, start = np.asarray(t)[..., None], np.asarray(start)[..., None]  # (..., 1)
    recent = obs_horizon if history == "recent" else obs_horizon - 1
    steps = np.maximum(t - np.arange(recent - 1, -1, -1), start)  # (..., recent) oldest first
    if history == "start":
        steps = np.concatenate([start, steps], axis=-1)  # (..., T) the episode's first frame leads
    return steps.astype(np.int64)  # (..., T)
