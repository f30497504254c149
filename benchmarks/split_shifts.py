"""Which of the test split's two shifts a touch policy fails on: new wordings or new targets.

    python benchmarks/split_shifts.py CHECKPOINT [--episodes 40] [--seed 2000000] [--json out.json]

The touch task's test split changes two things at once (envs/README.md, Splits): the colour x
shape pairs that may be the target, and the paraphrase templates. This script crosses them:
scenes of each split's targets, each told with the train templates and with the test templates
(the target phrase "<colour> <noun>" is cut from the env's own sentence and put into the other
split's template, cycling through the templates), so a policy's test-split loss splits into a
wording part and a composition part. Cameras, image size and the checkpoint's policy settings
are as in ``make quickstart``; episode k uses seed ``seed + k`` in every cell.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

# benchmarks/envs.py would shadow the envs package: drop this folder from the path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import envs  # noqa: E402, F401  registers the ids
from envs.instructions import TEMPLATES  # noqa: E402
from envs.palette import COLOURS  # noqa: E402
from policies.evaluate import wilson_interval  # noqa: E402
from policies.vla_policy import VLAPolicy  # noqa: E402

TARGET_PHRASE = re.compile(rf"\b({'|'.join(COLOURS)}) (\w+)")


def success_rate(
    policy: VLAPolicy, targets: str, templates: str, episodes: int, seed: int
) -> float:
    """Share of ``episodes`` scenes of ``targets``' split succeeded when told with
    ``templates``' split's wordings."""
    env = gym.make("vla/Touch-v0", image_size=64, cameras=("front", "top"), split=targets)
    wordings = TEMPLATES["touch"][templates]
    wins = 0
    try:
        for k in range(episodes):
            obs, info = env.reset(seed=seed + k)
            text = str(obs["instruction"])
            if templates != targets:
                found = TARGET_PHRASE.search(text)
                if found is None:
                    raise ValueError(f"no '<colour> <noun>' phrase in {text!r}")
                text = wordings[k % len(wordings)].format(obj=found.group(0))
            policy.reset()
            for _ in range(env.spec.max_episode_steps or 50):
                obs, _, terminated, truncated, info = env.step(
                    policy.act({**obs, "instruction": text})
                )
                if terminated or truncated:
                    break
            wins += bool(info.get("success"))
    finally:
        env.close()
    return wins / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2_000_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    policy = VLAPolicy.from_checkpoint(args.checkpoint, device="cpu")
    table = Table(title=f"{args.checkpoint}: touch, {args.episodes} episodes per cell")
    for column in ("targets", "wording", "success", "95% CI"):
        table.add_column(column)
    rows = []
    for targets, templates in (("train", "train"), ("train", "test"), ("test", "train"),
                               ("test", "test")):  # fmt: skip
        rate = success_rate(policy, targets, templates, args.episodes, args.seed)
        low, high = wilson_interval(round(rate * args.episodes), args.episodes)
        rows.append({"targets": targets, "templates": templates, "success_rate": rate,
                     "ci95": [low, high]})  # fmt: skip
        table.add_row(targets, templates, f"{rate:.0%}", f"{low:.0%} - {high:.0%}")
    Console(width=120).print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "episodes": args.episodes,
                       "seed": args.seed, "cells": rows}, f, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
