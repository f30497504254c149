import gymnasium as gym
import numpy as np
import pytest

from policies.vla_policy import VLAPolicy
from vla.history import observation_steps


def test_vla_policy_names_the_camera_override_it_needs(tiny_vla):
    policy = VLAPolicy(
        tiny_vla(num_cameras=2), ("image", "image_top"), trained_cameras=["front", "top"]
    )
    env = gym.make("vla/Touch-v0", image_size=32)  # front camera only
    with pytest.raises(ValueError, match=r"env.cameras=\[front,top\]"):
        policy.check_observation_space(env.observation_space)
    two = gym.make("vla/Touch-v0", image_size=32, cameras=("front", "top"))
    policy.check_observation_space(two.observation_space)  # agrees: no error
    env.close()
    two.close()


@pytest.mark.parametrize("history", ["recent", "start"])
def test_policy_frames_match_training_windows(history, tiny_vla):
    """At every step the policy feeds the frames a training window holds (vla.history)."""
    policy = VLAPolicy(tiny_vla(obs_horizon=3, history=history, state=True), n_action_steps=1)
    policy.reset()
    for t in range(6):  # frame t is filled with the value t, its state with t too
        obs = {"image": np.full((32, 32, 3), t, np.uint8), "state": np.full(7, t, np.float32),
               "instruction": "touch the red cube"}  # fmt: skip
        policy.act(obs)
        frames, states = policy._observation(policy._envs[0])  # (T, V, H, W, 3), (T, S)
        expected = observation_steps(t, 0, 3, history).tolist()
        assert frames[:, 0, 0, 0, 0].tolist() == expected
        assert states[:, 0].tolist() == expected


def test_an_action_size_mismatch_fails_before_any_rollout(tiny_vla):
    from gymnasium import spaces

    from policies.evaluate import evaluate

    policy = VLAPolicy(tiny_vla(), ("image",))
    policy.check_action_space(spaces.Box(-1, 1, (4,)))  # the tabletop's 4-d action: fine
    with pytest.raises(ValueError, match=r"actions of shape \(7,\) but the checkpoint predicts 4"):
        policy.check_action_space(spaces.Box(-1, 1, (7,)))
    seven = VLAPolicy(tiny_vla(action_dim=7), ("image",))
    env = {"_target_": "gymnasium.make", "id": "envs:vla/Touch-v0", "image_size": 32}
    with pytest.raises(ValueError, match="predicts 7-d actions"):
        evaluate(env, seven, episodes=1, num_envs=1, progress=False)


@pytest.mark.parametrize("text", ["", "   ", " . "])
def test_an_empty_instruction_is_refused_unless_allowed(text, tiny_vla):
    obs = {"image": np.zeros((32, 32, 3), np.uint8), "state": np.zeros(7, np.float32),
           "instruction": text}  # fmt: skip
    policy = VLAPolicy(tiny_vla(), ("image",))
    policy.reset()
    with pytest.raises(ValueError, match="is empty: give the task as a sentence"):
        policy.act(obs)
    blind = VLAPolicy(tiny_vla(), ("image",), allow_empty_instruction=True)
    blind.reset()
    assert blind.act(obs).shape == (4,)  # an instruction-blind control acts


def test_a_task_missing_from_the_training_store_fails_before_any_rollout(tiny_vla):
    from policies.evaluate import evaluate

    policy = VLAPolicy(tiny_vla(num_cameras=1), ("image",), trained_tasks=("touch", "lift"))
    policy.check_tasks(("touch",))  # a subset of what it trained on: fine
    env = {"_target_": "gymnasium.make", "id": "envs:vla/MultiTask-v0", "image_size": 32}
    with pytest.raises(ValueError, match=r"tasks \['push', 'pick_place', 'relation'\] that this"):
        evaluate(env, policy, episodes_per_task=1, progress=False)
    unknown = VLAPolicy(tiny_vla(num_cameras=1), ("image",))  # trained tasks not recorded
    unknown.check_tasks(("touch", "push"))


COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")


def step_obs(t: int) -> dict:
    """Observation ``t`` of a made-up episode: frame, state and wording all differ per step."""
    return {"image": np.full((32, 32, 3), 40 * t, np.uint8),
            "state": np.full(7, 0.1 * t - 0.3, np.float32),
            "instruction": f"touch the {COLOURS[t]} cube"}  # fmt: skip


@pytest.fixture
def chunks(tiny_vla):
    """A 3-step model and its chunk (H=3, D=4) for each of 6 observations, each predicted alone
    (obs_horizon 1: the chunk depends on that observation only)."""
    model = tiny_vla(state=True, action_horizon=3, n_bins=256, seed=0)
    out = []
    for t in range(6):
        alone = VLAPolicy(model)
        alone.reset()
        out.append(alone.act_chunk(step_obs(t)))  # (3, 4)
    # every schedule executes a different action sequence, or the tests below prove nothing
    runs = {np.stack([out[t - t % k][t % k] for t in range(6)]).tobytes() for k in (1, 2, 3)}
    assert len(runs) == 3
    return model, out


@pytest.mark.parametrize("k", [1, 2, 3, None])
def test_n_action_steps_runs_the_first_k_actions_of_each_chunk_then_replans(k, chunks):
    model, predicted = chunks
    policy = VLAPolicy(model, n_action_steps=k)
    policy.reset()
    steps = k or 3  # None: the whole chunk
    for t in range(6):
        planned = t - t % steps  # the step whose chunk is being executed
        np.testing.assert_array_equal(policy.act(step_obs(t)), predicted[planned][t % steps])


