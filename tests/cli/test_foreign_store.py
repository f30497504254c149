"""A store from another simulator trains with overrides only and acts through VLAPolicy.

Nothing of the tabletop suite: one camera under its own name (``image_<camera>``, the store
format's camera naming), a 9-d state under its own key, 7-d actions, 20 Hz, instructions of its
own — written with the public ``vla.data.EpisodeWriter``,
trained with ``vla-train dataset.path=...`` and overrides, loaded with
``VLAPolicy.from_checkpoint`` and given observations with the store's keys.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from policies.vla_policy import VLAPolicy
from vla.data import EpisodeWriter

CAMERA, STATE, STATE_DIM, ACTION_DIM, SIZE = "image_high", "joints", 9, 7, 32
OVERRIDES = [
    f"dataset.image_keys=[{CAMERA}]", f"dataset.state_key={STATE}", "model.state_dims=null",
    "model.num_cameras=1", f"model.vision.image_size={SIZE}", "callbacks.rollout=null",
    "model.llm.config.hidden_size=32", "model.llm.config.intermediate_size=64",
    "model.llm.config.num_hidden_layers=1", "model.llm.config.num_attention_heads=2",
    "model.llm.config.num_key_value_heads=2", "dataset.batch_size=8", "dataset.num_workers=0",
    "trainer.max_steps=6", "trainer.val_check_interval=3", "trainer.limit_val_batches=1",
    "checkpoint_every_n_steps=3", "optim.warmup_steps=1",
]  # fmt: skip


def write_foreign_store(path, episodes=10, length=12):
    spec = {"env_id": "othersim/Drawer-v2", "control_hz": 20, "action_dim": ACTION_DIM,
            "cameras": [CAMERA], "image_size": [SIZE, SIZE]}  # fmt: skip
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, env_spec=spec, keys=[CAMERA, STATE, "action"]) as writer:
        for k in range(episodes):
            steps = np.arange(length, dtype=np.float32)[:, None]  # (L, 1)
            writer.append(
                {
                    CAMERA: rng.integers(0, 256, (length, SIZE, SIZE, 3), dtype=np.uint8),
                    STATE: np.sin(steps / 5 + np.arange(STATE_DIM)).astype(np.float32),
                    "action": np.tanh(rng.normal(size=(length, ACTION_DIM))).astype(np.float32),
                },
                {
                    "instruction": ["open the top drawer", "close the left cabinet"][k % 2],
                    "task": "drawer",
                    "success": True,
                },  # fmt: skip
            )


def test_a_foreign_store_trains_with_overrides_and_acts_through_the_policy(tmp_path):
    store = tmp_path / "foreign.zarr"
    write_foreign_store(store)
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "vla.cli.train", f"dataset.path={store}", f"out={out}", *OVERRIDES],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    checkpoint = out / "checkpoints" / "last"
    info = json.loads((checkpoint / "training.json").read_text())
    assert info["image_keys"] == [CAMERA] and info["state_key"] == STATE

    policy = VLAPolicy.from_checkpoint(checkpoint, device="cpu")
    policy.reset()
    obs = {CAMERA: np.zeros((SIZE, SIZE, 3), np.uint8), STATE: np.zeros(STATE_DIM, np.float32),
           "instruction": "open the top drawer"}  # fmt: skip
    action = policy.act(obs)
    assert action.shape == (ACTION_DIM,) and np.isfinite(action).all()
    with pytest.raises(ValueError, match=STATE):
        policy.act({CAMERA: obs[CAMERA], "instruction": "open the top drawer"})


def test_a_camera_array_with_another_name_is_refused_when_written(tmp_path):
    spec = {"env_id": "othersim/Drawer-v2", "cameras": ["high"]}
    with (
        EpisodeWriter(tmp_path / "s.zarr", env_spec=spec) as writer,
        pytest.raises(ValueError, match="rename it, e.g. 'image_cam_high'"),
    ):
        writer.append(
            {"cam_high": np.zeros((3, 8, 8, 3), np.uint8), "action": np.zeros((3, 2), np.float32)},
            {"instruction": "open it", "task": "drawer", "success": True},
        )
