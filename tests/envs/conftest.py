import gymnasium as gym
import pytest


@pytest.fixture
def make():
    """`make(task_id="vla/Touch-v0", **kw)`: a tabletop env at 32 px unless `image_size` is given,
    unwrapped so tests can read its scene spec and MuJoCo state."""

    def make(task_id="vla/Touch-v0", **kw):
        kw.setdefault("image_size", 32)
        return gym.make(task_id, **kw).unwrapped

    return make
