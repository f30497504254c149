import numpy as np
import pytest

import envs
from envs import keys
from envs.palette import COLOURS, SHAPES


def test_multitask_draws_every_task(make):
    env = make(envs.MULTITASK_ID)
    try:
        seen = {env.reset(seed=s)[1]["task"] for s in range(40)}
        assert seen == set(envs.MULTITASK_NAMES)
        _, info = env.reset(seed=0, options={"task": "push"})
        assert info["task"] == "push"
    finally:
        env.close()


def test_distractors_make_the_target_ambiguous_without_language(make):
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
def test_held_out_distractors_false_keeps_test_combos_out_of_train_scenes(make, task_id):
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
def test_single_attribute_names_a_unique_attribute_alone(make, task_id):
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


def test_single_attribute_rejects_bad_shares_and_tasks(make):
    with pytest.raises(ValueError, match="single_attribute=1.5 must be a share"):
        make(single_attribute=1.5)
    with pytest.raises(ValueError, match="task 'relation' does not name its target"):
        make("vla/Relation-v0", single_attribute=0.5)


def test_relation_referent_is_on_the_named_side(make):
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


def test_palette_size():
    assert len(COLOURS) >= 6 and len(SHAPES) >= 3


def test_recall_cue_shows_only_at_the_start_and_names_nothing_after(make):
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
                env.model.body_pos[env.scene.cue_body] = [*env.spec_.objects[j].xy, 0.0]
                mujoco.mj_forward(env.model, env.data)
                again = env._get_obs()
                for cam in ("image", "image_top"):
                    np.testing.assert_array_equal(again[cam], after[-1][cam])
            obs, *_ = env.step(np.array([1.0, 0, 0, 1], np.float32))  # after the hold: moves
            assert obs[keys.STATE][0] > frames[-1][keys.STATE][0] + 0.005
    finally:
        env.close()


def test_other_tasks_ask_no_questions_and_never_hold(make):
    env = make("vla/Touch-v0", privileged=True)
    try:
        obs, info = env.reset(seed=0)
        assert "question" not in info and obs[keys.PRIVILEGED][keys.HOLD] == 0
    finally:
        env.close()
