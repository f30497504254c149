"""Language controls for evaluation: does the policy's success come from reading the instruction?

``given`` (the env's instruction), ``shuffled`` (each episode is given another episode's
instruction, one that names another target: a policy that reads it goes to the wrong object, so
success falls towards chance) and ``empty`` (no instruction at all). A success rate that does not
fall under ``shuffled`` hides a policy that ignores what it is told — LIBERO-plus (2025) found
published VLAs largely do.

The substitute instructions are fixed per episode seed before the first step (a probe env is
reset with every seed to read its instruction and target), so a control run is as reproducible
as the normal one; :class:`GivenInstruction` puts them into the observations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym

from envs import keys

CONTROLS = ("given", "shuffled", "empty")


def control_instructions(
    parts: Sequence[tuple[Callable[[], gym.Env], Sequence[int]]], control: str
) -> dict[int, str] | None:
    """``{seed: instruction the policy is given}``, or None for ``given`` (nothing replaced).

    ``parts``: ``(make_env, seeds)`` for every part of the evaluation (one per task when each
    task is evaluated on its own), ``make_env()`` building an env like the evaluated ones (same
    task, split and layout). Substitutes come from the whole evaluation, so a task's episodes
    are told other tasks' instructions, not only other wordings of their own. What an
    instruction names is ``info["target"]`` (an object), else ``info["task"]`` (Meta-World: the
    task is what its instruction asks for), else the sentence itself.
    """
    if control not in CONTROLS:
        raise ValueError(f"instruction={control!r} must be one of {list(CONTROLS)}")
    seeds = [s for _, part in parts for s in part]
    if control == "given":
        return None
    if control == "empty":
        return {s: "" for s in seeds}
    shown = []
    for make_env, part in parts:
        env = make_env()
        try:
            for s in part:
                _, info = env.reset(seed=s)
                named = info.get("target", info.get("task", info["instruction"]))
                shown.append((str(info["instruction"]), str(named)))
        finally:
            env.close()
    given = {}
    for k, s in enumerate(seeds):
        target = shown[k][1]
        # the next episode (cyclically) whose instruction names another target
        other = next(
            (shown[(k + j) % len(seeds)] for j in range(1, len(seeds))
             if shown[(k + j) % len(seeds)][1] != target),
            None,
        )  # fmt: skip
        if other is None:
            raise ValueError(
                f"instruction=shuffled needs episodes with different targets, but all "
                f"{len(seeds)} name {target!r}: evaluate more episodes"
            )
        given[s] = other[0]
    return given


class GivenInstruction(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """The env with ``obs["instruction"]`` replaced by ``given[seed]`` in episodes reset with a
    seed in ``given`` (the others unchanged). A wrapper rather than an edit of the observations
    the policy sees, so that wrappers outside it (``SpokenInstructionEnv``) hear the given
    sentence too; the reset info keeps the env's own (``instruction``).
    """

    def __init__(self, env: gym.Env, given: Mapping[int, str]):
        gym.utils.RecordConstructorArgs.__init__(self, given=given)  # env.spec can remake it
        gym.Wrapper.__init__(self, env)
        self.given = dict(given)
        self._text: str | None = None  # this episode's given instruction, None: the env's

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._text = self.given.get(seed)
        return self._told(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._told(obs), reward, terminated, truncated, info

    def _told(self, obs: dict[str, Any]) -> dict[str, Any]:
        return obs if self._text is None else {**obs, keys.INSTRUCTION: self._text}
