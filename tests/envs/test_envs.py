import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs import keys


@pytest.mark.parametrize("task_id", envs.TASK_IDS)
def test_check_env(make, task_id):
    env = make(task_id, render_mode="rgb_array", render_size=32, privileged=True)
    try:
        check_env(env, skip_render_check=False)
    finally:
        env.close()


def test_ids_are_registered_in_vla_namespace():
    assert len(envs.TASK_IDS) == 7 and envs.MULTITASK_ID in envs.TASK_IDS
    for task_id in envs.TASK_IDS:
        assert task_id.startswith("vla/") and task_id in gym.registry


@pytest.mark.parametrize("task_id", envs.TASK_IDS)
def test_same_seed_same_observations(make, task_id):
    a, b = make(task_id), make(task_id)
    try:
        oa, ia = a.reset(seed=7)
        ob, ib = b.reset(seed=7)
        assert ia == ib
        actions = np.random.default_rng(0).uniform(-1, 1, (6, 4)).astype(np.float32)
        for act in actions:
            oa, ra, *_ = a.step(act)
            ob, rb, *_ = b.step(act)
            assert ra == rb
            for k in oa:
                np.testing.assert_array_equal(oa[k], ob[k])
        other, _ = b.reset(seed=8)
        assert not np.array_equal(other[keys.IMAGE], a.reset(seed=7)[0][keys.IMAGE])
    finally:
        a.close()
        b.close()


def test_observation_contents(make):
    env = make(cameras=("front", "wrist", "top"), image_size=48)
    try:
        obs, info = env.reset(seed=0)
        assert set(obs) == {"image", "image_wrist", "image_top", "state", "instruction"}
        assert obs["image"].shape == (48, 48, 3) and obs["image"].dtype == np.uint8
        assert obs["state"].shape == (7,) and obs["state"].dtype == np.float32
        assert obs["instruction"] == info["instruction"]
        assert keys.PRIVILEGED not in obs  # never the target's identity without privileged=True
        # the front camera sees something besides the table: not a constant image
        assert obs["image"].std() > 5
    finally:
        env.close()


def test_touching_a_distractor_fails_the_episode(make):
    env = make("vla/Touch-v0", privileged=True)
    try:
        env.reset(seed=3)
        spec = env.spec_
        wrong = spec.objects[1 if spec.target == 0 else 0]
        for _ in range(40):
            tcp = env.data.site_xpos[env._tcp]
            goal = np.array([*wrong.xy, 0.03])
            act = np.append(np.clip((goal - tcp) / 0.03, -1, 1), 1.0)
            _, _, terminated, _, info = env.step(act)
            if terminated:
                break
            assert info[keys.TOUCHED] == []  # nothing touched on the way
        assert terminated and info["failure"] and not info["success"]
        assert info[keys.TOUCHED] == [wrong.name]  # which object the failure hit
    finally:
        env.close()


def test_a_ball_hit_mid_step_counts_as_touched(make):
    """A sweep through a ball knocks it away within one control step: no contact holds at the
    step's end, but the gripper touched it (contacts are read every few substeps)."""
    env = make("vla/Touch-v0", privileged=True)
    try:
        env.reset(seed=0, options={"target": ("red", "sphere")})
        ball = env.spec_.objects[env.spec_.target]
        for t in range(40):  # line up 8 cm beside the ball, fingertips at its height, then sweep
            x = ball.xy[0] + (0.15 if t > 3 else -0.08)
            tcp = env.data.site_xpos[env._tcp]
            act = np.append(np.clip((np.array([x, ball.xy[1], 0.022]) - tcp) / 0.03, -1, 1), 1.0)
            _, _, terminated, _, info = env.step(act)
            if terminated:
                break
        assert terminated and info["success"] and info[keys.TOUCHED] == [ball.name]
        assert not any(env._scene_view().touched)  # the ball has left the fingers by the step's end
    finally:
        env.close()


def test_stepping_in_contact_reads_is_the_physics_of_one_control_step(make):
    """The env steps 50 substeps as 10 x 5 to read contacts between them: the same states as one
    ``do_simulation`` of 50 (gymnasium's), action for action."""
    from envs.tabletop_env import CONTACT_SUBSTEPS, FRAME_SKIP

    assert FRAME_SKIP % CONTACT_SUBSTEPS == 0
    a, b = make("vla/Lift-v0"), make("vla/Lift-v0")
    try:
        a.reset(seed=3)
        b.reset(seed=3)

        def one_call(finger):  # gymnasium's 50 substeps in one call; contacts at the end only
            b.do_simulation(finger, b.frame_skip)
            now = b.scene.contacts(b.data, len(b.spec_.objects))
            return now, now

        b._simulate = one_call
        rng = np.random.default_rng(0)
        for _ in range(15):
            act = rng.uniform(-1, 1, 4)
            a.step(act)
            b.step(act)
            assert np.array_equal(a.data.qpos, b.data.qpos)
            assert np.array_equal(a.data.qvel, b.data.qvel)
    finally:
        a.close()
        b.close()


