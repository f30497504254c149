"""Collect scripted-expert demonstrations into an episode store, in parallel worker processes.

Each episode is seeded (``seed``, ``seed + 1``, ...) and run by ``policies.rollout`` (one env
per worker, a :class:`Demonstration` hook recording it); workers return finished episodes to
this process, which alone writes them (``vla.data.EpisodeWriter``: one atomic commit per batch
of up to ``COMMIT_EVERY`` episodes, all or none). Results are consumed in seed order, so the
store is the same whatever the number of workers, and an interrupted collection resumes after
the last committed seed.

With ``speech=True`` every instruction is also spoken (``policies.speech.SpeechSynthesizer``,
espeak-ng) with a generator seeded by ``(speech_seed, episode seed)`` and voices from the env's
split, and stored as the episode's audio: the same seeds give the same waveforms.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported, here and in workers

import numpy as np  # noqa: E402

from envs import keys as obs_keys  # noqa: E402
from policies.batch import PerEnvPolicies, obs_at  # noqa: E402
from policies.dataset_card import SPEECH, CollectSummary, write_card  # noqa: E402
from policies.rollout import RolloutHook, rollout  # noqa: E402
from vla import keys  # noqa: E402
from vla.data import EpisodeStore, EpisodeWriter  # noqa: E402
from vla.data.store_format import is_image_key  # noqa: E402
from vla.progress import Progress  # noqa: E402
from vla.specs import EnvSpec  # noqa: E402

_worker: dict[str, Any] = {}  # per worker process: its env, expert, recorder and synthesizer
COMMIT_EVERY = 16  # episodes per store commit (see collect)
COMMIT_EVERY_S = 2.0  # ... or this many seconds since the last commit, whichever comes first
# the expert a store is collected with (configs/collect.yaml `expert`): a factory called with
# the worker's env and the noise
DEFAULT_EXPERT = {"_target_": "policies.scripted_expert.ScriptedExpert.for_env"}


def env_spec_of(env, env_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What a store records about the env it came from (checked again when training/evaluating)."""
    space = env.action_space
    u = env.unwrapped
    return EnvSpec(
        env_id=str(env_cfg.get("id", "")).split(":")[-1],
        action_shape=tuple(space.shape),
        action_low=tuple(space.low.tolist()),
        action_high=tuple(space.high.tolist()),
        control_hz=float(env.metadata.get("render_fps", 1.0 / u.dt)),
        cameras=tuple(u.cameras),
        image_size=(u.image_size, u.image_size),
        state_names=tuple(getattr(u, "state_names", obs_keys.STATE_NAMES)),
        split=u.split,
    ).to_dict()


def camera_kwargs(spec: EnvSpec) -> dict[str, Any]:
    """The env kwargs that film a scene as ``spec``'s store was filmed (its cameras and image
    size; whichever the spec leaves out is left to the env's default)."""
    kwargs: dict[str, Any] = {}
    if spec.cameras:
        kwargs["cameras"] = list(spec.cameras)
    if spec.image_size:
        kwargs["image_size"] = spec.image_size[0]
    return kwargs


def _init_worker(
    env_cfg: dict[str, Any],
    expert_cfg: dict[str, Any],
    noise: float,
    seed: int,
    speech: bool,
    speech_seed: int,
) -> None:
    from gymnasium.vector import AutoresetMode, SyncVectorEnv
    from hydra.utils import instantiate

    from policies.speech import SpeechSynthesizer

    env = instantiate(env_cfg, privileged=True)
    expert = instantiate(expert_cfg, env=env, noise=noise)
    _worker["envs"] = SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.DISABLED)
    _worker["policy"] = PerEnvPolicies(lambda: expert, 1)
    _worker["record"] = Demonstration(expert, seed)
    _worker["speech"] = SpeechSynthesizer() if speech else None  # one per worker: checks voices
    _worker["speech_seed"] = speech_seed


