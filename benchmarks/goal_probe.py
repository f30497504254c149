"""Which object a goal-loss touch policy is heading for, before it moves: its goal head read out.

    python benchmarks/goal_probe.py CHECKPOINT [--episodes 50] [--seed 1000000] [--json out.json]

A policy trained with ``model.goal_loss`` > 0 (``vla/goal_head.py``) also predicts where its
episode will end; ``VLA.predict_goal`` reads that out at the first step of a scene. For each
split of the touch task (train: the training colour x shape targets and wordings; test: the
held-out ones), this script sorts the scenes by the object nearest (in x, y) to the predicted end:
the target, an object of the target's colour and another shape, of its shape and another colour,
or neither, and gives the median distance from the target. No episode is run: the first step's
forwards only (``VLAPolicy.predict_goal`` after its first ``act``), so it separates grounding
from control in seconds; the env is the checkpoint's cameras and image size. A policy that
composes colour and shape points at the target on both splits; one that learned whole training
targets points at an object that shares one word with a held-out target.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# benchmarks/envs.py would shadow the envs package: drop this folder from the path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import envs  # noqa: E402, F401  registers the ids
from policies.vla_policy import VLAPolicy  # noqa: E402
from vla.checkpoint import read_training_info  # noqa: E402

KINDS = ("target", "same colour", "same shape", "neither")


def nearest_kind(objects: list, target: int, xy: np.ndarray) -> str:
    """What the object nearest ``xy`` is to the target (``KINDS``)."""
    near = objects[int(np.argmin([np.linalg.norm(o.xy - xy) for o in objects]))]
    goal = objects[target]
    if near is goal:
        return "target"
    if near.colour == goal.colour:
        return "same colour"
    return "same shape" if near.shape == goal.shape else "neither"


def probe(
    policy: VLAPolicy,
    split: str,
    episodes: int,
    seed: int,
    cameras: tuple[str, ...] = ("front", "top"),
    image_size: int = 64,
) -> dict[str, float]:
    """Counts of ``KINDS`` over ``episodes`` scenes of ``split`` (the touch env with the policy's
    ``cameras`` and ``image_size``) and the median x, y distance (m) from the predicted end to
    the target."""
    env = gym.make("vla/Touch-v0", image_size=image_size, cameras=cameras, split=split)
    counts: dict[str, float] = dict.fromkeys(KINDS, 0)
    errors = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        spec = env.unwrapped.spec_
        policy.reset()
        policy.act(obs)  # the first step, as in a rollout; the action is not executed
        xy = policy.predict_goal()[0, :2]  # (2,) the tcp's x, y (state_dims start with x, y)
        counts[nearest_kind(spec.objects, spec.target, xy)] += 1
        errors.append(float(np.linalg.norm(spec.objects[spec.target].xy - xy)))
    env.close()
    return {**counts, "median_error_m": float(np.median(errors))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a touch policy trained with model.goal_loss > 0")
    ap.add_argument("--episodes", type=int, default=50, help="scenes per split")
    ap.add_argument("--seed", type=int, default=1_000_000, help="scene k uses seed + k")
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args()
    policy = VLAPolicy.from_checkpoint(args.checkpoint, device="cpu")
    if policy.model.goal_head is None:
        sys.exit(f"{args.checkpoint} has no goal head: train it with model.goal_loss > 0")
    spec = read_training_info(args.checkpoint).env_spec
    view = dict(cameras=tuple(spec.cameras or ("front", "top")),
                image_size=spec.image_size[0] if spec.image_size else 64)  # fmt: skip
    rows = {s: probe(policy, s, args.episodes, args.seed, **view) for s in ("train", "test")}
    table = Table(title=f"nearest object to the predicted end, {args.episodes} scenes per split")
    for col in ("split", *KINDS, "median distance"):
        table.add_column(col, justify="right")
    for split, row in rows.items():
        cells = [f"{int(row[k])}" for k in KINDS]
        table.add_row(split, *cells, f"{100 * row['median_error_m']:.1f} cm")
    Console().print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"checkpoint": args.checkpoint, "episodes": args.episodes, **rows}, f, indent=2
            )


if __name__ == "__main__":
    main()
