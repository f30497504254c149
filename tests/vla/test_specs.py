"""EnvSpec / TrainingInfo: the JSON records between packages round-trip, keep foreign fields."""

from vla.specs import EnvSpec, TrainingInfo

TABLETOP = {
    "env_id": "vla/Touch-v0",
    "action_space": {"shape": [4], "low": [-1.0] * 4, "high": [1.0] * 4},
    "control_hz": 10.0,
    "cameras": ["front", "top"],
    "image_size": [64, 64],
    "state_names": ["tcp_x", "tcp_y", "tcp_z"],
    "split": "train",
}


def test_env_spec_round_trips_the_stores_json_in_order():
    spec = EnvSpec.from_dict(TABLETOP)
    assert spec.cameras == ("front", "top") and spec.image_size == (64, 64)
    assert spec.action_shape == (4,) and spec.control_hz == 10.0
    assert spec.to_dict() == TABLETOP
    assert list(spec.to_dict()) == list(TABLETOP)  # same key order: same store attributes


def test_a_foreign_spec_keeps_its_own_fields_and_lacks_ours():
    foreign = {"robot": "franka", "fps": 20, "cameras": ["high"]}
    spec = EnvSpec.from_dict(foreign)
    assert spec.cameras == ("high",) and spec.image_size is None and spec.env_id is None
    assert spec.extra == {"robot": "franka", "fps": 20}
    assert spec.to_dict() == foreign
    assert EnvSpec.from_dict(None) == EnvSpec() and EnvSpec().to_dict() == {}


def test_training_info_round_trips_and_adds_step_fields():
    info = TrainingInfo(
        image_keys=("image", "image_top"),
        state_key="state",
        env_spec=EnvSpec.from_dict(TABLETOP),
        tasks=("touch",),
        obs_horizon=1,
        action_horizon=4,
    )
    saved = info.with_step(step=200, epoch=0.5, **{"val/loss": 1.7}).to_dict()
    assert saved["step"] == 200 and saved["val/loss"] == 1.7 and saved["env_spec"] == TABLETOP
    again = TrainingInfo.from_dict(saved)
    assert again.image_keys == ("image", "image_top") and again.tasks == ("touch",)
    assert again.step == 200 and again.extra == {"val/loss": 1.7}
    assert TrainingInfo.from_dict({}).state_key is None
