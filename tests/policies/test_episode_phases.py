"""benchmarks/episode_phases.py on a tiny checkpoint: every row prints, for all episodes and
for the failures; a task without a destination prints no destination rows; what the hand is
over is named relative to the target and the destination."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from envs.tasks.base import EpisodeSpec, ObjectSpec, PlaceSpec
from vla.checkpoint import save_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "episode_phases.py"
INFO = {"image_keys": ["image"], "env_spec": {"env_id": "vla/MultiTask-v0",
        "cameras": ["front"], "image_size": [32, 32]}}  # fmt: skip


def run(ckpt: Path, task: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(ckpt), "--episodes", "2", "--task", task,
         "--n-action-steps", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_episode_phases_reads_the_targets_path(tmp_path, tiny_vla):
    save_checkpoint(tiny_vla(seed=0, film=True), tmp_path / "c", extra=INFO)
    done = run(tmp_path / "c", "push")
    assert done.returncode == 0, done.stderr[-2000:]
    for row in ("success", "grasped the target", "target moved toward", "closest to"):
        assert row in done.stdout
    assert "│ episodes" in done.stdout and "2 " in done.stdout


def test_a_task_without_destination_prints_no_destination_rows(tmp_path, tiny_vla):
    save_checkpoint(tiny_vla(seed=0), tmp_path / "c", extra=INFO)
    done = run(tmp_path / "c", "touch")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "step 8: over" in done.stdout and "grasped the target" in done.stdout
    assert "destination (cm" not in done.stdout and "toward its destination" not in done.stdout


def test_heading_names_what_the_hand_is_over(benchmark_module):
    heading_of = benchmark_module("episode_phases").heading_of
    objects = [ObjectSpec("red", "sphere", np.array([0.0, 0.0])),
               ObjectSpec("red", "cylinder", np.array([0.1, 0.0])),
               ObjectSpec("blue", "sphere", np.array([0.0, 0.1])),
               ObjectSpec("green", "cube", np.array([-0.1, 0.0]))]  # fmt: skip
    places = [PlaceSpec("pad", "blue", np.array([0.1, 0.1])),
              PlaceSpec("pad", "red", np.array([-0.1, -0.1]))]  # fmt: skip
    spec = EpisodeSpec(objects, "put the red sphere on the blue pad", 0, places, place=0)
    xy = np.array([o.xy for o in objects])
    over = {k: heading_of(np.array(p), xy, spec) for k, p in {
        "target": (0.01, 0.0), "colour": (0.09, 0.0), "shape": (0.0, 0.09),
        "other": (-0.1, 0.01), "destination": (0.1, 0.11), "place": (-0.1, -0.11)}.items()}  # fmt: skip
    assert over == {
        "target": "the target",
        "colour": "the target's colour, another shape",
        "shape": "the target's shape, another colour",
        "other": "another object",
        "destination": "the destination",
        "place": "another place",
    }