def test_temporal_ensemble_is_the_weighted_mean_of_every_chunk_covering_the_step(chunks):
    model, predicted = chunks
    m = 0.5
    policy = VLAPolicy(model, temporal_ensemble=m)
    policy.reset()
    mixed = False
    for t in range(6):
        votes = np.stack([predicted[s][t - s] for s in range(max(0, t - 2), t + 1)])  # oldest 1st
        w = np.exp(-m * np.arange(len(votes)))  # ACT: w_i = exp(-m * i), i = 0 the oldest
        expected = (w[:, None] * votes).sum(0) / w.sum()  # (4,)
        np.testing.assert_allclose(policy.act(step_obs(t)), expected, rtol=1e-6, atol=1e-7)
        mixed = mixed or not np.allclose(expected, predicted[t][0])
    assert mixed  # some step's mean differs from the newest chunk's first action


@pytest.mark.parametrize(
    "m, expected",
    [
        (1.0, [0.0, np.exp(-1) / (1 + np.exp(-1)),
               (np.exp(-1) + 2 * np.exp(-2)) / (1 + np.exp(-1) + np.exp(-2)),
               (1 + 2 * np.exp(-1) + 3 * np.exp(-2)) / (1 + np.exp(-1) + np.exp(-2))]),
        (0.0, [0.0, 0.5, 1.0, 2.0]),  # m = 0: the plain mean of the chunks covering the step
    ],
)  # fmt: skip
def test_temporal_ensemble_of_hand_made_chunks(m, expected, tiny_vla):
    """Chunk j (H=3) predicts the value j for every step it covers; at step 3 chunk 0 has run
    out, so chunks 1, 2, 3 vote, chunk 1 (the oldest) with the largest weight."""
    policy = VLAPolicy(tiny_vla(action_horizon=3), temporal_ensemble=m)
    env = policy._fresh()
    actions = []
    for j in range(4):
        policy._plan(env, np.full((3, 4), float(j), np.float32))  # (H, D)
        actions.append(policy._next_action(env))
    np.testing.assert_allclose(np.stack(actions), np.repeat(np.array(expected)[:, None], 4, 1))
    assert [t0 for t0, _ in env["plans"]] == [1, 2, 3]


def test_an_unknown_compile_mode_is_refused(tiny_vla):
    with pytest.raises(ValueError, match=r"compile='fast': choose None \(eager\) or one of"):
        VLAPolicy(tiny_vla(), ("image",), compile="fast")


@pytest.mark.slow
def test_a_compiled_policy_acts_as_the_eager_one(tiny_vla):
    """policy.compile=default: predict_actions through torch.compile (inductor), same actions."""
    model = tiny_vla(state=True)
    eager = VLAPolicy(model, ("image",), n_action_steps=1)
    compiled = VLAPolicy(model, ("image",), n_action_steps=1, compile="default")
    assert compiled._predict_actions is not model.predict_actions
    rng = np.random.default_rng(0)
    for policy in (eager, compiled):
        policy.reset()
    for _ in range(3):
        obs = {"image": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
               "state": rng.uniform(-1, 1, 7).astype(np.float32),
               "instruction": "touch the red cube"}  # fmt: skip
        np.testing.assert_allclose(compiled.act(obs), eager.act(obs), atol=1e-5)


def test_a_drawing_policy_is_reproducible_by_seed_and_greedy_by_default(tiny_vla):
    """policy.temperature > 0 draws each action bin; the same seed replays the same run."""
    model = tiny_vla(state=True)
    rng = np.random.default_rng(0)
    steps = [{"image": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
              "state": rng.uniform(-1, 1, 7).astype(np.float32),
              "instruction": "touch the red cube"} for _ in range(4)]  # fmt: skip

    def run(**kw) -> np.ndarray:
        policy = VLAPolicy(model, ("image",), n_action_steps=1, **kw)
        policy.reset()
        return np.stack([policy.act(obs) for obs in steps])  # (4, D)

    greedy = run()
    np.testing.assert_array_equal(run(temperature=0.0, seed=5), greedy)  # seed unused
    drawn = run(temperature=1.0, seed=0)
    np.testing.assert_array_equal(run(temperature=1.0, seed=0), drawn)
    assert not np.array_equal(run(temperature=1.0, seed=1), drawn)
    with pytest.raises(ValueError, match=r"temperature=-1.0 must be a finite number >= 0"):
        VLAPolicy(model, ("image",), temperature=-1.0)


def test_predict_goal_reads_the_goal_head_on_what_the_policy_has_seen(tiny_vla):
    import torch

    from vla.prompt import PromptInputs

    model = tiny_vla(seed=0, state=True, goal_loss=1.0)
    policy = VLAPolicy(model, ("image",))
    policy.reset()
    with pytest.raises(ValueError, match="call act / act_batch before predict_goal"):
        policy.predict_goal()
    rng = np.random.default_rng(0)
    obs = {"image": rng.integers(0, 255, (2, 32, 32, 3), np.uint8),
           "state": rng.normal(size=(2, 7)).astype(np.float32),
           "instruction": ["touch the red cube", "touch the blue ball"]}  # fmt: skip
    policy.act_batch(obs)
    goal = policy.predict_goal()
    assert goal.shape == (2, 7)  # one row per env, the state dims the model reads (all 7 here)
    images = torch.from_numpy(obs["image"])[:, None, None].permute(0, 1, 2, 5, 3, 4)
    state = torch.from_numpy(obs["state"])[:, None]
    direct = model.predict_goal(PromptInputs(images, obs["instruction"], state))
    np.testing.assert_allclose(goal, direct.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(goal[0], goal[1])  # each env its own scene and words
    headless = VLAPolicy(tiny_vla(state=True), ("image",))
    headless.act_batch(obs)
    with pytest.raises(ValueError, match="no goal head"):
        headless.predict_goal()
