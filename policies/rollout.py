"""Run a Policy in an env: the one episode loop every evaluator, demo and benchmark shares."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from envs import keys
from policies.policy import Policy


@dataclass
class EpisodeResult:
    success: bool
    length: int
    instruction: str
    task: str
    seed: int | None
    frames: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8 each, if rendered


def run_episode(
    env: gym.Env, policy: Policy, seed: int | None = None, render: bool = False
) -> EpisodeResult:
    """One episode from ``reset(seed=seed)`` until terminated or truncated.

    With ``render=True`` the env must have ``render_mode="rgb_array"``; every frame from the
    reset state on is kept (length + 1 frames).
    """
    obs, info = env.reset(seed=seed)
    policy.reset()
    frames = [env.render()] if render else []
    steps, success = 0, False
    while True:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        steps += 1
        success = success or bool(info.get("success", False))
        if render:
            frames.append(env.render())
        if terminated or truncated:
            break
    return EpisodeResult(
        success=success,
        length=steps,
        instruction=str(obs.get(keys.INSTRUCTION, "")),
        task=str(info.get("task", "")),
        seed=seed,
        frames=frames,
    )