def test_open_close_cycles_release_renderers(make):
    for i in range(6):
        env = make(cameras=("front", "wrist"), render_mode="rgb_array", render_size=64)
        env.reset(seed=i)
        env.step(env.action_space.sample())
        assert env.render().shape == (64, 64, 3)
        env.close()
        env.close()  # closing twice is harmless


@pytest.mark.parametrize(
    "bad", [np.zeros(3), np.zeros((2, 4)), [0, 0, np.nan, 0], [np.inf, 0, 0, 0]]
)
def test_bad_action_raises(make, bad):
    env = make()
    try:
        env.reset(seed=0)
        with pytest.raises(ValueError, match=r"expected"):
            env.step(bad)
    finally:
        env.close()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tasks": "fly"}, "task='fly' is not valid; choose one of"),
        ({"tasks": ()}, "empty"),
        ({"split": "val"}, "split='val' is not valid; choose one of"),
        ({"image_size": 8}, "image_size=8"),
        ({"image_size": 1024}, "image_size=1024"),
        ({"cameras": ("side",)}, "camera='side' is not valid; choose one of"),
        ({"cameras": ()}, "non-empty"),
    ],
)
def test_bad_construction_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        envs.TabletopEnv(**kwargs)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"target": ("mauve", "cube")}, "colour='mauve' is not valid"),
        ({"target": ("red", "pyramid")}, "shape='pyramid' is not valid"),
        ({"task": "lift"}, "options\\['task'\\]='lift' is not valid"),
    ],
)
def test_bad_reset_options_raise(make, options, match):
    env = make()
    try:
        with pytest.raises(ValueError, match=match):
            env.reset(seed=0, options=options)
    finally:
        env.close()


def test_forced_target_must_belong_to_the_split(make):
    env = make(split="test")
    try:
        _, info = env.reset(seed=0, options={"target": ("red", "cube")})  # a test combo
        assert info["target"] == "red cube"
        with pytest.raises(ValueError, match="not a 'test'-split target"):
            env.reset(seed=0, options={"target": ("green", "cube")})
    finally:
        env.close()


def test_render_camera_is_chosen_and_checked(make):
    front = make(render_mode="rgb_array", render_size=32)
    top = make(render_mode="rgb_array", render_size=32, render_camera="top")
    try:
        front.reset(seed=0)
        top.reset(seed=0)
        assert front.render().shape == top.render().shape == (32, 32, 3)
        assert not np.array_equal(front.render(), top.render())
    finally:
        front.close()
        top.close()
    with pytest.raises(ValueError, match="render_camera='side'"):
        make(render_camera="side")


def test_a_crowded_layout_is_drawn_again_so_every_seed_resets():
    """Pick-and-place seed 908's first draw finds no free spot for its last distractor (pads,
    bowl and 6 objects); the env draws again from the same generator instead of failing."""
    from gymnasium.utils.seeding import np_random

    from envs.tasks import TASKS
    from envs.tasks.base import PlacementError

    with pytest.raises(PlacementError):
        TASKS["pick_place"]().sample(np_random(908)[0], "train")
    env = gym.make("vla/PickPlace-v0", image_size=32)
    try:
        _, first = env.reset(seed=908)
        _, again = env.reset(seed=908)
        assert first["instruction"] == again["instruction"]  # reproducible
        assert first["n_objects"] == again["n_objects"]
    finally:
        env.close()


@pytest.mark.parametrize("task", ["touch", "lift", "push", "pick_place", "relation"])
def test_manipulation_tasks_obey_the_first_action(task):
    """Only a memory task has a watch phase: every other task moves on its first action."""
    env = gym.make("vla/MultiTask-v0", image_size=32, privileged=True)
    obs, _ = env.reset(seed=3, options={"task": task})
    assert obs[keys.PRIVILEGED][keys.HOLD] == 0
    tcp = obs[keys.STATE][:3].copy()
    obs, *_ = env.step(np.array([0.0, 0.0, 1.0, -1.0], np.float32))  # up
    assert obs[keys.STATE][2] > tcp[2] + 0.01
    env.close()
