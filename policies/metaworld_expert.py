"""Meta-World's own scripted policies behind this package's Policy protocol, with DART noise.

Meta-World ships one hand-written policy per task (``metaworld.policies``), reading its full
observation (goal included). :class:`MetaWorldExpert` runs the one of the episode's task (the env
names it in ``privileged``), so ``vla-collect`` and ``vla-eval policy=metaworld_expert`` treat it
like the tabletop's :class:`policies.scripted_expert.ScriptedExpert`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from envs import keys


class MetaWorldExpert:
    """The Meta-World scripted policy of whichever task the env runs.

    Args:
        noise: std of Gaussian noise added to every action dimension (then clipped to [-1, 1]):
            the env runs the noisy action, ``clean_action`` keeps the expert's (DART).
        seed: seed of the noise stream.
    """

    needs_privileged = True  # evaluators make the env with privileged=True for it

    def __init__(self, noise: float = 0.0, seed: int | None = None):
        if noise < 0:
            raise ValueError(f"noise={noise} must be >= 0 (std of the action noise)")
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self._policies: dict[str, Any] = {}
        self.clean_action = np.zeros(4, np.float32)

    @classmethod
    def for_env(cls, env: Any, noise: float = 0.0, seed: int | None = None) -> MetaWorldExpert:
        """The expert ``vla-collect`` makes for ``env`` (Meta-World actions need no scale)."""
        return cls(noise=noise, seed=seed)

    def reset(self) -> None:
        """Meta-World's policies keep no state between steps."""

    def _policy(self, task: str) -> Any:
        if task not in self._policies:
            from metaworld.policies import ENV_POLICY_MAP

            # its policies' gains exceed the action range by design (the env clips, as we do)
            warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")

            if task not in ENV_POLICY_MAP:
                raise ValueError(f"Meta-World has no scripted policy for task {task!r}")
            self._policies[task] = ENV_POLICY_MAP[task]()
        return self._policies[task]

    def act(self, obs: dict) -> np.ndarray:
        if keys.PRIVILEGED not in obs:
            raise ValueError(
                "the Meta-World expert needs its full observation: make the env with "
                "privileged=True"
            )
        p = obs[keys.PRIVILEGED]
        action = np.clip(self._policy(str(p[keys.TASK_NAME])).get_action(p[keys.SIM_OBS]), -1, 1)
        self.clean_action = action.astype(np.float32)  # the label a learner should copy
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, size=action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def act_chunk(self, obs: dict) -> np.ndarray:
        return self.act(obs)[None]  # (1, 4): a closed-loop expert plans one step at a time
