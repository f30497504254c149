"""Data pipeline speed and size, one table.

    python benchmarks/data.py                          # 100 synthetic episodes of 100 steps
    python benchmarks/data.py --json runs/bench/data.json

The store is synthetic (``vla.data.synthetic_episode``), made to look and compress like rendered
tabletop frames rather than noise: a smooth table (bilinear blend of a 4x4 grid of random colours)
with a faint static wood grain, three antialiased coloured blocks and a grey gripper disc that
moves along smoothstep paths to a block and carries it to a goal; 96x96 single camera, 7-d state,
4-d action, zstd level 3, 32-frame image chunks (the EpisodeWriter defaults).

write: ``EpisodeWriter.append`` of one 100-step episode at a time (each commit atomic).
loader: ``EpisodeDataModule`` training loader (batch 64, 2 workers, persistent, shuffled,
``cache=True`` unless "no cache"), obs_horizon 1 (or 2 for "history2"), action_horizon 8;
samples/s over ``--seconds`` after the first batch (worker start-up excluded).
collect: ``vla-collect`` of the five tasks (multi-task env, 96x96), worker start-up included;
bytes_per_frame is measured on that real store.
"""

from __future__ import annotations

import os
import sys

# benchmarks/envs.py would shadow the envs package: drop this folder from the import path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from vla import keys  # noqa: E402
from vla.data import EpisodeStore, EpisodeWriter, synthetic_episode  # noqa: E402

ENV_SPEC = {
    "action_space": {"low": [-1.0] * 4, "high": [1.0] * 4, "shape": [4]},
    "control_hz": 10,
    "cameras": {keys.IMAGE: [96, 96]},
}


def make_store(path: Path, episodes: int, steps: int) -> float:
    """Write the synthetic store; returns writer episodes/s (generation not counted)."""
    rng = np.random.default_rng(0)
    spent = 0.0
    with EpisodeWriter.create_or_open(path, env_spec=ENV_SPEC) as writer:
        for _ in range(episodes):
            episode, meta = synthetic_episode(rng, length=steps, image_size=96)
            start = time.perf_counter()
            writer.append(episode, meta)
            spent += time.perf_counter() - start
    return episodes / spent


def loader_samples_per_s(path: Path, obs_horizon: int, cache: bool, seconds: float) -> float:
    from vla.data import EpisodeDataModule  # torch + Lightning: not in collector workers

    module = EpisodeDataModule(
        str(path),
        batch_size=64,
        num_workers=2,
        obs_horizon=obs_horizon,
        action_horizon=8,
        cache=cache,
    )
    module.setup("fit")
    loader = module.train_dataloader()
    samples, start = 0, None
    while start is None or time.perf_counter() - start < seconds:
        for batch in loader:
            if start is None:  # the first batch pays for starting the workers
                start = time.perf_counter()
                continue
            samples += len(batch[keys.INSTRUCTION])
            if time.perf_counter() - start >= seconds:
                break
    rate = samples / (time.perf_counter() - start)
    del loader, module  # stops the persistent workers before the next measurement
    return rate


COLLECT_ENV = {"_target_": "gymnasium.make", "id": "envs:vla/MultiTask-v0", "image_size": 96}


def collect_episodes_per_s(path: Path, workers: int, episodes: int) -> float:
    """Expert episodes/s of ``vla-collect`` (all five tasks, 96x96 front camera) into ``path``,
    process start-up included: what a user waits for."""
    from policies.collect import collect

    return collect(COLLECT_ENV, path, episodes, workers=workers, progress=False).episodes_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100, help="steps per episode")
    parser.add_argument("--seconds", type=float, default=5.0, help="per loader measurement")
    parser.add_argument("--collect", type=int, default=300, help="expert episodes to collect")
    parser.add_argument("--json", type=Path, help="also write the results here (flat object)")
    args = parser.parse_args()

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.zarr"
        with console.status(f"writing {args.episodes} synthetic episodes"):
            write_rate = make_store(path, args.episodes, args.steps)
        # (name, unit, how to measure): rows run in this order
        rows: list[tuple[str, str, Callable[[], float]]] = [
            ("write_episodes_per_s", "episodes/s", lambda: write_rate),
            ("bytes_per_frame_synthetic", "B/step", lambda: EpisodeStore(path).bytes_per_frame()),
            ("loader_samples_per_s", "samples/s", lambda: loader_samples_per_s(path, 1, True, args.seconds)),
            ("loader_samples_per_s_history2", "samples/s", lambda: loader_samples_per_s(path, 2, True, args.seconds)),
            ("loader_samples_per_s_nocache", "samples/s", lambda: loader_samples_per_s(path, 1, False, args.seconds)),
            ("collect_episodes_per_s_1worker", "episodes/s", lambda: collect_episodes_per_s(Path(tmp) / "c1.zarr", 1, args.collect)),
            ("collect_episodes_per_s_2workers", "episodes/s", lambda: collect_episodes_per_s(Path(tmp) / "c2.zarr", 2, args.collect)),
            # bytes per rendered 96x96 frame (+ state, action) in the store just collected
            ("bytes_per_frame", "B/step", lambda: EpisodeStore(Path(tmp) / "c2.zarr").bytes_per_frame()),
        ]  # fmt: skip
        results: dict[str, float] = {}
        for name, _, measure in rows:
            with console.status(f"measuring {name}"):
                results[name] = float(measure())

    machine = f"{os.cpu_count()}-core {platform.processor() or platform.machine()} CPU"
    table = Table(title=f"data pipeline ({machine})")
    for column in ("metric", "value", "unit"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, unit, _ in rows:
        value = results[name]
        table.add_row(name, f"{value:,.1f}" if value < 100 else f"{value:,.0f}", unit)
    console.print(table)
    console.print(f"store: {args.episodes} synthetic episodes x {args.steps} steps, 96x96 camera")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
