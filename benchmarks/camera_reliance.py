"""Which cameras a policy acts on: swap one camera's image between scenes and see what moves.

    python benchmarks/camera_reliance.py CHECKPOINT [--task reach-v3] [--episodes 20]
        [--seed 1000000] [--steps 0] [--env-id vla/MetaWorld-v0]

For each of N held-out scenes (seeds ``seed + k``), the policy's first chunk is predicted from the
scene's own observation, then again with one camera's image taken from the next scene (every
other camera, the state and the instruction kept) and with that camera black. The table gives,
per camera, the mean absolute change of the chunk in units of the action range's half-width
(1.0 = from the middle of the range to its edge), beside the change when the whole observation
comes from the next scene. A camera whose swap moves nothing is one the policy does not read,
whatever it shows (README "Meta-World": the recipe's corner camera, 0.002-0.03 against 0.2-0.35
for its wrist camera); a row for the state swaps the proprioception alone the same way.
``--steps N`` first lets the policy act N steps in every scene and
measures there instead of at the start (a later phase: carrying a puck to its goal); a scene that
ends before is measured where it ended.

The env is the checkpoint's (its store's env id, cameras and image size); ``--task`` picks a task
of a multi-task env (``tasks=``). Needs the env's package (the metaworld venv for Meta-World).
"""

from __future__ import annotations

import argparse
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
from policies.collect import camera_kwargs  # noqa: E402
from policies.rollout import observation_after  # noqa: E402
from policies.vla_policy import VLAPolicy  # noqa: E402
from vla.checkpoint import read_training_info  # noqa: E402


def first_chunks(policy: VLAPolicy, observations: list[dict]) -> np.ndarray:
    """The first predicted chunk of every observation, ``(N, H, D)``."""
    chunks = []
    for obs in observations:
        policy.reset()
        chunks.append(policy.act_chunk(obs))
    return np.stack(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--task", default=None, help="tasks= of a multi-task env")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=0, help="act this many steps first")
    parser.add_argument("--env-id", default=None, help="default: the checkpoint store's env id")
    args = parser.parse_args()
    if args.episodes < 2:
        parser.error("--episodes must be >= 2: each scene borrows the next scene's images")
    policy = VLAPolicy.from_checkpoint(args.checkpoint, device="cpu")
    spec = read_training_info(args.checkpoint).env_spec
    env_id = args.env_id or spec.env_id
    if not env_id:
        parser.error("the checkpoint names no env id: pass --env-id")
    kwargs = camera_kwargs(spec)
    if args.task:
        kwargs["tasks"] = args.task
    env = gym.make(env_id, **kwargs)
    try:
        scenes = [
            observation_after(env, policy, args.seed + k, args.steps) for k in range(args.episodes)
        ]
    finally:
        env.close()
    missing = [k for k in policy.image_keys if k not in scenes[0]]
    if missing:
        raise SystemExit(f"the env's observations lack the policy's cameras {missing}")
    space = env.action_space
    half = (np.asarray(space.high) - np.asarray(space.low)) / 2  # (D,)
    base = first_chunks(policy, scenes)  # (N, H, D)
    nxt = scenes[1:] + scenes[:1]

    def change(observations: list[dict]) -> float:
        return float((np.abs(first_chunks(policy, observations) - base) / half).mean())

    title = f"{args.checkpoint}: first chunk's mean |change| / half range, {args.episodes} scenes"
    title += f" after {args.steps} steps" if args.steps else ""
    table = Table(title=title + (f" of {args.task}" if args.task else ""))
    for column in ("camera (image key)", "swapped with the next scene's", "black"):
        table.add_column(column)
    for key in policy.image_keys:
        swapped = [{**o, key: n[key]} for o, n in zip(scenes, nxt, strict=True)]
        black = [{**o, key: np.zeros_like(o[key])} for o in scenes]
        table.add_row(key, f"{change(swapped):.3f}", f"{change(black):.3f}")
    if "state" in scenes[0]:  # the hand's own reading: its place can say the way (README)
        swapped = [{**o, "state": n["state"]} for o, n in zip(scenes, nxt, strict=True)]
        table.add_row("the state", f"{change(swapped):.3f}", "")
    whole = [{**n, "instruction": o["instruction"]} for o, n in zip(scenes, nxt, strict=True)]
    table.add_row("all cameras and the state", f"{change(whole):.3f}", "")
    Console().print(table)


if __name__ == "__main__":
    main()
