"""Does a Meta-World policy take its way from its images or from where its own hand is?

    python benchmarks/state_shortcut.py CHECKPOINT [--task reach-v3] [--episodes 20]
        [--seed 1000000] [--steps 10 25]

Every Meta-World episode of a task starts from one hand position, and the scripted experts move
in nearly straight lines, so in the demonstrations the hand's place along its way already says
where the way goes: a policy can learn to read its direction off its own state (proprioception)
and then never stops where its images show the goal (causal confusion, de Haan et al. 2019).

For ``--episodes`` held-out layouts of ``--task`` (seeds ``seed + k``, as ``vla-eval`` numbers
them when the task runs alone), the policy acts ``--steps`` steps, then predicts its next action
again from layout k's images and instruction with layout k + 1's state (its hand elsewhere).
Per axis, the table gives the correlation over the layouts of that action with the way an
image-led policy would go, ``goal(k) - hand(k + 1)`` (layout k's goal: Meta-World's own, which
the policy never sees), and with the way the state's own layout goes, ``goal(k + 1) - hand(k +
1)`` (what a policy following its hand's place would do). Where the second wins, the state, not
the images, steers; the first column gives the action's correlation with its own layout's
way, each layout with its own state, as a reference.
The env is the checkpoint's cameras and image size; needs the metaworld venv.
"""

from __future__ import annotations

import argparse
import os
import sys

# benchmarks/envs.py would shadow the envs package: drop this folder from the path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from envs import keys  # noqa: E402
from envs.metaworld_env import SIM_GOAL, SIM_HAND, MetaWorldEnv  # noqa: E402
from policies.rollout import observation_after  # noqa: E402
from policies.vla_policy import VLAPolicy  # noqa: E402
from vla.checkpoint import read_training_info  # noqa: E402


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation of two equally long series (nan where one is constant)."""
    a, b = a - a.mean(), b - b.mean()
    scale = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / scale) if scale > 0 else float("nan")


def next_action(policy: VLAPolicy, obs: dict) -> np.ndarray:
    """The first action of a fresh chunk for ``obs``: its x, y, z ``(3,)``."""
    policy.reset()
    return np.asarray(policy.act_chunk(obs))[0, :3]


def shortcut_rows(policy: VLAPolicy, scenes: list[dict]) -> list[tuple[str, float, float, float]]:
    """Per axis: the action's correlation with its own layout's way, with the images' layout's
    way and with the state's layout's way, the state taken from the next layout."""
    sim = [s[keys.PRIVILEGED][keys.SIM_OBS] for s in scenes]
    goal = np.stack([o[SIM_GOAL] for o in sim])  # (N, 3)
    hand = np.stack([o[SIM_HAND] for o in sim])  # (N, 3)
    nxt = np.roll(np.arange(len(scenes)), -1)  # layout k's state comes from k + 1
    own = np.stack([next_action(policy, s) for s in scenes])  # (N, 3)
    mixed = [{**s, keys.STATE: scenes[j][keys.STATE]} for s, j in zip(scenes, nxt, strict=True)]
    swapped = np.stack([next_action(policy, s) for s in mixed])  # (N, 3)
    rows = []
    for d, axis in enumerate("xyz"):
        rows.append((
            axis,
            correlation(own[:, d], goal[:, d] - hand[:, d]),
            correlation(swapped[:, d], goal[:, d] - hand[nxt, d]),
            correlation(swapped[:, d], goal[nxt, d] - hand[nxt, d]),
        ))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--task", default="reach-v3", help="a Meta-World v3 task")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 25])
    args = parser.parse_args()
    if args.episodes < 3:
        parser.error("--episodes must be >= 3: a correlation over the layouts")
    spec = read_training_info(args.checkpoint).env_spec
    size = spec.image_size[0] if spec.image_size else 96
    env = MetaWorldEnv(tasks=args.task, image_size=size,
                       cameras=list(spec.cameras or ("corner",)), privileged=True)  # fmt: skip
    policy = VLAPolicy.from_checkpoint(args.checkpoint, device="cpu")
    seeds = range(args.seed, args.seed + args.episodes)
    table = Table(title=f"{args.checkpoint}: {args.task}, {args.episodes} held-out layouts")
    for col in ("step", "axis", "own state: corr(action, goal - hand)",
                "next layout's state: corr with the images' goal - hand",
                "corr with the state's own goal - hand"):  # fmt: skip
        table.add_column(col, justify="right")
    try:
        for steps in args.steps:
            scenes = [observation_after(env, policy, seed, steps) for seed in seeds]
            for axis, own, images, state in shortcut_rows(policy, scenes):
                table.add_row(str(steps), axis, f"{own:+.2f}", f"{images:+.2f}", f"{state:+.2f}")
    finally:
        env.close()
    Console().print(table)


if __name__ == "__main__":
    main()
