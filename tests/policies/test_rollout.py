"""The one rollout loop: N envs through a list of seeds, hooks for what callers add."""

from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from policies.batch import PerEnvPolicies
from policies.rollout import (
    AskQuestion,
    Film,
    RolloutHook,
    info_at,
    observation_after,
    rollout,
    run_episode,
)
from policies.scripted_expert import ScriptedExpert

# picklable by reference, for env worker processes
make_multitask = partial(gym.make, "envs:vla/MultiTask-v0", image_size=16, privileged=True,
                         render_mode="rgb_array", render_size=32)  # fmt: skip


class Trace(RolloutHook):
    """What the loop told its hooks, in order."""

    def __init__(self):
        self.calls: list[tuple] = []

    def on_start(self, envs, episode):
        self.calls.append(("start", episode.env, episode.seed))

    def on_step(self, envs, obs, actions, running):
        assert actions.shape == (envs.num_envs, 4)
        self.calls.append(("step", tuple(None if e is None else e.seed for e in running)))

    def on_end(self, envs, ended):
        self.calls.append(("end", tuple(e.seed for e in ended)))


def test_each_seed_runs_once_and_gives_the_same_episode_in_any_env():
    seeds = [4, 5, 6, 7, 8]
    single = {s: run_episode(make_multitask(), ScriptedExpert(), seed=s) for s in seeds}
    trace = Trace()
    envs = SyncVectorEnv([make_multitask] * 2, autoreset_mode=AutoresetMode.DISABLED)
    try:
        results = rollout(envs, PerEnvPolicies(ScriptedExpert, 2), seeds, [trace])
    finally:
        envs.close()
    assert sorted(r.seed for r in results) == seeds
    for r in results:
        one = single[r.seed]
        assert (r.task, r.instruction, r.success, r.length) == (
            one.task, one.instruction, one.success, one.length
        )  # fmt: skip
        assert r.info["instruction"] == r.instruction and r.env in (0, 1)
    starts = [c for c in trace.calls if c[0] == "start"]
    assert [c[2] for c in starts] == seeds  # seeds handed out in order as envs free up
    assert sum(c[0] == "step" for c in trace.calls) == max(  # both envs step until the last end
        sum(r.length for r in results if r.env == e) for e in (0, 1)
    )
    ends = [s for c in trace.calls if c[0] == "end" for s in c[1]]
    assert ends == [r.seed for r in results]  # returned in the order they ended


def test_film_keeps_every_frame_of_the_chosen_seeds_only():
    envs = AsyncVectorEnv([make_multitask] * 2, autoreset_mode=AutoresetMode.DISABLED,
                          context="spawn", shared_memory=False)  # fmt: skip
    try:
        results = rollout(envs, PerEnvPolicies(ScriptedExpert, 2), [0, 1, 2], [Film({0, 2})])
    finally:
        envs.close()
    by_seed = {r.seed: r for r in results}
    for s in (0, 2):
        frames = by_seed[s].frames
        assert len(frames) == by_seed[s].length + 1  # the reset state and after every step
        assert frames[0].shape == (32, 32, 3) and frames[0].dtype == np.uint8
        assert not np.array_equal(frames[0], frames[-1])  # the robot moved
    assert by_seed[1].frames == []
    single = run_episode(make_multitask(), ScriptedExpert(), seed=2, render=True)
    np.testing.assert_array_equal(np.stack(single.frames), np.stack(by_seed[2].frames))


def test_a_question_is_asked_once_at_the_end_of_the_episodes_that_have_one(tiny_vla):
    from policies.vla_policy import VLAPolicy

    policy = VLAPolicy(tiny_vla(obs_horizon=2, history="start", state=True, seed=0))
    recall = partial(gym.make, "vla/Recall-v0", image_size=32, max_episode_steps=8)  # short
    envs = SyncVectorEnv([recall], autoreset_mode=AutoresetMode.DISABLED)
    try:
        (ep,) = rollout(envs, policy, [3], [AskQuestion(policy)])
    finally:
        envs.close()
    assert ep.info["question"] and ep.info["answer"]  # the simulator's question and truth
    assert isinstance(ep.predicted, str)  # the tiny model's (untrained) answer
    again = policy.answer_batch([0], [ep.info["question"]])  # the same memory, asked again
    assert again == [ep.predicted]
    envs = SyncVectorEnv([make_multitask], autoreset_mode=AutoresetMode.DISABLED)
    try:
        (plain,) = rollout(envs, PerEnvPolicies(ScriptedExpert, 1), [0], [AskQuestion(policy)])
    finally:
        envs.close()
    assert "question" not in plain.info and plain.predicted is None


def test_info_at_unbatches_only_the_envs_entries_as_python_values():
    info = {
        "n_objects": np.array([3, 0]), "_n_objects": np.array([True, False]),
        "task": np.array(["touch", None], dtype=object), "_task": np.array([True, False]),
        "reward": {"near": np.array([0.5, 0.25]), "_near": np.array([True, True])},
        "_reward": np.array([True, True]),
    }  # fmt: skip
    first = info_at(info, 0)
    assert first == {"n_objects": 3, "task": "touch", "reward": {"near": 0.5}}
    assert type(first["n_objects"]) is int and type(first["reward"]["near"]) is float
    assert info_at(info, 1) == {"reward": {"near": 0.25}}


def test_more_envs_than_seeds_is_refused():
    envs = SyncVectorEnv([make_multitask] * 2, autoreset_mode=AutoresetMode.DISABLED)
    try:
        with pytest.raises(ValueError, match="2 envs for 1 seeds"):
            rollout(envs, PerEnvPolicies(ScriptedExpert, 2), [0])
    finally:
        envs.close()


def test_observation_after_acts_the_steps_asked_and_stops_where_the_episode_ends():
    env = make_multitask()
    try:
        start, _ = env.reset(seed=3)
        assert np.array_equal(
            observation_after(env, ScriptedExpert(), 3, 0)["image"], start["image"]
        )
        expert = ScriptedExpert()
        obs, _ = env.reset(seed=3)
        expert.reset()
        for _ in range(4):
            obs, *_ = env.step(expert.act(obs))
        after = observation_after(env, ScriptedExpert(), 3, 4)
        assert np.array_equal(after["state"], obs["state"])
        assert not np.array_equal(after["state"], start["state"])
        length = run_episode(env, ScriptedExpert(), seed=3).length
        last = observation_after(env, ScriptedExpert(), 3, length + 50)  # ends before: its end
        assert np.array_equal(
            last["state"], observation_after(env, ScriptedExpert(), 3, length)["state"]
        )
    finally:
        env.close()
