"""Where along an episode does a tabletop policy fail: the grasp, the carry, or the placing?

    python benchmarks/episode_phases.py CHECKPOINT [--task pick_place] [--episodes 30]
        [--seed 1000150] [--n-action-steps 2]

Runs the checkpoint on ``--episodes`` scenes of a task with a destination (push, pick_place;
scene k is seed ``seed + k``, so ``make multitask``'s scenes of task j are ``1000000 + 50 j``) and
reads the target's path from the simulator: whether the fingers ever closed on the target or on
another object, how far the target moved, how close to its destination it came, and, for the
failures that moved it, whether it went toward the destination. A policy whose failures never
grasp needs a better approach; one whose failures carry the target and stop short needs a
better placing.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

# benchmarks/envs.py would shadow the envs package: drop this folder from the path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import envs  # noqa: E402, F401  registers the ids
from policies.collect import camera_kwargs  # noqa: E402
from policies.vla_policy import VLAPolicy  # noqa: E402
from vla.checkpoint import read_training_info  # noqa: E402

MOVED = 0.01  # m: the target counts as moved beyond this
TOWARD = 0.7  # cosine between its displacement and the direction to its destination


@dataclass
class Episode:
    success: bool
    grasped_target: bool
    grasped_other: bool
    moved: float  # m, start -> end of the target (x, y)
    closest: float  # m, the target's closest approach to its destination
    toward: float  # cosine of (end - start) with (destination - start); nan if it did not move


def run_episode(env: gym.Env, policy: VLAPolicy, seed: int) -> Episode:
    obs, _ = env.reset(seed=seed)
    policy.reset()
    sim = env.unwrapped
    spec = sim.spec_
    if spec.place is None:
        raise ValueError(f"task {sim.task.name!r} has no destination: use push or pick_place")
    i, view = spec.target, sim._scene_view()
    start, goal = view.object_pos[i, :2].copy(), view.place_xy[spec.place]
    closest = float(np.linalg.norm(start - goal))
    grasped_target = grasped_other = False
    done, info = False, {}
    while not done:
        with torch.no_grad():
            action = policy.act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        view = sim._scene_view()
        grasped_target |= view.grasped(i)
        grasped_other |= any(view.grasped(j) for j in range(len(spec.objects)) if j != i)
        closest = min(closest, float(np.linalg.norm(view.object_pos[i, :2] - goal)))
    shift = view.object_pos[i, :2] - start
    moved = float(np.linalg.norm(shift))
    to_goal = goal - start
    toward = (
        float(shift @ to_goal / (moved * np.linalg.norm(to_goal) + 1e-9))
        if moved > MOVED
        else float("nan")
    )
    return Episode(
        bool(info.get("success", False)), grasped_target, grasped_other, moved, closest, toward
    )


def summarize(episodes: list[Episode]) -> list[tuple[str, str, str]]:
    """(what, all episodes, failures) rows."""
    rows = [episodes, [e for e in episodes if not e.success]]
    out = [("episodes", *(str(len(g)) for g in rows))]

    def share(test) -> tuple[str, str]:
        return tuple(f"{np.mean([test(e) for e in g]):.0%}" if g else "-" for g in rows)

    def mean_cm(field) -> tuple[str, str]:
        return tuple(
            f"{100 * np.mean([getattr(e, field) for e in g]):.1f}" if g else "-" for g in rows
        )

    out.append(("success", *share(lambda e: e.success)))
    out.append(("grasped the target", *share(lambda e: e.grasped_target)))
    out.append(("grasped another object", *share(lambda e: e.grasped_other)))
    out.append(("grasped nothing", *share(lambda e: not (e.grasped_target or e.grasped_other))))
    out.append((f"target moved < {100 * MOVED:.0f} cm", *share(lambda e: e.moved <= MOVED)))
    out.append(("target moved toward its destination", *share(lambda e: e.toward > TOWARD)))
    out.append(
        ("target moved elsewhere", *share(lambda e: e.moved > MOVED and not e.toward > TOWARD))
    )
    out.append(("target moved (cm, mean)", *mean_cm("moved")))
    out.append(("closest to its destination (cm, mean)", *mean_cm("closest")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1_000_150)
    parser.add_argument("--n-action-steps", type=int, default=None,
                        help="actions executed per chunk (default: the whole chunk)")  # fmt: skip
    args = parser.parse_args()
    policy = VLAPolicy.from_checkpoint(
        args.checkpoint, n_action_steps=args.n_action_steps, device="cpu"
    )
    spec = read_training_info(args.checkpoint).env_spec
    env = gym.make("vla/MultiTask-v0", tasks=[args.task], **camera_kwargs(spec))
    try:
        episodes = [run_episode(env, policy, args.seed + k) for k in range(args.episodes)]
    finally:
        env.close()
    table = Table(
        title=f"{args.checkpoint}: {args.task}, {args.episodes} scenes from seed {args.seed}"
    )
    for column in ("", "all episodes", "failures"):
        table.add_column(column)
    for row in summarize(episodes):
        table.add_row(*row)
    table.caption = (f"moved toward: displacement within {np.degrees(np.arccos(TOWARD)):.0f} degrees of "
                     "the direction to the destination")  # fmt: skip
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
