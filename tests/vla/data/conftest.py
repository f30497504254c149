"""Tiny stores for the data tests: random content, exact values, a few steps per episode."""

import numpy as np
import pytest

from vla import keys
from vla.data import EpisodeWriter

ENV_SPEC = {
    "action_space": {"low": [-1.0] * 4, "high": [1.0] * 4, "shape": [4]},
    "control_hz": 10,
    "cameras": {"image": [8, 8], "image_wrist": [8, 8]},
}
KEYS = [keys.IMAGE, keys.IMAGE + "_wrist", keys.STATE, keys.ACTION]


def make_episode(index: int, length: int | None = None, size: int = 8):
    """Deterministic episode ``index``; state[:, 0] and action[:, 0] hold the step number."""
    rng = np.random.default_rng(index)
    length = length or int(rng.integers(3, 9))
    state = rng.normal(size=(length, 7)).astype(np.float32)
    action = rng.uniform(-1, 1, (length, 4)).astype(np.float32)
    state[:, 0] = action[:, 0] = np.arange(length)
    episode = {
        keys.IMAGE: rng.integers(0, 256, (length, size, size, 3), dtype=np.uint8),
        keys.IMAGE + "_wrist": rng.integers(0, 256, (length, size, size, 3), dtype=np.uint8),
        keys.STATE: state,
        keys.ACTION: action,
    }
    meta = {
        keys.INSTRUCTION: f"touch the block {index}",
        keys.TASK: "vla/Touch-v0" if index % 2 else "vla/Push-v0",
        keys.SEED: index,
        "difficulty": index % 3,  # a free-form extra field
    }
    return episode, meta


def make_wave(index: int) -> np.ndarray:
    """Episode ``index``'s spoken instruction: 200 + 37 * index samples of noise in [-1, 1]."""
    return np.random.default_rng(1000 + index).uniform(-1, 1, 200 + 37 * index).astype(np.float32)


@pytest.fixture
def episode_factory():
    return make_episode


@pytest.fixture
def env_spec():
    return dict(ENV_SPEC)


@pytest.fixture
def store_factory(tmp_path):
    """``store_factory(n, lengths=None, name="s.zarr", audio=False, **writer_options) -> path``;
    ``audio`` adds ``make_wave(i)`` at 16 kHz to every episode."""

    def build(n: int, lengths=None, name: str = "s.zarr", audio: bool = False, **options):
        path = tmp_path / name
        with EpisodeWriter.create_or_open(path, env_spec=ENV_SPEC, keys=KEYS, **options) as writer:
            for i in range(n):
                episode, meta = make_episode(i, None if lengths is None else lengths[i])
                if audio:
                    meta = {**meta, keys.AUDIO: make_wave(i), keys.AUDIO_SAMPLE_RATE: 16000}
                writer.append(episode, meta)
        return path

    return build
