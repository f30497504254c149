"""Policies over a batch of envs (a gymnasium vector env): what ``vla-eval`` drives.

A learned policy batches natively (one forward for all envs). Anything that acts on one
observation at a time (a scripted expert) is wrapped in :class:`PerEnvPolicies`, one copy per
env, so the evaluator has a single code path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from policies.policy import Policy


@runtime_checkable
class BatchPolicy(Protocol):
    def reset(self, mask: np.ndarray) -> None:
        """Forget the episodes of the envs where ``mask`` (N,) is True (they just reset)."""

    def act_batch(self, obs: dict[str, Any]) -> np.ndarray:
        """Actions (N, D) for a batch of observations (arrays with a leading N axis)."""


def obs_at(obs: dict[str, Any], i: int) -> dict[str, Any]:
    """The observation of env ``i`` out of a batched (possibly nested) observation dict."""
    return {k: obs_at(v, i) if isinstance(v, dict) else v[i] for k, v in obs.items()}


class PerEnvPolicies:
    """``num_envs`` independent copies of a single-env :class:`Policy` behind one batch API."""

    def __init__(self, make_policy: Callable[[], Policy], num_envs: int):
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be >= 1")
        self.policies = [make_policy() for _ in range(num_envs)]
        self.needs_privileged = any(getattr(p, "needs_privileged", False) for p in self.policies)

    def reset(self, mask: np.ndarray) -> None:
        for policy, m in zip(self.policies, mask, strict=True):
            if m:
                policy.reset()

    def act_batch(self, obs: dict[str, Any]) -> np.ndarray:
        acts = [p.act(obs_at(obs, i)) for i, p in enumerate(self.policies)]
        return np.stack(acts).astype(np.float32)  # (N, D)
