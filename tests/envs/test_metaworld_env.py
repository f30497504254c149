"""envs.metaworld_env: Meta-World v3 tasks in this package's observation format.

Runs in the metaworld venv (``make metaworld-deps``; ``make test`` runs it there); in the core
venv it is skipped, saying so.
"""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

pytest.importorskip("metaworld", reason="Meta-World is an extra: make metaworld-deps (own venv)")

import envs  # noqa: E402
from envs import keys  # noqa: E402
from envs.metaworld_env import MT10, STATE_NAMES, MetaWorldEnv  # noqa: E402

SIZE = 32


@pytest.fixture
def env():
    e = gym.make(envs.METAWORLD_ID, image_size=SIZE, cameras=("corner", "topview"))
    yield e
    e.close()


def test_passes_gymnasium_env_checker():
    e = MetaWorldEnv(tasks=["reach-v3", "drawer-close-v3"], image_size=SIZE, privileged=True)
    try:
        check_env(e, skip_render_check=True)
    finally:
        e.close()


def test_observations_have_the_package_format(env):
    obs, info = env.reset(seed=3)
    assert obs[keys.IMAGE].shape == obs["image_topview"].shape == (SIZE, SIZE, 3)
    assert obs[keys.IMAGE].dtype == np.uint8
    assert obs[keys.STATE].shape == (len(STATE_NAMES),) and obs[keys.STATE].dtype == np.float32
    assert keys.PRIVILEGED not in obs  # simulator truth only for experts
    assert info[keys.TASK] == MT10[3] and info[keys.SPLIT] == "train"
    assert obs[keys.INSTRUCTION] == info[keys.INFO_INSTRUCTION]
    assert env.unwrapped.task_names == MT10 and env.unwrapped.state_names == STATE_NAMES
    obs, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
    assert isinstance(info[keys.SUCCESS], bool) and not terminated and not truncated
    assert any(k.startswith(keys.REWARD_PREFIX) for k in info)


def test_a_seed_fixes_task_layout_and_wording_and_seeds_cycle_over_the_tasks(env):
    a, info_a = env.reset(seed=11)
    b, info_b = env.reset(seed=11)
    for k in (keys.IMAGE, "image_topview", keys.STATE, keys.INSTRUCTION):
        assert np.array_equal(a[k], b[k])
    assert info_a[keys.TASK] == info_b[keys.TASK] == MT10[1]
    tasks = [env.reset(seed=s)[1][keys.TASK] for s in range(20, 30)]
    assert sorted(tasks) == sorted(MT10)  # any 10 consecutive seeds: every task once
    assert env.reset()[1][keys.TASK] == MT10[0]  # unseeded: counts on from seed 29


def test_different_seeds_draw_different_layouts():
    e = MetaWorldEnv(tasks="reach-v3", image_size=SIZE, privileged=True)
    try:
        goals = {tuple(e.reset(seed=s)[0][keys.PRIVILEGED][keys.SIM_OBS][-3:]) for s in range(5)}
    finally:
        e.close()
    assert len(goals) == 5


def test_corner_frames_are_turned_upright():
    import mujoco

    e = MetaWorldEnv(tasks="reach-v3", image_size=SIZE, cameras=("corner", "topview"))
    try:
        obs, _ = e.reset(seed=0)
        r = mujoco.Renderer(e.unwrapped._sim.model, SIZE, SIZE)
        try:
            r.update_scene(e.unwrapped._sim.data, camera="corner")
            raw = r.render()
            r.update_scene(e.unwrapped._sim.data, camera="topview")
            top = r.render()
        finally:
            r.close()
    finally:
        e.close()
    assert np.array_equal(obs[keys.IMAGE], raw[::-1, ::-1])  # 180 degrees, not a mirror
    assert np.array_equal(obs["image_topview"], top)  # topview is mounted upright


def test_the_first_frame_shows_the_episodes_goal_marker():
    """Meta-World places the goal marker only in step(); the env places it at reset too."""

    def marker(image):  # push's goal marker is the only bright green in the top view
        ys, xs = np.nonzero((image[..., 1] > 150) & (image[..., 0] < 100))
        return ys.mean(), xs.mean()

    e = MetaWorldEnv(tasks="push-v3", image_size=64, cameras=("topview",))
    try:
        seen = []
        for s in (1, 21):
            first, _ = e.reset(seed=s)
            after = e.step(np.zeros(4, np.float32))[0]
            assert np.allclose(marker(first[keys.IMAGE]), marker(after[keys.IMAGE]), atol=0.5)
            seen.append(marker(first[keys.IMAGE]))
    finally:
        e.close()
    assert not np.allclose(seen[0], seen[1], atol=1.0)  # each episode's own goal


def test_the_side_viewpoint_shows_the_goal_markers_height():
    """``side`` (a free camera of this package's) sees reach's goal marker, higher goals higher."""

    def marker_row(image):  # reach's goal marker is the only bright, pure red there
        ys, _ = np.nonzero((image[..., 0] > 180) & (image[..., 1] < 60) & (image[..., 2] < 60))
        assert len(ys) >= 4  # several pixels, where the corner view shows 1-2 at this size
        return ys.mean()

    e = MetaWorldEnv(tasks="reach-v3", image_size=64, cameras=("side",), privileged=True)
    try:
        rows, heights = [], []
        for s in range(6):
            obs, _ = e.reset(seed=s)
            rows.append(marker_row(obs[keys.IMAGE]))
            heights.append(obs[keys.PRIVILEGED][keys.SIM_OBS][38])  # the goal's z
    finally:
        e.close()
    assert np.corrcoef(rows, heights)[0, 1] < -0.9  # image rows count downwards


