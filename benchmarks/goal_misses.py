"""Where a Meta-World policy ends against its goal: the hand's (or the puck's) final offset.

    python benchmarks/goal_misses.py CHECKPOINT [--task reach-v3] [--episodes 20]
        [--seed 1000000] [--n-action-steps 2]
    python benchmarks/goal_misses.py --expert [--steps-after-success 60] ...
    python benchmarks/goal_misses.py CHECKPOINT --trace 10 --episodes 5

Runs the policy on ``--episodes`` held-out layouts of one goal task (seeds ``seed + k``, as
``vla-eval`` numbers them when the task runs alone) with Meta-World's own observation beside it
(``privileged=True``: the goal is never shown to the policy) and prints, per episode, success, the
goal, and ``goal - hand`` at the end (for reach) or ``goal - puck`` (push, pick-place; the peg
for peg-insert-side: its successes end ~19 cm short of the observed goal, 5-7 cm by the judged
distance), in cm,
then the mean offset of the successes and the failures, and the distance Meta-World's success
is judged by at the end (``obj_to_target``: for reach the fingers' centre to the goal, 4.5 cm
below the reported hand; for push and pick-place the puck to the goal). Successes of one task end
at a common offset; failures show on which axis the policy misses.

A checkpoint trained with the hindsight goal loss (``model.goal_loss`` > 0) also says, at the
first step, where it expects the hand to end (``VLAPolicy.predict_goal``): the table then adds
``goal - predicted end`` and ``hand at the end - predicted end``, in cm. A miss whose prediction
was right (successes' offset) but whose hand went elsewhere is control, not seeing the goal.

``--trace K`` also prints each episode's course every K steps: the hand, the task's object (not
for reach), the goal head's predicted end at that step (a checkpoint trained with the goal loss)
and the action, so a miss shows *when* it goes wrong: reach's failures of the MT10 recipe's
checkpoints aim at the marker's height at the first step, then the hand rises and the predicted
end with it; peg-insert-side's carry the peg at another y than the hole's.

``--expert`` runs Meta-World's scripted policy (no noise) instead of a checkpoint, and
``--steps-after-success N`` lets an episode go on N steps after its first success: where the
expert converges against the success radius (reach: 4.2-4.7 cm from the goal, inside 5 cm by
millimetres; README "Meta-World").

The env is the checkpoint's cameras and image size (the expert's: a small top view); needs the
metaworld venv.
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
from policies.metaworld_expert import MetaWorldExpert  # noqa: E402
from policies.vla_policy import VLAPolicy  # noqa: E402
from vla.checkpoint import read_training_info  # noqa: E402

GOAL, HAND = SIM_GOAL, SIM_HAND  # in Meta-World's 39-d observation
PUCK = slice(4, 7)
JUDGED = keys.REWARD_PREFIX + "obj_to_target"  # the distance Meta-World's success thresholds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", nargs="?", help="a VLA checkpoint (or --expert)")
    parser.add_argument("--expert", action="store_true", help="Meta-World's scripted policy")
    parser.add_argument(
        "--task",
        default="reach-v3",
        choices=["reach-v3", "push-v3", "pick-place-v3", "peg-insert-side-v3"],
    )
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1_000_000)
    parser.add_argument("--n-action-steps", type=int, default=2)
    parser.add_argument("--steps-after-success", type=int, default=0)
    parser.add_argument("--trace", type=int, default=0, help="print every K steps (0 = off)")
    args = parser.parse_args()
    if args.expert == (args.checkpoint is not None):
        parser.error("give a CHECKPOINT or --expert (one of them)")
    if args.expert:
        size, cameras, who = 32, ["topview"], "Meta-World's scripted policy"
    else:
        spec = read_training_info(args.checkpoint).env_spec
        size = spec.image_size[0] if spec.image_size else 96
        cameras, who = list(spec.cameras or ("corner",)), args.checkpoint
    env = MetaWorldEnv(tasks=args.task, image_size=size, cameras=cameras, privileged=True,
                       steps_after_success=args.steps_after_success)  # fmt: skip
    if args.expert:
        policy = MetaWorldExpert.for_env(env)
    else:
        policy = VLAPolicy.from_checkpoint(
            args.checkpoint, n_action_steps=args.n_action_steps, device="cpu"
        )
    aims = not args.expert and policy.model.goal_head is not None
    moved = HAND if args.task == "reach-v3" else PUCK
    # Meta-World's observation[4:7] is the task's object: the puck, or peg-insert-side's peg
    name = "hand" if moved == HAND else ("peg" if args.task.startswith("peg") else "puck")
    table = Table(title=f"{who}: {args.task}, {args.episodes} held-out layouts")
    judged = "fingers" if moved == HAND else name
    columns = ("seed", "success", "goal (m)", f"goal - {name} at the end (cm)", "|offset| (cm)",
               f"{judged} to goal at the end (cm)")  # fmt: skip
    if aims:  # and where the hand's x, y, z sit among the dimensions the goal head predicts
        columns += ("goal - predicted end (cm)", "hand at the end - predicted end (cm)")
        dims = policy.model.obs.state_dims.tolist()
        xyz = [dims.index(i) for i in range(3)]
    for col in columns:
        table.add_column(col, justify="right")
    offsets: dict[bool, list[np.ndarray]] = {True: [], False: []}
    errors: dict[bool, list[np.ndarray]] = {True: [], False: []}
    try:
        for seed in range(args.seed, args.seed + args.episodes):
            obs, info = env.reset(seed=seed)
            policy.reset()
            done = ok = False
            aim = None
            course: list[str] = []
            t = 0
            while not done:
                action = policy.act(obs)
                reads = aims and (aim is None or (args.trace and t % args.trace == 0))
                now = policy.predict_goal()[0, xyz] if reads else None  # (3,) m
                if aims and aim is None:  # the first step's prediction of the end
                    aim = now
                if args.trace and t % args.trace == 0:
                    course.append(step_line(t, obs, now, action, moved != HAND))
                obs, _, terminated, truncated, info = env.step(action)
                t += 1
                done, ok = terminated or truncated, ok or bool(info[keys.SUCCESS])
            sim = obs[keys.PRIVILEGED][keys.SIM_OBS]
            offset = (sim[GOAL] - sim[moved]) * 100  # (3,) cm
            offsets[ok].append(offset)
            row = [str(seed), "yes" if ok else "no", str(np.round(sim[GOAL], 3)),
                   str(np.round(offset, 1)), f"{np.linalg.norm(offset):.1f}",
                   f"{100 * info[JUDGED]:.1f}"]  # fmt: skip
            if aim is not None:
                aimed = np.stack([sim[GOAL] - aim, sim[HAND] - aim]) * 100  # (2, 3) cm
                errors[ok].append(aimed)
                row += [str(np.round(a, 1)) for a in aimed]
            table.add_row(*row)
            if course:
                print(
                    f"seed {seed} ({'success' if ok else 'failure'}), goal {np.round(sim[GOAL], 3)}:"
                )
                print("\n".join(course))
    finally:
        env.close()
    for ok in (True, False):
        if offsets[ok]:
            mean = np.mean(offsets[ok], axis=0)  # (3,)
            label = f"mean of {len(offsets[ok])} {'successes' if ok else 'failures'}"
            row = [label, "", "", str(np.round(mean, 1)), "", ""]
            if errors[ok]:
                row += [str(np.round(a, 1)) for a in np.mean(errors[ok], axis=0)]
            table.add_row(*row)
    Console(width=170 if aims else 120).print(table)


def step_line(t: int, obs: dict, aim: np.ndarray | None, action: np.ndarray, obj: bool) -> str:
    """One traced step: hand, object, predicted end (m), their offsets to the goal (cm), action."""
    sim = obs[keys.PRIVILEGED][keys.SIM_OBS]
    goal = sim[GOAL]
    line = f"  t={t:3d} hand {np.round(sim[HAND], 3)} (goal - hand {np.round((goal - sim[HAND]) * 100, 1)} cm)"
    if obj:
        line += f" object {np.round(sim[PUCK], 3)}"
    if aim is not None:
        line += (
            f" predicted end {np.round(aim, 3)} (goal - it {np.round((goal - aim) * 100, 1)} cm)"
        )
    return line + f" action {np.round(action, 2)}"


if __name__ == "__main__":
    main()
