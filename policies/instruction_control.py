"""Language controls for evaluation: does the policy's success come from reading the instruction?

``given`` (the env's instruction), ``shuffled`` (each episode is given another episode's
instruction, one that names another target: a policy that reads it goes to the wrong object, so
success falls towards chance) and ``empty`` (no instruction at all). A success rate that does not
fall under ``shuffled`` hides a policy that ignores what it is told — LIBERO-plus (2025) found
published VLAs largely do.

The substitute instructions are fixed per episode seed before the first step (a probe env is
reset with every seed to read its instruction and target), so a control run is as reproducible
as the normal one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CONTROLS = ("given", "shuffled", "empty")


def control_instructions(
    make_env: Any, seeds: Sequence[int], control: str
) -> dict[int, str] | None:
    """``{seed: instruction the policy is given}``, or None for ``given`` (nothing replaced).

    ``make_env()`` builds an env like the evaluated ones (same task, split and layout).
    """
    if control not in CONTROLS:
        raise ValueError(f"instruction={control!r} must be one of {list(CONTROLS)}")
    if control == "given":
        return None
    if control == "empty":
        return {s: "" for s in seeds}
    env = make_env()
    try:
        shown = []
        for s in seeds:
            _, info = env.reset(seed=s)
            shown.append((str(info["instruction"]), str(info.get("target", info["instruction"]))))
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


def replace_instructions(obs: dict[str, Any], key: str, given: list[str | None]) -> dict:
    """A copy of a vector env's batch ``obs`` with ``obs[key][i]`` replaced where ``given[i]``
    is not None."""
    texts = [str(t) if g is None else g for t, g in zip(obs[key], given, strict=True)]
    return {**obs, key: np.array(texts, dtype=object)}  # (N,) str