def test_viewpoints_of_ones_own_are_free_cameras():
    from envs.metaworld_env import VIEWPOINTS

    side = VIEWPOINTS["side"]
    views = {"mine": dict(side), "turned": {**side, "azimuth": side["azimuth"] - 40.0}}
    e = MetaWorldEnv(
        tasks="reach-v3", image_size=SIZE, cameras=("side", "mine", "turned"), viewpoints=views
    )
    try:
        obs, _ = e.reset(seed=0)
    finally:
        e.close()
    assert np.array_equal(obs[keys.IMAGE], obs["image_mine"])  # the same pose, the same frame
    assert not np.array_equal(obs[keys.IMAGE], obs["image_turned"])


@pytest.mark.parametrize(
    ("views", "match"),
    [
        ({"corner": {"lookat": (0, 0, 0), "distance": 1, "azimuth": 0, "elevation": 0}}, "hide"),
        ({"v": {"lookat": (0, 0, 0), "distance": 1, "azimuth": 0}}, "needs exactly"),
        ({"v": {"lookat": (0, 0), "distance": 1, "azimuth": 0, "elevation": 0}}, "3 finite"),
        ({"v": {"lookat": (0, 0, 0), "distance": 0, "azimuth": 0, "elevation": 0}}, "> 0"),
    ],
)
def test_bad_viewpoints_are_refused(views, match):
    with pytest.raises(ValueError, match=match):
        MetaWorldEnv(viewpoints=views)


def test_test_split_uses_held_out_wordings():
    from envs.metaworld_env import INSTRUCTIONS

    e = MetaWorldEnv(tasks="door-open-v3", split="test", image_size=SIZE)
    try:
        said = {e.reset(seed=s)[0][keys.INSTRUCTION] for s in range(6)}
    finally:
        e.close()
    train, test = INSTRUCTIONS["door-open-v3"]
    assert said <= set(test) and not said & set(train)


def test_episodes_end_at_the_time_limit():
    e = MetaWorldEnv(tasks="reach-v3", image_size=SIZE, cameras=("topview",), max_episode_steps=3)
    try:
        e.reset(seed=0)
        ends = [e.step(np.zeros(4, np.float32))[3] for _ in range(3)]
    finally:
        e.close()
    assert ends == [False, False, True]


def _reach_until_done(steps_after_success: int) -> tuple[int | None, int, bool]:
    """Drive reach-v3 at its goal (a proportional controller on the privileged observation):
    (the first successful step, the step the episode ended, whether it terminated)."""
    e = MetaWorldEnv(tasks="reach-v3", image_size=SIZE, cameras=("topview",), privileged=True,
                     steps_after_success=steps_after_success)  # fmt: skip
    try:
        obs, _ = e.reset(seed=3)
        first = None
        for t in range(1, 201):
            sim = obs[keys.PRIVILEGED][keys.SIM_OBS]
            act = np.append(np.clip(10 * (sim[36:39] - sim[:3]), -1, 1), 0).astype(np.float32)
            obs, _, terminated, truncated, info = e.step(act)
            if info[keys.SUCCESS] and first is None:
                first = t
            if terminated or truncated:
                return first, t, terminated
    finally:
        e.close()
    raise AssertionError("reach-v3 did not end in 200 steps")


def test_episodes_end_at_success_or_steps_after_it():
    first, end, terminated = _reach_until_done(0)
    assert first is not None and end == first and terminated
    first_k, end_k, terminated_k = _reach_until_done(5)
    assert first_k == first and end_k == first + 5 and terminated_k  # same layout, 5 steps more


def test_render_films_the_render_camera():
    e = MetaWorldEnv(tasks="reach-v3", image_size=SIZE, render_mode="rgb_array", render_size=48)
    try:
        assert e.render() is None  # nothing to film before the first reset
        e.reset(seed=0)
        assert e.render().shape == (48, 48, 3)
    finally:
        e.close()


def test_open_close_cycles_free_their_renderers():
    for s in range(3):
        e = MetaWorldEnv(tasks=["reach-v3", "push-v3"], image_size=SIZE)
        e.reset(seed=s)
        e.step(np.zeros(4, np.float32))
        e.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tasks": "reach-v2"}, "not a Meta-World v3 task"),
        ({"tasks": "basketball-v3"}, "has no instructions yet"),
        ({"tasks": []}, "empty"),
        ({"cameras": ("front",)}, "camera='front'"),
        ({"cameras": ("corner", "corner")}, "without repeats"),
        ({"split": "val"}, "split='val'"),
        ({"image_size": 8}, "image_size=8"),
        ({"max_episode_steps": 0}, "max_episode_steps=0"),
        ({"steps_after_success": -1}, "steps_after_success=-1"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MetaWorldEnv(**kwargs)


def test_bad_actions_and_task_options_are_refused(env):
    with pytest.raises(ValueError, match="options\\['task'\\]"):
        env.reset(seed=0, options={"task": "lift"})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="4 finite floats"):
        env.step(np.array([0.0, np.nan, 0.0, 0.0], np.float32))


def test_shuffled_instructions_name_another_task():
    """Meta-World's instructions name a task, not an object: the shuffled language control must
    tell an episode another task's instruction, not another wording of its own."""
    from policies.instruction_control import control_instructions

    parts = [
        (lambda: MetaWorldEnv(tasks="reach-v3", image_size=16), [0, 1]),
        (lambda: MetaWorldEnv(tasks="push-v3", image_size=16), [2, 3]),
    ]
    from envs.metaworld_env import INSTRUCTIONS

    given = control_instructions(parts, "shuffled")
    reach, push = INSTRUCTIONS["reach-v3"][0], INSTRUCTIONS["push-v3"][0]  # train wordings
    assert {given[0], given[1]} <= set(push) and {given[2], given[3]} <= set(reach)
