"""Spoken instructions as part of the env: every observation carries its instruction as speech.

A speech-conditioned policy (``model.instruction`` ``audio`` or ``both``) reads ``obs["audio"]``
(``vla.keys.AUDIO``: a float waveform at the model's rate), the way it would read a microphone.
:class:`SpokenInstructionEnv` adds it to every observation of any env with an ``instruction``:

    env = SpokenInstructionEnv(gym.make("vla/Touch-v0", split="test"),
                               InstructionVoice(sample_rate=16000, split="test"))

``vla-eval`` and the training rollouts wrap the env this way for a speech checkpoint (the voices
of ``speech.split``: ``test`` = speakers never heard in training); the audio demo wraps it with
the recorded or synthesized command instead of a voice.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs import keys as obs_keys
from vla.keys import AUDIO


class SpokenInstructionEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """``env`` with ``obs["audio"]``: ``voice(obs["instruction"])``, a waveform ``(N,)`` float32
    in [-1, 1], in every observation.

    Args:
        env: an env whose observations hold an ``instruction``.
        voice: ``text -> waveform``; ``policies.speech.InstructionVoice`` speaks each sentence with
            a voice drawn from a split's pools, seeded by the text (the same sentence always
            sounds the same, whichever env or episode order); a function returning a fixed
            waveform makes every episode hear one recorded command.
    """

    def __init__(self, env: gym.Env, voice: Callable[[str], np.ndarray]):
        gym.utils.RecordConstructorArgs.__init__(self, voice=voice)  # env.spec can remake it
        gym.Wrapper.__init__(self, env)
        if not isinstance(env.observation_space, spaces.Dict) or (
            obs_keys.INSTRUCTION not in env.observation_space.spaces
        ):
            raise ValueError(
                f"SpokenInstructionEnv speaks the observation's {obs_keys.INSTRUCTION!r}, but the "
                f"env observes {env.observation_space}: wrap an env with instructions"
            )
        self.voice = voice
        # variable length: a clip per sentence (batched as a tuple of arrays by vector envs)
        wave = spaces.Sequence(spaces.Box(-1.0, 1.0, (), np.float32), stack=True)
        self.observation_space = spaces.Dict({**env.observation_space.spaces, AUDIO: wave})

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._spoken(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._spoken(obs), reward, terminated, truncated, info

    def _spoken(self, obs: dict[str, Any]) -> dict[str, Any]:
        wave = np.asarray(self.voice(str(obs[obs_keys.INSTRUCTION])), np.float32)  # (N,)
        return {**obs, AUDIO: wave.reshape(-1)}


def speech_wrappers(
    policy: Any, split: str = "train", seed: int = 0
) -> list[Callable[[gym.Env], gym.Env]]:
    """The env wrappers ``policy`` needs to hear its instructions (``evaluate(env_wrappers=)``):
    for a speech model (``policy.listens``), :class:`SpokenInstructionEnv` with an
    ``InstructionVoice`` of ``split``'s voices and ``seed`` at the model's rate; none otherwise
    (nor an espeak-ng check)."""
    if not getattr(policy, "listens", False):
        return []
    from policies.speech import InstructionVoice

    voice = InstructionVoice(policy.model.speech.sample_rate, split, seed)
    return [partial(SpokenInstructionEnv, voice=voice)]
