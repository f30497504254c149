import gymnasium as gym
import numpy as np
import pytest

import envs
from policies.policy import Policy
from policies.rollout import run_episode as rollout
from policies.scripted_expert import CONTROLLERS, ScriptedExpert, controls


def run_episode(env, expert, seed):
    return rollout(env, expert, seed=seed).success


@pytest.mark.parametrize("task_id", envs.SINGLE_TASK_IDS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_expert_succeeds(task_id, split):
    env = gym.make(task_id, privileged=True, image_size=16, split=split)
    try:
        wins = [run_episode(env, ScriptedExpert(), seed) for seed in range(3)]
        assert all(wins), wins
    finally:
        env.close()


def test_noisy_expert_recovers():
    env = gym.make(envs.MULTITASK_ID, privileged=True, image_size=16)
    try:
        expert = ScriptedExpert(noise=0.1, seed=0)
        wins = [run_episode(env, expert, seed) for seed in range(10)]
        assert sum(wins) >= 8, wins
    finally:
        env.close()


def test_noise_changes_actions_and_is_seeded():
    env = gym.make("vla/Lift-v0", privileged=True, image_size=16)
    try:
        obs, _ = env.reset(seed=0)
        clean = ScriptedExpert().act(obs)
        a, b = ScriptedExpert(noise=0.2, seed=1), ScriptedExpert(noise=0.2, seed=1)
        np.testing.assert_array_equal(a.act(obs), b.act(obs))
        assert not np.allclose(a.act(obs), clean)
        assert np.all(np.abs(a.act(obs)) <= 1)
    finally:
        env.close()


def test_expert_is_a_policy_and_needs_privileged_state():
    expert = ScriptedExpert()
    assert isinstance(expert, Policy)
    env = gym.make("vla/Touch-v0", image_size=16)
    try:
        obs, _ = env.reset(seed=0)
        with pytest.raises(ValueError, match="privileged=True"):
            expert.act(obs)
    finally:
        env.close()
    with pytest.raises(ValueError, match="noise=-1"):
        ScriptedExpert(noise=-1)


def test_every_task_has_a_registered_controller():
    assert set(envs.TASK_NAMES) <= set(CONTROLLERS)
    assert CONTROLLERS["relation"] is CONTROLLERS["recall"] is CONTROLLERS["touch"]
    with pytest.raises(ValueError, match="task 'lift' already has an expert controller"):
        controls("lift")(lambda expert, view: (view.tcp, 1.0))


def test_the_registered_controller_is_what_the_expert_runs(monkeypatch):
    env = gym.make("vla/Push-v0", privileged=True, image_size=16)
    try:
        obs, _ = env.reset(seed=0)
    finally:
        env.close()
    monkeypatch.delitem(CONTROLLERS, "push")  # restored after the test
    with pytest.raises(
        ValueError, match=r"no scripted expert for task 'push'.*@controls\('push'\)"
    ):
        ScriptedExpert().act(obs)

    @controls("push")
    def half_right_and_close(expert, view):  # 1.5 cm along +x, gripper half closed
        return view.tcp + np.array([0.015, 0.0, 0.0]), 0.5

    np.testing.assert_allclose(ScriptedExpert().act(obs), [0.5, 0.0, 0.0, 0.5], atol=1e-6)
