"""Does a push policy go to the pad it is told? Each push scene is run twice: with the env's
instruction, and with the destination pad's colour replaced by the other pad's.

    python benchmarks/push_destination.py CHECKPOINT [--episodes 40] [--seed 3000000]
        [--n-action-steps 2]

A policy that reads the destination pushes the object toward the named pad in both runs: told the
other pad, its object should end nearer that one. The table gives, per run, the success rate,
how far the object moved, and in how many scenes it ended nearer the env's destination pad than
the other pad (the share for the swapped run should fall far below the told run's if the pad's
colour is read; equal shares mean the policy ignores it). The env is the checkpoint's (cameras,
image size), its tasks set to push; episode k uses seed ``seed + k`` in both runs.
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
from policies.evaluate import wilson_interval  # noqa: E402
from policies.vla_policy import VLAPolicy  # noqa: E402
from vla.checkpoint import read_training_info  # noqa: E402


def swap_destination(text: str, colour: str, other: str) -> str:
    """``text`` with the destination's ``colour`` (its last mention: the object comes first)
    replaced by ``other``."""
    i = text.rfind(colour)
    if i < 0:
        raise ValueError(f"{colour!r} is not in {text!r}")
    return text[:i] + other + text[i + len(colour) :]


def run(env: gym.Env, policy: VLAPolicy, seed: int, swapped: bool) -> tuple[bool, float, bool]:
    """One push episode: (success, metres the target moved, ended nearer the env's pad)."""
    obs, _ = env.reset(seed=seed)
    u = env.unwrapped
    spec = u.spec_
    dest, other = spec.places[spec.place], spec.places[1 - spec.place]
    text = swap_destination(obs["instruction"], dest.colour, other.colour) if swapped else None
    policy.reset()
    info: dict = {}
    for _ in range(env.spec.max_episode_steps or 100):
        seen = obs if text is None else {**obs, "instruction": text}
        obs, _, terminated, truncated, info = env.step(policy.act(seen))
        if terminated or truncated:
            break
    view = u._scene_view()  # the simulator's object positions (what the task's success reads)
    xy = view.object_pos[spec.target, :2]
    nearer = np.linalg.norm(xy - dest.xy) < np.linalg.norm(xy - other.xy)
    moved = float(np.linalg.norm(xy - spec.objects[spec.target].xy))
    return bool(info.get("success")), moved, bool(nearer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=3_000_000)
    parser.add_argument("--n-action-steps", type=int, default=2, help="re-plan every N steps")
    args = parser.parse_args()
    policy = VLAPolicy.from_checkpoint(
        args.checkpoint, n_action_steps=args.n_action_steps, device="cpu"
    )
    spec = read_training_info(args.checkpoint).env_spec
    env = gym.make("vla/MultiTask-v0", tasks=["push"], **camera_kwargs(spec))
    table = Table(title=f"{args.checkpoint}: push, {args.episodes} scenes per row")
    for column in ("instruction", "success", "95% CI", "object moved", "ends nearer the env's pad"):
        table.add_column(column)
    try:
        for swapped in (False, True):
            rows = [run(env, policy, args.seed + k, swapped) for k in range(args.episodes)]
            wins, moved, nearer = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
            low, high = wilson_interval(int(wins.sum()), args.episodes)
            name = "the other pad's colour" if swapped else "as the env says"
            table.add_row(name, f"{wins.mean():.0%}", f"{low:.0%} - {high:.0%}",
                          f"{moved.mean() * 100:.1f} cm", f"{nearer.mean():.0%}")  # fmt: skip
    finally:
        env.close()
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
