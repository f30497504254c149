import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs import keys
from envs.palette import COLOURS, SHAPES


def make(task_id="vla/Touch-v0", **kw):
    kw.setdefault("image_size", 32)
    return gym.make(task_id, **kw).unwrapped


@pytest.mark.parametrize("task_id", envs.TASK_IDS)
def test_check_env(task_id):
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
def test_same_seed_same_observations(task_id):
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


def test_observation_contents():
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


def test_multitask_draws_every_task():
    env = make(envs.MULTITASK_ID)
    try:
        seen = {env.reset(seed=s)[1]["task"] for s in range(40)}
        assert seen == set(envs.MULTITASK_NAMES)
        _, info = env.reset(seed=0, options={"task": "push"})
        assert info["task"] == "push"
    finally:
        env.close()


def test_distractors_make_the_target_ambiguous_without_language():
    env = make("vla/Lift-v0")
    try:
        for seed in range(20):
            env.reset(seed=seed)
            spec = env.spec_
            target = spec.objects[spec.target]
            others = [o for i, o in enumerate(spec.objects) if i != spec.target]
            assert 2 <= len(others) <= 5
            assert all((o.colour, o.shape) != (target.colour, target.shape) for o in others)
            assert any(o.colour == target.colour for o in others)
            assert any(o.shape == target.shape for o in others)
    finally:
        env.close()


@pytest.mark.parametrize("task_id", ["vla/Touch-v0", "vla/Lift-v0", "vla/Push-v0"])
def test_held_out_distractors_false_keeps_test_combos_out_of_train_scenes(task_id):
    """held_out_distractors=False: no test-split combo in a train-split scene, still one
    distractor of the target's colour and one of its shape; the default shows them sometimes,
    and the default's scenes are the ones it always drew (stores stay reproducible)."""
    from envs.palette import is_test_combo

    def scenes(**kw):
        env = make(task_id, **kw)
        try:
            out = []
            for seed in range(40):
                env.reset(seed=seed)
                out.append([(o.colour, o.shape) for o in env.spec_.objects])
            return out
        finally:
            env.close()

    strict, default = scenes(held_out_distractors=False), scenes()
    assert not any(is_test_combo(*o) for scene in strict for o in scene)
    assert any(is_test_combo(*o) for scene in default for o in scene[1:])
    for (colour, shape), *others in strict:
        assert any(c == colour for c, _ in others) and any(s == shape for _, s in others)
    assert scenes(held_out_distractors=True) == default
    test = make(task_id, split="test", held_out_distractors=False)
    try:
        test.reset(seed=0)
        assert is_test_combo(test.spec_.objects[0].colour, test.spec_.objects[0].shape)
    finally:
        test.close()


@pytest.mark.parametrize(
    "task_id", ["vla/Touch-v0", "vla/Lift-v0", "vla/Push-v0", "vla/PickPlace-v0"]
)
def test_single_attribute_names_a_unique_attribute_alone(task_id):
    """single_attribute=1: every train-split instruction names the target by one attribute, which
    no other object shares, while another object shares the attribute it leaves out; the test
    split still names both, and 0 (the default) draws the scenes it always drew."""
    from envs.palette import NOUNS

    def episodes(**kw):
        env = make(task_id, **kw)
        try:
            out = []
            for seed in range(30):
                _, info = env.reset(seed=seed)
                text, spec = info["instruction"], env.spec_
                if spec.place is not None and spec.places[spec.place].colour:  # "the red pad"
                    colour = spec.places[spec.place].colour
                    text = text.replace(f"{colour} pad", "pad").replace(f"{colour} mat", "mat")
                out.append((text, spec))
            return out
        finally:
            env.close()

    namings = set()
    for text, spec in episodes(single_attribute=1.0):
        target = spec.objects[spec.target]
        others = [o for i, o in enumerate(spec.objects) if i != spec.target]
        nouns = NOUNS[target.shape]
        if f" {target.colour} " in f" {text} ":  # named by colour: no noun of its shape
            namings.add("colour")
            assert not any(f" {n}" in text for n in nouns), text
            assert not any(o.colour == target.colour for o in others)
            assert any(o.shape == target.shape for o in others)
        else:
            namings.add("shape")
            assert any(f" {n}" in text for n in nouns), text
            assert not any(o.shape == target.shape for o in others)
            assert any(o.colour == target.colour for o in others)
    assert namings == {"colour", "shape"}
    for text, spec in episodes(split="test", single_attribute=1.0):
        target = spec.objects[spec.target]
        assert target.colour in text
    default = [(t, [(o.colour, o.shape, *o.xy) for o in s.objects]) for t, s in episodes()]
    unset = episodes(single_attribute=0.0)
    assert default == [(t, [(o.colour, o.shape, *o.xy) for o in s.objects]) for t, s in unset]


