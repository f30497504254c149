"""benchmarks/camera_reliance.py on a tiny two-camera touch checkpoint: it runs end to end and
prints one row per camera, one for the state and the whole-observation row."""

import subprocess
import sys
from pathlib import Path

from vla.checkpoint import save_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "camera_reliance.py"


def test_camera_reliance_prints_a_row_per_camera(tmp_path, tiny_vla) -> None:
    spec = {"env_id": "vla/Touch-v0", "cameras": ["front", "top"], "image_size": [32, 32]}
    info = {"image_keys": ["image", "image_top"], "env_spec": spec}
    save_checkpoint(tiny_vla(num_cameras=2, seed=0), tmp_path / "ckpt", extra=info)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "ckpt"), "--episodes", "3", "--steps", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for row in ("image ", "image_top", "the state ", "all cameras and the state", "after 2 steps"):
        assert row in done.stdout, done.stdout
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "ckpt"), "--episodes", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode != 0 and "--episodes must be >= 2" in bad.stderr
