"""Spoken instructions as an env wrapper: every observation carries ``audio``, the policy reads it.

Tests without espeak-ng use a voice that spells the sentence (its bytes as samples): a real
waveform function whose input can be read back from its output."""

import shutil
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from policies.batch import PerEnvPolicies
from policies.evaluate import evaluate
from policies.rollout import rollout
from policies.scripted_expert import ScriptedExpert
from policies.spoken_instruction_env import SpokenInstructionEnv, speech_wrappers
from policies.vla_policy import VLAPolicy
from vla.keys import AUDIO

TOUCH = {"_target_": "gymnasium.make", "id": "envs:vla/Touch-v0", "image_size": 32}
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make speech-deps)"
)


def spell(text: str) -> np.ndarray:
    """The sentence's bytes as a waveform ``(len,)`` in [0, 1]: ``heard`` reads it back."""
    return np.frombuffer(text.encode(), np.uint8).astype(np.float32) / 255


def heard(wave: np.ndarray) -> str:
    return bytes(np.round(np.asarray(wave) * 255).astype(np.uint8)).decode()


# check_env warns that the env is wrapped (on purpose), and gymnasium's Sequence of scalar Boxes
# checks each sample as a NumPy scalar (a cast it warns about)
@pytest.mark.filterwarnings("ignore:.*(different from the unwrapped|Casting input x)")
def test_every_observation_carries_the_spoken_instruction():
    env = SpokenInstructionEnv(gym.make("vla/Touch-v0", image_size=32), spell)
    try:
        assert AUDIO in env.observation_space.spaces
        obs, info = env.reset(seed=3)
        assert obs[AUDIO].dtype == np.float32 and obs[AUDIO].ndim == 1
        assert heard(obs[AUDIO]) == obs["instruction"] == info["instruction"]
        obs, *_ = env.step(env.action_space.sample())
        assert heard(obs[AUDIO]) == info["instruction"]
        check_env(env, skip_render_check=True)  # still a valid gymnasium env
    finally:
        env.close()


def test_an_env_without_instructions_is_refused():
    with pytest.raises(ValueError, match="SpokenInstructionEnv speaks the observation's"):
        SpokenInstructionEnv(gym.make("CartPole-v1"), spell)


class Listener:
    """The scripted expert's actions, and what the policy heard and was told at each step."""

    def __init__(self, num_envs: int):
        self.inner = PerEnvPolicies(ScriptedExpert, num_envs)
        self.needs_privileged = True
        self.heard: list[tuple[str, str]] = []  # (heard, told)

    def reset(self, mask):
        self.inner.reset(mask)

    def act_batch(self, obs):
        pairs = zip(obs[AUDIO], obs["instruction"], strict=True)
        self.heard += [(heard(a), str(t)) for a, t in pairs]
        return self.inner.act_batch(obs)


@pytest.mark.parametrize("control", ["given", "shuffled"])
def test_a_language_control_is_heard_too(control):
    """The spoken-instruction wrapper sits outside the control's: the policy hears what it is
    told, never the env's own sentence under ``shuffled``."""
    policy = Listener(1)
    report = evaluate(TOUCH, policy, episodes=4, seed=11, num_envs=1, instruction=control,
                      progress=False, env_wrappers=[partial(SpokenInstructionEnv, voice=spell)])  # fmt: skip
    assert policy.heard and all(h == t for h, t in policy.heard)
    details = report["episodes_detail"]
    told = {e["instruction"] if control == "given" else e["given"] for e in details}
    assert {t for _, t in policy.heard} == told
    if control == "shuffled":
        assert all(e["given"] != e["instruction"] for e in details)


def test_vector_envs_batch_the_waveforms_for_a_speech_policy(tiny_vla):
    policy = VLAPolicy(tiny_vla(speech=True, seed=0))

    def make():  # 3-step episodes: an untrained policy would otherwise run all 50
        return SpokenInstructionEnv(gym.make("vla/Touch-v0", image_size=32, max_episode_steps=3),
                                    spell)  # fmt: skip

    envs = SyncVectorEnv([make, make], autoreset_mode=AutoresetMode.DISABLED)
    try:
        policy.check_observation_space(envs.single_observation_space)
        obs, _ = envs.reset(seed=[0, 1])
        assert [heard(a) for a in obs[AUDIO]] == list(obs["instruction"])
        results = rollout(envs, policy, [0, 1])
    finally:
        envs.close()
    assert sorted(r.seed for r in results) == [0, 1]
    for e, r in zip(policy._envs, sorted(results, key=lambda r: r.env), strict=True):
        assert heard(e["audio"]) == r.instruction  # heard once, at the episode's start


def test_a_speech_policy_without_audio_names_the_wrapper(tiny_vla):
    policy = VLAPolicy(tiny_vla(speech=True))
    env = gym.make("vla/Touch-v0", image_size=32)
    try:
        fix = "wrap the env in policies.spoken_instruction_env.SpokenInstructionEnv"
        with pytest.raises(ValueError, match=fix):
            policy.check_observation_space(env.observation_space)
        obs, _ = env.reset(seed=0)
        policy.reset()
        with pytest.raises(ValueError, match=fix):
            policy.act(obs)
    finally:
        env.close()


def test_text_policies_need_no_wrapper(tiny_vla):
    assert speech_wrappers(VLAPolicy(tiny_vla()), split="test") == []
    assert speech_wrappers(PerEnvPolicies(ScriptedExpert, 1)) == []


@needs_espeak
def test_speech_wrappers_speak_with_the_splits_voices_seeded_by_the_text(tiny_vla):
    from policies.speech import InstructionVoice

    policy = VLAPolicy(tiny_vla(speech=True))
    (wrap,) = speech_wrappers(policy, split="test", seed=3)
    env = wrap(gym.make("vla/Touch-v0", image_size=32))
    try:
        first, _ = env.reset(seed=5)
        again, _ = env.reset(seed=5)
    finally:
        env.close()
    voice = InstructionVoice(16000, "test", 3)
    np.testing.assert_array_equal(first[AUDIO], voice(first["instruction"]))
    np.testing.assert_array_equal(first[AUDIO], again[AUDIO])
    other = InstructionVoice(16000, "train", 3)(first["instruction"])
    assert other.shape != first[AUDIO].shape or not np.array_equal(other, first[AUDIO])