def test_single_attribute_rejects_bad_shares_and_tasks():
    with pytest.raises(ValueError, match="single_attribute=1.5 must be a share"):
        make(single_attribute=1.5)
    with pytest.raises(ValueError, match="task 'relation' does not name its target"):
        make("vla/Relation-v0", single_attribute=0.5)


def test_relation_referent_is_on_the_named_side():
    env = make("vla/Relation-v0")
    try:
        sides = {"left": (0, -1), "right": (0, 1), "in front of": (1, -1), "behind": (1, 1)}
        for seed in range(30):
            _, info = env.reset(seed=seed)
            spec = env.spec_
            anchor, ref, mirror = spec.objects[0], spec.objects[spec.target], spec.objects[2]
            axis, sign = next(v for k, v in sides.items() if k in info["instruction"])
            assert sign * (ref.xy[axis] - anchor.xy[axis]) > 0.05
            assert sign * (mirror.xy[axis] - anchor.xy[axis]) < -0.05
            assert ref.shape == mirror.shape != anchor.shape
            same_shape = [o for o in spec.objects if o.shape == ref.shape]
            assert len(same_shape) == 2  # only the relation tells the two candidates apart
    finally:
        env.close()


def test_touching_a_distractor_fails_the_episode():
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


def test_a_ball_hit_mid_step_counts_as_touched():
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


def test_stepping_in_contact_reads_is_the_physics_of_one_control_step():
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
            now = b._contacts(len(b.spec_.objects))
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


def test_open_close_cycles_release_renderers():
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
def test_bad_action_raises(bad):
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
def test_bad_reset_options_raise(options, match):
    env = make()
    try:
        with pytest.raises(ValueError, match=match):
            env.reset(seed=0, options=options)
    finally:
        env.close()


def test_forced_target_must_belong_to_the_split():
    env = make(split="test")
    try:
        _, info = env.reset(seed=0, options={"target": ("red", "cube")})  # a test combo
        assert info["target"] == "red cube"
        with pytest.raises(ValueError, match="not a 'test'-split target"):
            env.reset(seed=0, options={"target": ("green", "cube")})
    finally:
        env.close()


def test_palette_size():
    assert len(COLOURS) >= 6 and len(SHAPES) >= 3


def test_recall_cue_shows_only_at_the_start_and_names_nothing_after():
    """One frame after the cue carries nothing about the target: the same scene rendered with
    the (invisible) cue under any other object is the same image, so a single-frame policy is at
    chance by construction."""
    import mujoco

    env = make("vla/Recall-v0", cameras=("front", "top"), privileged=True)
    try:
        for seed in range(5):
            obs, info = env.reset(seed=seed)
            assert (
                "lit up" in info["instruction"]
                or "glowed" in info["instruction"]
                or ("highlighted" in info["instruction"])
            )
            assert info["answer"] == f"the {info['target']}"
            frames = [obs]
            for _ in range(env.task.hold_steps):
                assert obs[keys.PRIVILEGED][keys.HOLD] == 1
                tcp = obs[keys.STATE][:3].copy()
                obs, *_ = env.step(np.ones(4, np.float32))  # ignored: the robot watches
                np.testing.assert_allclose(obs[keys.STATE][:3], tcp, atol=1e-4)
                frames.append(obs)
            assert obs[keys.PRIVILEGED][keys.HOLD] == 0
            cue, after = frames[: env.task.cue_steps], frames[env.task.cue_steps :]
            for cam in ("image", "image_top"):
                # the cue is visible: many pixels change when it goes out (objects settling on
                # the table in the first steps move a few at most)
                for f in cue:
                    changed = (np.abs(f[cam].astype(int) - after[0][cam]).sum(-1) > 60).sum()
                    assert changed >= 6, (cam, changed)
            for j in range(len(env.spec_.objects)):  # the cue's place leaves no trace later
                env.model.body_pos[env._cue_body] = [*env.spec_.objects[j].xy, 0.0]
                mujoco.mj_forward(env.model, env.data)
                again = env._get_obs()
                for cam in ("image", "image_top"):
                    np.testing.assert_array_equal(again[cam], after[-1][cam])
            obs, *_ = env.step(np.array([1.0, 0, 0, 1], np.float32))  # after the hold: moves
            assert obs[keys.STATE][0] > frames[-1][keys.STATE][0] + 0.005
    finally:
        env.close()


def test_other_tasks_ask_no_questions_and_never_hold():
    env = make("vla/Touch-v0", privileged=True)
    try:
        obs, info = env.reset(seed=0)
        assert "question" not in info and obs[keys.PRIVILEGED][keys.HOLD] == 0
    finally:
        env.close()


def test_render_camera_is_chosen_and_checked():
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
