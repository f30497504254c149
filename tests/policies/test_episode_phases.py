"""benchmarks/episode_phases.py on a tiny checkpoint: every row prints, for all episodes and
for the failures; a task without a destination is refused."""

import subprocess
import sys
from pathlib import Path

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


def test_episode_phases_refuses_a_task_without_destination(tmp_path, tiny_vla):
    save_checkpoint(tiny_vla(seed=0), tmp_path / "c", extra=INFO)
    done = run(tmp_path / "c", "touch")
    assert done.returncode != 0 and "has no destination" in done.stderr
