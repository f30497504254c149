"""Which of the test split's two shifts a touch policy fails on: new wordings or new targets.

    python benchmarks/split_shifts.py CHECKPOINT [--episodes 40] [--seed 2000000] [--json out.json]
        [--wordings "touch the {obj}" "poke the {obj}" ...] [--by-target test]

The touch task's test split changes two things at once (envs/README.md, Splits): the colour x
shape pairs that may be the target, and the paraphrase templates. This script crosses them:
scenes of each split's targets, each told with the train templates and with the test templates
(the target phrase "<colour> <noun>" is cut from the env's own sentence and put into the other
split's template, cycling through the templates), so a policy's test-split loss splits into a
wording part and a composition part. Cameras, image size and the checkpoint's policy settings
are as in ``make quickstart``; episode k uses seed ``seed + k`` in every cell. ``--wordings``
replaces the two template sets by the given templates (``{obj}`` = "<colour> <noun>"), one cell
per template and target split: which wording costs what, e.g. a long template never seen in
training against a short one. ``--by-target SPLIT`` gives one cell per colour x shape target of
that split instead (the env's ``options["target"]`` forces it in every scene; told with each of
``--wordings``, or the env's own sentence): which held-out pairs a policy fails to compose.

Each failure is also sorted by what the gripper touched first instead of the target (the env's
``info["touched"]``): an object of the target's colour and another shape, of its shape and
another colour, of neither, or nothing before the episode's steps ran out. A policy that
composes colour and shape errs on one attribute at a time; one that pattern-matches whole
training targets also touches objects that share neither.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence

# benchmarks/envs.py would shadow the envs package: drop this folder from the path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import envs  # noqa: E402, F401  registers the ids
from envs import keys  # noqa: E402
from envs.instructions import TEMPLATES  # noqa: E402
from envs.palette import COLOURS, combos  # noqa: E402
from policies.evaluate import wilson_interval  # noqa: E402
from policies.vla_policy import VLAPolicy  # noqa: E402

TARGET_PHRASE = re.compile(rf"\b({'|'.join(COLOURS)}) (\w+)")


OUTCOMES = ("success", "same colour", "same shape", "neither", "no touch")


def outcome(target: str, touched: list[str]) -> str:
    """A failed episode's kind, from the first wrong object touched (``"<colour> <shape>"``)."""
    wrong = [name for name in touched if name != target]
    if not wrong:
        return "no touch"
    colour, shape = target.split(" ", 1)
    other_colour, other_shape = wrong[0].split(" ", 1)
    if other_colour == colour:
        return "same colour"
    return "same shape" if other_shape == shape else "neither"


def run_cell(
    policy: VLAPolicy,
    targets: str,
    wordings: Sequence[str] | None,
    episodes: int,
    seed: int,
    target: tuple[str, str] | None = None,
) -> dict[str, int]:
    """Outcome counts (``OUTCOMES``) of ``episodes`` scenes of ``targets``' split, each told
    with the next of ``wordings`` (templates with ``{obj}``; None: the env's own sentence);
    ``target`` = (colour, shape) of that split makes it the target of every scene."""
    env = gym.make("vla/Touch-v0", image_size=64, cameras=("front", "top"), split=targets)
    counts = dict.fromkeys(OUTCOMES, 0)
    options = None if target is None else {"target": tuple(target)}
    try:
        for k in range(episodes):
            obs, info = env.reset(seed=seed + k, options=options)
            target_name = str(info[keys.TARGET])
            text = str(obs["instruction"])
            if wordings is not None:
                found = TARGET_PHRASE.search(text)
                if found is None:
                    raise ValueError(f"no '<colour> <noun>' phrase in {text!r}")
                text = wordings[k % len(wordings)].format(obj=found.group(0))
            policy.reset()
            touched: list[str] = []
            for _ in range(env.spec.max_episode_steps or 50):
                obs, _, terminated, truncated, info = env.step(
                    policy.act({**obs, "instruction": text})
                )
                touched += [n for n in info[keys.TOUCHED] if n not in touched]
                if terminated or truncated:
                    break
            counts["success" if info.get("success") else outcome(target_name, touched)] += 1
    finally:
        env.close()
    return counts


# (target split, wording label, templates or None for the env's own, forced target or None)
Cell = tuple[str, str, "Sequence[str] | None", "tuple[str, str] | None"]


def split_cells(wordings: Sequence[str] | None, by_target: str | None) -> list[Cell]:
    """The cells to run: both target splits x both template sets; with ``wordings``, x each
    wording instead; with ``by_target``, each colour x shape target of that split x each wording
    (or the env's own sentence)."""
    if by_target is not None:
        told = [(w, [w]) for w in wordings] if wordings else [(by_target, None)]
        return [(by_target, label, ws, pair) for pair in combos(by_target) for label, ws in told]
    if wordings:
        return [(t, w, [w], None) for t in ("train", "test") for w in wordings]
    return [
        (targets, split, None if split == targets else TEMPLATES["touch"][split], None)
        for targets in ("train", "test")
        for split in ("train", "test")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2_000_000)
    parser.add_argument("--json", default=None)
    parser.add_argument("--wordings", nargs="+", default=None,
                        help="templates with {obj} instead of the train / test template sets")  # fmt: skip
    parser.add_argument("--by-target", choices=("train", "test"), default=None,
                        help="one cell per colour x shape target of this split")  # fmt: skip
    args = parser.parse_args()
    for wording in args.wordings or ():
        if "{obj}" not in wording:
            parser.error(f"--wordings {wording!r} has no {{obj}} slot for the target")
    cells = split_cells(args.wordings, args.by_target)
    policy = VLAPolicy.from_checkpoint(args.checkpoint, device="cpu")
    table = Table(title=f"{args.checkpoint}: touch, {args.episodes} episodes per cell")
    for column in ("targets", "wording", "success", "95% CI", *OUTCOMES[1:]):
        table.add_column(column)
    rows = []
    for targets, templates, wordings, target in cells:
        counts = run_cell(policy, targets, wordings, args.episodes, args.seed, target)
        rate = counts["success"] / args.episodes
        low, high = wilson_interval(counts["success"], args.episodes)
        rows.append({"targets": targets, "templates": templates, "success_rate": rate,
                     "ci95": [low, high], "outcomes": counts,
                     "target": None if target is None else " ".join(target)})  # fmt: skip
        label = targets if target is None else f"{targets}: {' '.join(target)}"
        table.add_row(label, templates, f"{rate:.0%}", f"{low:.0%} - {high:.0%}",
                      *(str(counts[o]) for o in OUTCOMES[1:]))  # fmt: skip
    Console(width=140).print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "episodes": args.episodes,
                       "seed": args.seed, "cells": rows}, f, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