class Demonstration(RolloutHook):
    """Records an expert's episode for the store: the observation before each action and the
    expert's clean action there (``episode``: arrays ``(L, ...)`` by store key, the last one run).

    With noise the env executes perturbed actions (so the data shows recoveries from states
    the clean expert never visits) while the stored action is the clean one (DART).
    """

    def __init__(self, expert: Any, noise_seed: int):
        self.expert, self.noise_seed = expert, noise_seed
        self.episode: dict[str, np.ndarray] = {}
        self._steps: dict[str, list[np.ndarray]] = {}

    def on_start(self, envs, episode) -> None:
        # the noise stream depends on the episode seed only: same data with any number of workers
        self.expert.rng = np.random.default_rng([self.noise_seed, episode.seed])
        self._steps = {}

    def on_step(self, envs, obs, actions, running) -> None:
        seen = obs_at(obs, 0)
        step = {k: v for k, v in seen.items() if is_image_key(k)}
        step[keys.STATE] = seen[obs_keys.STATE]
        step[keys.ACTION] = self.expert.clean_action  # the label: the expert's intent
        for k, v in step.items():
            self._steps.setdefault(k, []).append(v)

    def on_end(self, envs, ended) -> None:
        self.episode = {k: np.stack(v) for k, v in self._steps.items()}  # (L, ...)


