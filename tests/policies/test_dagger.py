"""DAgger collection (policies.dagger.LearnerDriven through vla-collect's expert factory): the
env runs the learner's actions, the store keeps the scripted expert's labels."""

import numpy as np
import pytest
from hydra.errors import InstantiationException

from policies.collect import collect
from policies.dagger import LearnerDriven
from vla.checkpoint import save_checkpoint
from vla.data import EpisodeStore

TOUCH = {"_target_": "gymnasium.make", "id": "envs:vla/Touch-v0", "image_size": 32}
SPEC = {"env_id": "vla/Touch-v0", "cameras": ["front"], "image_size": [32, 32]}


@pytest.fixture
def learner(tmp_path, tiny_vla):
    path = tmp_path / "learner"
    save_checkpoint(tiny_vla(seed=0), path, extra={"image_keys": ["image"], "env_spec": SPEC})
    return path


def driven(checkpoint, **kw):
    return {
        "_target_": "policies.dagger.LearnerDriven.for_env",
        "checkpoint": str(checkpoint),
        **kw,
    }


def read(path):
    store = EpisodeStore(path)
    return store, {k: store.read(k) for k in ("action", "state")}


def test_the_learner_drives_and_the_store_keeps_the_experts_labels(tmp_path, learner):
    expert_out, dagger_out = tmp_path / "expert.zarr", tmp_path / "dagger.zarr"
    collect(TOUCH, expert_out, episodes=2, workers=1, progress=False)
    summary = collect(TOUCH, dagger_out, episodes=2, workers=1, keep_failures=True,
                      progress=False, expert=driven(learner))  # fmt: skip
    assert summary.driver == "learner"
    expert, e = read(expert_out)
    dagger, d = read(dagger_out)
    # the same scenes (seeds 0, 1), but the untrained learner wanders where the expert did not:
    # other states, and episodes that run longer than the expert's direct touches
    assert [int(s) for s in dagger.seeds] == [0, 1]
    assert "| learner success (last run) |" in (dagger_out / "README.md").read_text()
    assert dagger.summary()["extras"]["driver"] == 2  # vla-data info: "extra fields"
    driver = dagger.episode_meta(0)["driver"]  # each episode says what drove it
    assert driver["checkpoint"] == str(learner) and driver["beta"] == 0.0
    assert driver["learner_steps"] == driver["steps"] == dagger.episode_meta(0)["length"]
    assert len(d["state"]) > len(e["state"])
    assert not np.allclose(d["state"][1:5], e["state"][1:5])
    # every stored action is the touch expert's label (it always commands "closed")...
    assert np.all(d["action"][:, 3] == 1.0)
    # ... and points the hand at the target from wherever the learner took it
    assert np.abs(d["action"][:, :3]).max() > 0


def test_beta_one_runs_the_expert_and_stores_its_demonstrations(tmp_path, learner):
    collect(TOUCH, tmp_path / "expert.zarr", episodes=2, workers=1, progress=False)
    collect(TOUCH, tmp_path / "beta1.zarr", episodes=2, workers=1, progress=False,
            expert=driven(learner, beta=1.0))  # fmt: skip
    _, e = read(tmp_path / "expert.zarr")
    _, b = read(tmp_path / "beta1.zarr")
    for k in e:
        np.testing.assert_array_equal(b[k], e[k])


def test_bad_input_fails_before_any_episode(tmp_path, learner, tiny_vla):
    with pytest.raises(ValueError, match=r"beta=1.5 must be in \[0, 1\]"):
        LearnerDriven(expert=None, learner=None, beta=1.5)
    with pytest.raises(ValueError, match="noise=-0.1 must be >= 0"):
        LearnerDriven(expert=None, learner=None, noise=-0.1)
    other = tmp_path / "seven_d"
    save_checkpoint(
        tiny_vla(action_dim=7), other, extra={"image_keys": ["image"], "env_spec": SPEC}
    )
    with pytest.raises(InstantiationException, match="predicts 7-d actions"):
        collect(TOUCH, tmp_path / "x.zarr", episodes=1, workers=1, progress=False,
                expert=driven(other))  # fmt: skip
    with pytest.raises(InstantiationException, match="policies.no_such"):
        collect(TOUCH, tmp_path / "y.zarr", episodes=1, workers=1, progress=False,
                expert=driven(learner, labeller="policies.no_such.Expert.for_env"))  # fmt: skip
