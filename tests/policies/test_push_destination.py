"""benchmarks/push_destination.py on a tiny checkpoint: both rows print; the colour swap names
the other pad."""

import subprocess
import sys
from pathlib import Path

from vla.checkpoint import save_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "push_destination.py"


def test_the_destination_swap_replaces_the_pads_colour_not_the_objects(benchmark_module):
    swap = benchmark_module("push_destination").swap_destination
    assert swap("push the red cube onto the red pad", "red", "blue") == (
        "push the red cube onto the blue pad"
    )
    assert swap("nudge the cyan ball onto the purple mat", "purple", "green").endswith("green mat")


def test_push_destination_prints_both_rows(tmp_path, tiny_vla):
    info = {"image_keys": ["image"], "env_spec": {"env_id": "vla/MultiTask-v0",
            "cameras": ["front"], "image_size": [32, 32]}}  # fmt: skip
    save_checkpoint(tiny_vla(seed=0), tmp_path / "ckpt", extra=info)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "ckpt"), "--episodes", "1", "--n-action-steps", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "as the env says" in done.stdout and "the other pad's colour" in done.stdout
