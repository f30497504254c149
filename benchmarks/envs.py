"""Env speed and scripted-expert quality, one table.

    python benchmarks/envs.py                       # 200 seeded episodes per task and split
    python benchmarks/envs.py --episodes 20 --json runs/bench/envs.json

steps/s: one env, one 96x96 front camera rendered every step, random actions with resets,
pinned to one core (MuJoCo is single-threaded; Mesa's llvmpipe is told to use one thread).
expert success: seeds 0..N-1 per split; "noisy" adds Gaussian action noise (std 0.1).
"""

from __future__ import annotations

import os
import sys

# this file is named envs.py: drop its folder from the path so `import envs` finds the package
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")  # llvmpipe: render on one core

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import envs  # noqa: E402
from policies.rollout import run_episode  # noqa: E402
from policies.scripted_expert import ScriptedExpert  # noqa: E402


def steps_per_s(task_id: str, seconds: float = 3.0) -> float:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    env = gym.make(task_id, image_size=96)
    rng = np.random.default_rng(0)
    try:
        env.reset(seed=0)
        for _ in range(20):  # warm up the renderer
            env.step(rng.uniform(-1, 1, 4))
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
            steps += 1
            if terminated or truncated:
                env.reset(seed=steps)
        return steps / (time.perf_counter() - start)
    finally:
        env.close()


def expert_stats(task_id: str, split: str, episodes: int, noise: float) -> tuple[float, float]:
    env = gym.make(task_id, split=split, privileged=True, image_size=16)
    expert = ScriptedExpert(noise=noise, seed=0)
    try:
        results = [run_episode(env, expert, seed=s) for s in range(episodes)]
    finally:
        env.close()
    return float(np.mean([r.success for r in results])), float(np.mean([r.length for r in results]))


def measure(task_id: str, episodes: int) -> dict:
    train, length = expert_stats(task_id, "train", episodes, 0.0)
    test, _ = expert_stats(task_id, "test", episodes, 0.0)
    noisy, _ = expert_stats(task_id, "train", episodes, 0.1)
    return {
        "expert_success_train": train,
        "expert_success_test": test,
        "expert_success_noisy_train": noisy,
        "mean_episode_length": length,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="tasks measured in parallel")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        futures = {t: pool.submit(measure, t, args.episodes) for t in envs.TASK_IDS}
        results = {t: f.result() for t, f in futures.items()}
    for task_id in envs.TASK_IDS:  # after the pool: nothing else of ours competes for the core
        results[task_id]["steps_per_s"] = steps_per_s(task_id)

    table = Table(
        title=f"envs: {args.episodes} seeded episodes per split ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    )
    for col in (
        "task",
        "steps/s (1 core)",
        "expert train",
        "expert test",
        "expert noisy",
        "mean length",
    ):
        table.add_column(col, justify="right", no_wrap=True)
    for task_id, r in results.items():
        table.add_row(
            task_id,
            f"{r['steps_per_s']:.0f}",
            f"{r['expert_success_train']:.1%}",
            f"{r['expert_success_test']:.1%}",
            f"{r['expert_success_noisy_train']:.1%}",
            f"{r['mean_episode_length']:.1f}",
        )
    console = Console(width=120)
    console.print(table)
    console.print(f"took {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
