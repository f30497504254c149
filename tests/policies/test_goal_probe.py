"""benchmarks/goal_probe.py: which object a goal-loss touch policy is heading for."""

import numpy as np
import pytest

from envs.tasks.base import ObjectSpec


def test_the_nearest_object_is_named_by_what_it_shares_with_the_target(benchmark_module):
    kind = benchmark_module("goal_probe").nearest_kind
    objects = [
        ObjectSpec("red", "cube", np.array([0.0, 0.0])),
        ObjectSpec("red", "sphere", np.array([0.1, 0.0])),
        ObjectSpec("blue", "cube", np.array([0.0, 0.1])),
        ObjectSpec("green", "cylinder", np.array([0.1, 0.1])),
    ]
    assert kind(objects, 0, np.array([0.01, 0.0])) == "target"
    assert kind(objects, 0, np.array([0.09, 0.0])) == "same colour"
    assert kind(objects, 0, np.array([0.0, 0.09])) == "same shape"
    assert kind(objects, 0, np.array([0.2, 0.2])) == "neither"


def test_every_scene_of_a_split_is_counted(benchmark_module, tiny_vla):
    from policies.vla_policy import VLAPolicy

    bench = benchmark_module("goal_probe")
    model = tiny_vla(seed=0, num_cameras=2, film=True, image_size=64, state=True, goal_loss=1.0)
    policy = VLAPolicy(model, image_keys=("image", "image_top"))
    row = bench.probe(policy, "test", 3, 0)
    assert sum(row[k] for k in bench.KINDS) == 3 and row["median_error_m"] >= 0
    with pytest.raises(ValueError, match="no goal head"):
        bench.probe(VLAPolicy(tiny_vla(num_cameras=2, image_size=64, state=True),
                              image_keys=("image", "image_top")), "train", 1, 0)  # fmt: skip
