"""Watch a task: ``python -m policies.show vla/Touch-v0 --episodes 3 --out runs/show``.

Runs the scripted expert and writes one mp4 per episode with the instruction and the outcome
drawn on the frames (green border: success, red: failure).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402

import envs  # noqa: E402
from policies.rollout import run_episode  # noqa: E402
from policies.scripted_expert import ScriptedExpert  # noqa: E402
from policies.video import annotate, write_video  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task_id", choices=envs.TASK_IDS)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/show"))
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256, help="video resolution (pixels)")
    parser.add_argument("--noise", type=float, default=0.0, help="expert action noise std")
    args = parser.parse_args(argv)

    env = gym.make(
        args.task_id, split=args.split, privileged=True, render_mode="rgb_array",
        render_size=args.size, image_size=32,
    )  # fmt: skip
    expert = ScriptedExpert(noise=args.noise, seed=args.seed)
    try:
        for k in range(args.episodes):
            ep = run_episode(env, expert, seed=args.seed + k, render=True)
            frames = [annotate(f, ep.instruction) for f in ep.frames[:-1]]
            frames += [annotate(ep.frames[-1], ep.instruction, ep.success)] * 5  # hold the end
            name = f"{args.task_id.split('/')[1]}_seed{args.seed + k}.mp4"
            path = write_video(args.out / name, frames, fps=env.metadata["render_fps"])
            verdict = "success" if ep.success else "FAILURE"
            print(f"{path}  {verdict} in {ep.length} steps  {ep.instruction!r}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
