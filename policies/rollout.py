"""Run a policy in a vector env: the one episode loop evaluation, collection, the audio demo and
:func:`run_episode` share.

:func:`rollout` steps N envs together (a gymnasium vector env, autoreset off) through a list of
episode seeds: the policy acts on the batch of all N observations every step, and each env starts
the next seed when its episode ends. A single-env run is the N = 1 case (:func:`run_episode`).
What a caller does besides acting goes into hooks (:class:`RolloutHook`), called in the order
given: recording steps for a store (``policies.collect``), filming frames (:class:`Film`), asking
the end-of-episode question (:class:`AskQuestion`), per-episode results (``policies.evaluate``).

A vector env steps all its envs at once, so an env with no seed left replays its last episode
(reset with the same seed whenever it ends) until the others are done: its steps count for
nothing, and its observations keep the shapes (the instruction's length) they had.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import SyncVectorEnv, VectorEnv

from envs import keys
from policies.batch import BatchPolicy, PerEnvPolicies, obs_at
from policies.policy import Policy


@dataclass
class EpisodeResult:
    seed: int | None
    task: str
    instruction: str  # the env's own sentence, whatever a language control told the policy
    success: bool  # at any step (the tabletop envs end an episode when it succeeds)
    length: int  # steps taken
    env: int  # index of the env (in the vector) that ran it
    info: dict[str, Any]  # the env's reset info: split, target, question and answer, ...
    frames: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8 each, by Film
    predicted: str | None = None  # the policy's answer to the episode's question, by AskQuestion


class RolloutHook:
    """What a rollout does besides acting; every method is a no-op here, override what you need.

    ``running`` lists the episode each env is in (None for an env with no seed left)."""

    def on_start(self, envs: VectorEnv, episode: EpisodeResult) -> None:
        """``episode`` has just been reset in env ``episode.env`` (after ``policy.reset``)."""

    def on_step(
        self,
        envs: VectorEnv,
        obs: dict[str, Any],
        actions: np.ndarray,
        running: list[EpisodeResult | None],
    ) -> None:
        """The policy chose ``actions`` (N, D) for the batched ``obs``; the envs step next."""

    def on_end(self, envs: VectorEnv, ended: list[EpisodeResult]) -> None:
        """``ended`` (by env index) finished on this step; their envs have not been reset yet."""


def rollout(
    envs: VectorEnv,
    policy: BatchPolicy,
    seeds: Sequence[int],
    hooks: Sequence[RolloutHook] = (),
    options: dict[str, Any] | None = None,
) -> list[EpisodeResult]:
    """Run the episodes ``seeds`` in ``envs`` (made with ``AutoresetMode.DISABLED``); returns
    them in the order they ended.

    Args:
        envs: N envs; N must not exceed ``len(seeds)``. The caller owns (and closes) them.
        policy: acts on batches of N observations; reset per env as its episodes start.
        seeds: one episode per seed; env ``i`` starts with ``seeds[i]``, and an env whose
            episode ends takes the next seed not yet run.
        hooks: called in order at each episode start, step and end.
        options: reset options of every episode (e.g. ``{"target": ("red", "cube")}``).
    """
    n = envs.num_envs
    if not 1 <= n <= len(seeds):
        raise ValueError(f"{n} envs for {len(seeds)} seeds: give at least one seed per env")
    queue = deque(seeds)
    seed_of: list[int | None] = [queue.popleft() for _ in range(n)]  # each env's (last) seed
    running: list[EpisodeResult | None] = [None] * n
    obs, info = envs.reset(seed=seed_of, options=options)
    started = np.ones(n, bool)  # (N,)
    results: list[EpisodeResult] = []
    while True:
        if started.any():
            policy.reset(started)
            for i in np.flatnonzero(started):
                running[i] = _episode(int(i), seed_of[i], obs, info)
                for hook in hooks:
                    hook.on_start(envs, running[i])
        actions = policy.act_batch(obs)  # (N, D)
        for hook in hooks:
            hook.on_step(envs, obs, actions, running)
        obs, _, terminated, truncated, info = envs.step(actions)
        live = np.array([ep is not None for ep in running])  # (N,)
        success = info.get(keys.SUCCESS, np.zeros(n, bool))  # (N,)
        for i in np.flatnonzero(live):
            running[i].length += 1
            running[i].success = running[i].success or bool(success[i])
        over = terminated | truncated  # (N,)
        started = np.zeros(n, bool)
        if (over & live).any():
            ended = [running[i] for i in np.flatnonzero(over & live)]
            for hook in hooks:
                hook.on_end(envs, ended)
            results += ended
            for i in np.flatnonzero(over & live):
                running[i] = None
                if queue:
                    seed_of[i], started[i] = queue.popleft(), True
            if not started.any() and all(ep is None for ep in running):
                return results
        if over.any():  # the started get their new seed; the rest replay theirs, for nothing
            again = [s if r else None for s, r in zip(seed_of, over, strict=True)]
            obs, info = envs.reset(seed=again, options={**(options or {}), "reset_mask": over})


def run_episode(
    env: gym.Env,
    policy: Policy,
    seed: int | None = None,
    render: bool = False,
    hooks: Sequence[RolloutHook] = (),
) -> EpisodeResult:
    """One episode of a single-env ``policy`` from ``reset(seed=seed)`` until it ends.

    With ``render=True`` the env must have ``render_mode="rgb_array"``; every frame from the
    reset state on is kept (length + 1 frames). ``hooks`` run as in :func:`rollout`, after the
    filming. The env stays open (the caller's).
    """
    envs = SyncVectorEnv([lambda: env], autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    film = [Film({seed})] if render else []
    (result,) = rollout(envs, PerEnvPolicies(lambda: policy, 1), [seed], [*film, *hooks])
    return result


def observation_after(env: gym.Env, policy: Policy, seed: int | None, steps: int) -> dict:
    """The observation of ``env`` reset with ``seed`` after ``policy`` acted ``steps`` steps in
    it, or where the episode ended before (a later phase of an episode to probe a policy at)."""
    obs, _ = env.reset(seed=seed)
    policy.reset()
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(policy.act(obs))
        if terminated or truncated:
            break
    return obs


class Film(RolloutHook):
    """Keeps the frames of the episodes whose seed is in ``seeds``: one ``render`` call for all
    envs before every step and one after the last (``EpisodeResult.frames``: length + 1).

    The envs must render ``rgb_array`` frames."""

    def __init__(self, seeds: Container[int | None]):
        self.seeds = seeds
        self._frames: dict[int | None, list[np.ndarray]] = defaultdict(list)

    def on_step(self, envs, obs, actions, running) -> None:
        filmed = [ep is not None and ep.seed in self.seeds for ep in running]
        if any(filmed):
            for ep, frame, keep in zip(running, envs.call("render"), filmed, strict=True):
                if keep:
                    self._frames[ep.seed].append(frame)

    def on_end(self, envs, ended) -> None:
        filmed = [ep for ep in ended if ep.seed in self._frames]
        if filmed:
            last = envs.call("render")  # the final state of every env, in one call
            for ep in filmed:
                ep.frames = [*self._frames.pop(ep.seed), last[ep.env]]


class AskQuestion(RolloutHook):
    """At the end of an episode whose task asks a question (reset info ``question``: the recall
    task), a policy that answers text (``answer_batch``) answers it from what it saw
    (``EpisodeResult.predicted``); all episodes ending together in one batch."""

    def __init__(self, policy: Any):
        self.answer_batch = getattr(policy, "answer_batch", None)

    def on_end(self, envs, ended) -> None:
        asked = [ep for ep in ended if keys.QUESTION in ep.info]
        if not asked or self.answer_batch is None:
            return
        questions = [ep.info[keys.QUESTION] for ep in asked]
        answers = self.answer_batch([ep.env for ep in asked], questions)
        for ep, answer in zip(asked, answers, strict=True):
            ep.predicted = answer


def info_at(info: dict[str, Any], i: int) -> dict[str, Any]:
    """Env ``i``'s entries of a vector env's ``info`` (those its ``_<key>`` masks mark), with
    NumPy scalars back as Python values (an ``int`` stays an ``int`` in a store's metadata)."""
    out = {}
    for k, v in info.items():
        if k.startswith("_") and k[1:] in info:
            continue  # a mask
        if f"_{k}" in info and not info[f"_{k}"][i]:
            continue
        value = info_at(v, i) if isinstance(v, dict) else v[i]
        out[k] = value.item() if isinstance(value, np.generic) else value
    return out


def _episode(i: int, seed: int | None, obs: dict[str, Any], info: dict[str, Any]) -> EpisodeResult:
    mine = info_at(info, i)
    told = obs_at(obs, i).get(keys.INSTRUCTION, "")  # for envs whose info has no instruction
    return EpisodeResult(
        seed=seed,
        task=str(mine.get(keys.TASK, "")),
        instruction=str(mine.get(keys.INFO_INSTRUCTION, told)),
        success=False,
        length=0,
        env=i,
        info=mine,
    )