def _rollout(seed: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One expert episode (:class:`Demonstration`) and its metadata for the store."""
    record = _worker["record"]
    (result,) = rollout(_worker["envs"], _worker["policy"], [seed], [record])
    episode, info = record.episode, result.info
    meta = {
        keys.INSTRUCTION: info[obs_keys.INFO_INSTRUCTION],
        keys.TASK: info[obs_keys.TASK],
        keys.SPLIT: info[obs_keys.SPLIT],
        keys.SEED: seed,
        keys.SUCCESS: bool(result.success),
        # the tabletop's target object and object count; a question about the clip and its
        # answer (memory tasks: video-QA co-training): what the env's reset info has of them
        **{
            k: info[k]
            for k in (obs_keys.TARGET, obs_keys.N_OBJECTS, keys.QUESTION, keys.ANSWER)
            if k in info
        },
    }
    # what drove the episode, when the expert factory says (policies.dagger: the learner)
    meta.update(getattr(record.expert, "episode_extras", dict)())
    if _worker["speech"] is not None:
        # seeded by the episode, like the noise: the same audio with any number of workers
        rng = np.random.default_rng([_worker["speech_seed"], seed])
        text, split = info[obs_keys.INFO_INSTRUCTION], info[obs_keys.SPLIT]
        wave, rate, choices = _worker["speech"].synthesize(text, rng, split)
        meta[keys.AUDIO], meta[keys.AUDIO_SAMPLE_RATE] = wave, rate  # (S,) float32, Hz
        meta[SPEECH] = {**choices, "seed": _worker["speech_seed"]}
    return episode, meta


def _init_pool_worker(*args: Any) -> None:
    """``_init_worker`` in a pool process that leaves Ctrl-C to the parent: the parent stops
    asking for episodes and the workers end the ones in flight (a worker killed mid-task would
    leave the pool waiting for its result)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(*args)


def _rollouts(
    env_cfg: dict, worker_args: tuple, seeds: Iterator[int], workers: int
) -> Iterator[tuple[dict, dict]]:
    """Episodes for ``seeds`` in order, from ``workers`` processes (0 or 1: this process).

    ``worker_args`` are ``_init_worker``'s after the env config."""
    if workers <= 1:
        _init_worker(env_cfg, *worker_args)
        try:
            yield from map(_rollout, seeds)
        finally:
            _worker.pop("envs").close()
        return
    # the pool's feeder thread drains its task iterable eagerly: hand it seeds only while
    # fewer than `ahead` episodes are in flight, so an endless seed stream stays bounded
    ahead, stop = threading.Semaphore(4 * workers), threading.Event()

    def throttled() -> Iterator[int]:
        for s in seeds:
            ahead.acquire()
            if stop.is_set():
                return
            yield s

    # spawn, not fork: a forked child must not inherit the parent's GL or torch threads
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(workers, _init_pool_worker, (env_cfg, *worker_args))
    finished = False
    try:
        for result in pool.imap(_rollout, throttled()):
            ahead.release()
            yield result
        finished = True
    except GeneratorExit:  # the caller has its episodes: the normal end of an endless stream
        finished = True
        raise
    finally:
        stop.set()  # unblock the feeder thread: no seed after this
        ahead.release()
        if finished:
            # let the workers end the few episodes in flight and exit: Pool.terminate() with
            # tasks in flight can hang for good in CPython (its task handler blocked on the
            # inqueue's lock while the workers it writes to are killed; seen once in CI)
            pool.close()
            pool.join()
        else:  # an error or Ctrl-C: stop the workers now
            pool.terminate()


def collect(
    env: Mapping[str, Any],
    out: str | Path,
    episodes: int,
    seed: int = 0,
    workers: int = 2,
    noise: float = 0.0,
    keep_failures: bool = False,
    progress: bool = True,
    speech: bool = False,
    speech_seed: int = 0,
    expert: Mapping[str, Any] | None = None,
    episodes_per_task: int | None = None,
) -> CollectSummary:
    """Run the scripted expert until ``out`` holds ``episodes`` episodes (resuming if it exists).

    Args:
        env: an env config node: ``{_target_: gymnasium.make, id: envs:vla/Touch-v0, ...}``.
        out: the store folder.
        episodes: episodes the store should hold when done.
        seed: seed of the first episode; a resumed run continues after the last stored seed.
        workers: parallel env processes (1 = run here).
        noise: std of the expert's action noise (recoveries in the data; DART).
        keep_failures: also store episodes the expert failed (marked ``success=False``).
        speech: also store each instruction spoken by espeak-ng (the store's audio), with the
            synthesizer's choices as the ``speech`` extra field.
        speech_seed: seed of the voices and augmentation, combined with each episode's seed.
        expert: a config node of the expert's factory, called with ``env=`` (the worker's env)
            and ``noise=``; default the tabletop's ``ScriptedExpert.for_env``.
        episodes_per_task: in a multi-task env (its ``task_names``), then top up every task the
            store holds fewer episodes of: further seeds run in the env made with
            ``tasks=[name]`` until it holds this many (an expert that fails some layouts of a
            task more often, with ``keep_failures=False``, leaves it short of the others).
            ``episodes`` may then be 0: every episode comes from the top-up, task by task.
    """
    from hydra.utils import instantiate

    if episodes < (0 if episodes_per_task else 1) or workers < 1 or noise < 0:
        raise ValueError(
            f"episodes={episodes} and workers={workers} must be >= 1, noise={noise} >= 0"
        )
    if episodes_per_task is not None and episodes_per_task < 1:
        raise ValueError(f"episodes_per_task={episodes_per_task} must be >= 1 (or null)")
    if speech:
        from policies.speech import SpeechSynthesizer

        SpeechSynthesizer()  # a missing espeak-ng fails here, before any env or store exists
    env_cfg = dict(env)
    probe = instantiate(env_cfg)
    try:
        spec = env_spec_of(probe, env_cfg)
        image_keys = [k for k in probe.observation_space.spaces if is_image_key(k)]
        names = tuple(getattr(probe.unwrapped, "task_names", ()) or ())
    finally:
        probe.close()
    if episodes_per_task is not None and len(names) < 2:
        raise ValueError(
            f"episodes_per_task needs a multi-task env, but {env_cfg.get('id')} has tasks "
            f"{list(names) or 'unknown'}: use episodes= alone"
        )
    out = Path(out)
    start = time.perf_counter()
    run = _Run(  # who acts, counts, and the worker arguments every part shares
        worker_args=(dict(expert or DEFAULT_EXPERT), noise, seed, speech, speech_seed),
        workers=workers, keep_failures=keep_failures, progress=progress,
        who=driver_of(expert),  # the expert, or a learner it labels for (policies.dagger)
    )  # fmt: skip
    with EpisodeWriter.create_or_open(
        out, env_spec=spec, keys=[*image_keys, keys.STATE, keys.ACTION]
    ) as writer:
        first = seed
        if writer.num_episodes:
            store = EpisodeStore(out, check_values=False)
            _check_resume(store, speech, speech_seed)
            first = int(store.seeds.max()) + 1
        first = run.part(
            writer, env_cfg, first, episodes - writer.num_episodes, f"collect {spec['env_id']}"
        )
        if episodes_per_task is not None:
            held = Counter(EpisodeStore(out, check_values=False).tasks)
            for name in names:
                need, label = episodes_per_task - held[name], f"collect {name}"
                first = run.part(writer, {**env_cfg, "tasks": [name]}, first, need, label)
        total = writer.num_episodes
    seconds = time.perf_counter() - start
    summary = CollectSummary(out, total, run.added, run.attempted, run.successes, seconds, run.who)
    write_card(out, summary, noise=noise, keep_failures=keep_failures)
    return summary


@dataclass
class _Run:
    """One collection's settings and running counts over its parts (the whole env, then each
    task topped up): :meth:`part` adds ``need`` episodes from seeds ``first`` onwards."""

    worker_args: tuple
    workers: int
    keep_failures: bool
    progress: bool
    who: str
    attempted: int = 0
    successes: int = 0
    added: int = 0

    def part(self, writer: EpisodeWriter, env_cfg: dict, first: int, need: int, label: str) -> int:
        """Run seeds ``first``, ``first + 1``, ... in ``env_cfg`` until ``need`` more episodes
        are committed; returns the seed after the last one run (``first`` when none was)."""
        if need <= 0:
            return first
        attempted = successes = added = 0
        seeds = iter(range(first, sys.maxsize))
        # a bar on a terminal, a line every 30 s in a log (vla/progress.py)
        bar = Progress(total=need, desc=label, unit="episode", disable=not self.progress)
        # finished episodes are committed in batches (one atomic commit each: ~40 ms of
        # metadata writes per commit, 3.5 ms per episode in batches of 16); a kill loses at
        # most the uncommitted batch, which a resumed run collects again (same seeds)
        pending: list[tuple[dict, dict]] = []
        last_commit = time.monotonic()
        rollouts = _rollouts(env_cfg, self.worker_args, seeds, self.workers)
        try:
            with bar, closing(rollouts):
                for episode, meta in rollouts:
                    attempted += 1
                    successes += meta[keys.SUCCESS]
                    kept = meta[keys.SUCCESS] or self.keep_failures
                    if kept:
                        pending.append((episode, meta))
                        added += 1
                    due = time.monotonic() - last_commit >= COMMIT_EVERY_S
                    if pending and (len(pending) >= COMMIT_EVERY or due or added >= need):
                        batch, pending = pending, []  # a failed commit is not retried below
                        writer.append_many(batch)
                        last_commit = time.monotonic()
                    rate = f"{successes / attempted:.0%}"
                    bar.set_postfix({f"{self.who}_success": rate, "run": attempted}, refresh=False)
                    bar.update(int(kept))  # the count and postfix of one line agree
                    if added >= need:
                        break
        finally:  # an interrupt (Ctrl-C) keeps the finished episodes too
            if pending:
                writer.append_many(pending)
            self.attempted += attempted
            self.successes += successes
            self.added += added
        return first + attempted


def driver_of(expert: Mapping[str, Any] | None) -> str:
    """Who acts in the env for an expert factory config: ``expert``, or what the factory's class
    says in its ``driver`` attribute (``policies.dagger.LearnerDriven``: ``learner``)."""
    from hydra.utils import get_method

    factory = get_method(dict(expert or DEFAULT_EXPERT)["_target_"])
    return str(getattr(getattr(factory, "__self__", factory), "driver", "expert"))


def _check_resume(store: EpisodeStore, speech: bool, speech_seed: int) -> None:
    """A resumed store keeps its speech settings: audio in every episode or none, one seed."""
    if speech and not store.has_audio:
        raise ValueError(
            f"speech=true but {store.path} holds {store.num_episodes} episodes without audio: "
            "use a new out path for a store with spoken instructions"
        )
    if not speech and store.has_audio:
        raise ValueError(
            f"speech=false but {store.path} holds spoken instructions: resume it with speech=true "
            "(and its speech_seed) or use a new out path"
        )
    stored = store.extras[-1].get(SPEECH, {}).get("seed")
    if speech and stored != speech_seed:
        raise ValueError(
            f"speech_seed={speech_seed} but {store.path} was collected with speech_seed={stored}: "
            f"resume with speech_seed={stored} or use a new out path"
        )
