"""Where along an episode does a tabletop policy fail: which object it goes for, the grasp, the
carry, or the placing?

    python benchmarks/episode_phases.py CHECKPOINT [--task pick_place] [--episodes 30]
        [--seed 1000150] [--n-action-steps 2] [--at 8]

Runs the checkpoint on ``--episodes`` scenes of a task (scene k is seed ``seed + k``, so ``make
multitask``'s scenes of task j are ``1000000 + 50 j``: touch, lift, push, pick_place, relation)
and reads the simulator: what the hand is over at step ``--at`` (the nearest object or place in
x, y: the target, an object of the target's colour and another shape, of its shape and another
colour, another object, the destination or another place), whether the fingers ever closed on
the target or on another object, and, for tasks with a destination (push, pick_place), how far
the target moved, how close to its destination it came, and, for the failures that moved it,
whether it went toward the destination. A policy whose failures head for the target's colour in
another shape misreads shapes; one whose failures never grasp the target it reached needs a
better approach; one whose failures carry the target and stop short needs a better placing.
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
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import envs  # noqa: E402, F401  registers the ids
from policies import rollout  # noqa: E402
from policies.collect import camera_kwargs  # noqa: E402
from policies.rollout import RolloutHook  # noqa: E402
from policies.vla_policy import VLAPolicy  # noqa: E402
from vla.checkpoint import read_training_info  # noqa: E402

MOVED = 0.01  # m: the target counts as moved beyond this
TOWARD = 0.7  # cosine between its displacement and the direction to its destination


# what the hand can be over (nearest in x, y), the heading_of categories in table order
HEADINGS = (
    "the target",
    "the target's colour, another shape",
    "the target's shape, another colour",
    "another object",
    "the destination",
    "another place",
)


@dataclass
class Episode:
    success: bool
    grasped_target: bool
    grasped_other: bool
    moved: float  # m, start -> end of the target (x, y)
    closest: float  # m, the target's closest approach to its destination; nan without one
    toward: float  # cosine of (end - start) with (destination - start); nan if it did not move
    heading: str = ""  # what the hand is over at step --at (HEADINGS; the last step if sooner)


def heading_of(tcp_xy: np.ndarray, object_xy: np.ndarray, spec) -> str:
    """What the hand at ``tcp_xy`` is over: the nearest object (``object_xy``: (n_objects, 2))
    or place of an episode spec, named relative to its target and destination (HEADINGS)."""
    points = [*object_xy, *(p.xy for p in spec.places)]
    k = int(np.argmin([np.linalg.norm(tcp_xy - np.asarray(xy)) for xy in points]))
    if k >= len(object_xy):
        return HEADINGS[4] if k - len(object_xy) == spec.place else HEADINGS[5]
    if k == spec.target:
        return HEADINGS[0]
    near, target = spec.objects[k], spec.objects[spec.target]
    if near.colour == target.colour:
        return HEADINGS[1]
    return HEADINGS[2] if near.shape == target.shape else HEADINGS[3]


class PhaseProbe(RolloutHook):
    """Reads the simulator of a single-env rollout around every step of its episode: the state
    each action is chosen in, and the last one at the end (:meth:`episode` sums it up)."""

    def __init__(self, sim, at: int = 8):
        self.sim, self.at = sim, at

    def on_start(self, vec, episode) -> None:
        spec, view = self.sim.spec_, self.sim._scene_view()
        self.spec, self.start = spec, view.object_pos[spec.target, :2].copy()
        self.goal = None if spec.place is None else view.place_xy[spec.place]
        self.closest = float("nan")
        self.grasped_target = self.grasped_other = False
        self.steps, self.heading = 0, ""

    def on_step(self, vec, obs, actions, running) -> None:
        self._read()  # the state after self.steps steps
        self.steps += 1

    def on_end(self, vec, ended) -> None:
        self._read()  # the last state, before the env resets

    def _read(self) -> None:
        view, spec, i = self.sim._scene_view(), self.spec, self.spec.target
        if self.steps <= self.at:  # the state at step `at`, or the last if it ends sooner
            self.heading = heading_of(view.tcp[:2], view.object_pos[:, :2], spec)
        self.grasped_target |= view.grasped(i)
        self.grasped_other |= any(view.grasped(j) for j in range(len(spec.objects)) if j != i)
        self.end = view.object_pos[i, :2].copy()
        if self.goal is not None:
            self.closest = np.nanmin([self.closest, np.linalg.norm(self.end - self.goal)])

    def episode(self, success: bool) -> Episode:
        shift = self.end - self.start
        moved = float(np.linalg.norm(shift))
        toward = float("nan")
        if self.goal is not None and moved > MOVED:
            to_goal = self.goal - self.start
            toward = float(shift @ to_goal / (moved * np.linalg.norm(to_goal) + 1e-9))
        return Episode(success, self.grasped_target, self.grasped_other, moved,
                       float(self.closest), toward, self.heading)  # fmt: skip


def run_episode(env: gym.Env, policy: VLAPolicy, seed: int, at: int = 8) -> Episode:
    probe = PhaseProbe(env.unwrapped, at)
    return probe.episode(rollout.run_episode(env, policy, seed, hooks=[probe]).success)


def summarize(episodes: list[Episode], at: int = 8) -> list[tuple[str, str, str]]:
    """(what, all episodes, failures) rows; the destination's rows only for a task with one."""
    rows = [episodes, [e for e in episodes if not e.success]]
    out = [("episodes", *(str(len(g)) for g in rows))]

    def share(test) -> tuple[str, str]:
        return tuple(f"{np.mean([test(e) for e in g]):.0%}" if g else "-" for g in rows)

    def mean_cm(field) -> tuple[str, str]:
        return tuple(
            f"{100 * np.mean([getattr(e, field) for e in g]):.1f}" if g else "-" for g in rows
        )

    out.append(("success", *share(lambda e: e.success)))
    for heading in HEADINGS:
        if any(e.heading == heading for e in episodes):
            out.append((f"step {at}: over {heading}", *share(lambda e, h=heading: e.heading == h)))
    out.append(("grasped the target", *share(lambda e: e.grasped_target)))
    out.append(("grasped another object", *share(lambda e: e.grasped_other)))
    out.append(("grasped nothing", *share(lambda e: not (e.grasped_target or e.grasped_other))))
    out.append((f"target moved < {100 * MOVED:.0f} cm", *share(lambda e: e.moved <= MOVED)))
    out.append(("target moved (cm, mean)", *mean_cm("moved")))
    if all(np.isnan(e.closest) for e in episodes):  # no destination: the rest is about one
        return out
    out.append(("target moved toward its destination", *share(lambda e: e.toward > TOWARD)))
    out.append(
        ("target moved elsewhere", *share(lambda e: e.moved > MOVED and not e.toward > TOWARD))
    )
    out.append(("closest to its destination (cm, mean)", *mean_cm("closest")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1_000_150)
    parser.add_argument(
        "--n-action-steps", type=int, default=None, help="actions executed per chunk (default: all)"
    )
    parser.add_argument("--at", type=int, default=8, help="the step to read what the hand is over")
    args = parser.parse_args()
    if args.at < 1:
        parser.error(f"--at {args.at} must be >= 1")
    policy = VLAPolicy.from_checkpoint(
        args.checkpoint, n_action_steps=args.n_action_steps, device="cpu"
    )
    spec = read_training_info(args.checkpoint).env_spec
    env = gym.make("vla/MultiTask-v0", tasks=[args.task], **camera_kwargs(spec))
    try:
        episodes = [run_episode(env, policy, args.seed + k, args.at) for k in range(args.episodes)]
    finally:
        env.close()
    table = Table(
        title=f"{args.checkpoint}: {args.task}, {args.episodes} scenes from seed {args.seed}"
    )
    for column in ("", "all episodes", "failures"):
        table.add_column(column)
    for row in summarize(episodes, args.at):
        table.add_row(*row)
    table.caption = (f"moved toward: displacement within {np.degrees(np.arccos(TOWARD)):.0f} degrees of "
                     "the direction to the destination")  # fmt: skip
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
