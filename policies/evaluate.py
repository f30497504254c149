"""Evaluate a policy by seeded rollouts in a vector env: success rate, its Wilson interval,
per-task rates, videos of the first episodes and a bar chart.

Episode ``k`` always runs with seed ``seed + k``, whichever env of the vector runs it, so two
runs with the same seed give the same numbers whatever ``num_envs`` is (for a policy whose
output does not depend on the batch it is in).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported, here and in env workers

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv  # noqa: E402

from envs import keys  # noqa: E402
from policies.batch import BatchPolicy  # noqa: E402
from policies.instruction_control import GivenInstruction, control_instructions  # noqa: E402
from policies.rollout import AskQuestion, EpisodeResult, Film, RolloutHook, rollout  # noqa: E402
from policies.video import annotate, write_video  # noqa: E402
from vla.atomic_file import write_json_atomic  # noqa: E402
from vla.progress import Progress  # noqa: E402


@dataclass
class Episode:
    seed: int
    task: str
    instruction: str
    success: bool
    length: int
    question: str | None = None  # tasks that ask one (recall), for policies that answer text
    answer: str | None = None  # the simulator's truth
    predicted: str | None = None  # the policy's answer at the episode's end
    given: str | None = None  # what the policy was told instead (instruction=shuffled / empty)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate: honest at small n and at 0% / 100%."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _make_env(env_cfg: dict[str, Any], **overrides: Any) -> gym.Env:
    from hydra.utils import instantiate

    return instantiate(env_cfg, **overrides)


def _make_wrapped(
    env_cfg: dict[str, Any], wrappers: Sequence[Callable[[gym.Env], gym.Env]], **overrides: Any
) -> gym.Env:
    env = _make_env(env_cfg, **overrides)
    for wrap in wrappers:
        env = wrap(env)
    return env


def evaluate(
    env: dict[str, Any],
    policy: BatchPolicy,
    episodes: int = 50,
    seed: int = 0,
    num_envs: int = 4,
    out: str | Path | None = None,
    video_episodes: int = 4,
    checkpoint: str | None = None,
    progress: bool = True,
    instruction: str = "given",
    episodes_per_task: int | None = None,
    env_wrappers: Sequence[Callable[[gym.Env], gym.Env]] = (),
) -> dict[str, Any]:
    """Run ``episodes`` seeded episodes and return the report (also written under ``out``).

    Args:
        env: env config node (``{_target_: gymnasium.make, id: ..., split: ...}``).
        policy: acts on batches of ``num_envs`` observations.
        num_envs: envs stepping together (> 1: each in its own process).
        out: folder for ``report.json``, ``videos/`` and ``success_per_task.png``; made and
            checked writable before the first episode (:func:`prepare_out`). The report lists
            the videos and the plot this run wrote (``videos``, ``plot``, relative to ``out``).
        video_episodes: the first K episodes (by seed) are filmed.
        checkpoint: recorded in the report.
        instruction: ``given`` (the env's), or a language control: ``shuffled`` (another
            episode's instruction, naming another target) or ``empty``
            (``policies.instruction_control``); the report says which (``instruction_control``).
        episodes_per_task: in a multi-task env, this many episodes of every task instead of
            ``episodes`` drawn at random (task ``j`` gets seeds ``seed + j * K`` onwards, in an env
            made with ``tasks=[name]``), so every per-task rate has the same count; the first
            ``video_episodes`` of each task are filmed.
        env_wrappers: applied in order around every env (each takes the env and returns the
            wrapped one; picklable, for env worker processes): ``SpokenInstructionEnv`` for a
            policy that hears its instructions (``policies.spoken_instruction_env``).
    """
    if episodes < 1 or num_envs < 1:
        raise ValueError(f"episodes={episodes} and num_envs={num_envs} must be >= 1")
    if episodes_per_task is not None and episodes_per_task < 1:
        raise ValueError(f"episodes_per_task={episodes_per_task} must be >= 1 (or null)")
    num_envs = min(num_envs, episodes)
    out = None if out is None else prepare_out(out)  # a bad `out` fails now, not after the run
    start = time.perf_counter()
    check_tasks = getattr(policy, "check_tasks", None)  # a checkpoint knows what it trained on
    per_task = episodes_per_task is not None
    names = env_tasks(env) if check_tasks is not None or per_task else ()  # one probe env
    if check_tasks is not None:
        check_tasks(names)
    plan = [(env, list(range(seed, seed + episodes)))]
    if per_task:  # the same number of episodes for every task
        require_tasks(env, names)
        k = episodes_per_task
        plan = [({**env, "tasks": [name]}, list(range(seed + j * k, seed + (j + 1) * k)))
                for j, name in enumerate(names)]  # fmt: skip
    privileged = bool(getattr(policy, "needs_privileged", False))  # scripted experts do
    probes = [(partial(_make_env, cfg, privileged=privileged), seeds) for cfg, seeds in plan]
    given = control_instructions(probes, instruction)  # {seed: sentence}, None: the env's
    total = sum(len(seeds) for _, seeds in plan)
    results: list[Episode] = []
    videos: list[Path] = []
    film = out is not None and video_episodes > 0
    # a bar on a terminal, a line every 30 s in a log (vla/progress.py)
    with Progress(total=total, desc="evaluate", unit="episode", disable=not progress) as bar:
        for env_cfg, seeds in plan:  # the first video_episodes of each part are filmed
            _run(env_cfg, policy, seeds, min(num_envs, len(seeds)), out if film else None,
                 video_episodes, given, privileged, env_wrappers, bar, results,
                 videos)  # fmt: skip
    report = make_report(results, env, seed, checkpoint, time.perf_counter() - start, num_envs)
    report["instruction_control"] = instruction
    if out is not None:
        report["videos"] = sorted(str(v.relative_to(out)) for v in videos)
        write_report(out, report)
    return report


def env_tasks(env: dict[str, Any]) -> tuple[str, ...]:
    """The task names an env config runs (``unwrapped.task_names``; empty when it has none)."""
    probe = _make_env(env)
    try:
        return tuple(getattr(probe.unwrapped, "task_names", ()) or ())
    finally:
        probe.close()


def require_tasks(env: dict[str, Any], names: tuple[str, ...]) -> None:
    """A ValueError saying why ``episodes_per_task`` cannot be used with an env of ``names``."""
    if len(names) < 2:
        raise ValueError(
            f"episodes_per_task needs a multi-task env, but {env.get('id')} has tasks "
            f"{list(names) or 'unknown'}: use env=multitask, or episodes= for one task"
        )


def _run(
    env: dict[str, Any],
    policy: BatchPolicy,
    seeds: list[int],
    num_envs: int,
    out: Path | None,
    filmed: int,
    given: dict[int, str] | None,
    privileged: bool,
    wrappers: Sequence[Callable[[gym.Env], gym.Env]],
    bar: Progress,
    results: list[Episode],
    videos: list[Path],
) -> None:
    """Episodes ``seeds`` in ``num_envs`` envs; appends to ``results`` and ``videos`` (the first
    ``filmed`` seeds are filmed when ``out`` is set; ``given``: the instructions a language
    control tells the policy, by seed; ``privileged``: the envs add simulator truth)."""
    render = {"render_mode": "rgb_array"} if out is not None else {}
    if given is not None:  # innermost: a spoken-instruction wrapper speaks what the policy is told
        wrappers = [partial(GivenInstruction, given=given), *wrappers]
    make = partial(_make_wrapped, env, wrappers, privileged=privileged, **render)
    vector_cls = AsyncVectorEnv if num_envs > 1 else SyncVectorEnv
    kwargs = {"context": "spawn", "shared_memory": False} if num_envs > 1 else {}
    envs = vector_cls([make] * num_envs, autoreset_mode=AutoresetMode.DISABLED, **kwargs)
    try:
        _check_spaces(policy, envs.single_observation_space, envs.single_action_space)
        film = [Film(set(seeds[:filmed]))] if out is not None else []
        per_episode = _Results(out, given, bar, results, videos)
        rollout(envs, policy, seeds, [*film, AskQuestion(policy), per_episode])
    finally:
        envs.close()


def _check_spaces(policy: Any, observation_space: gym.Space, action_space: gym.Space) -> None:
    """A learned policy's checks that the env has the cameras, image size and action size it was
    trained with (a ValueError before any episode); a scripted expert has none."""
    for check, space in (
        (getattr(policy, "check_observation_space", None), observation_space),
        (getattr(policy, "check_action_space", None), action_space),
    ):
        if check is not None:
            check(space)


class _Results(RolloutHook):
    """Evaluation's per-episode results: the report row, the video of a filmed episode and the
    progress bar's count and success rate."""

    def __init__(self, out, given, bar, results, videos):
        self.out, self.given, self.bar = out, given, bar
        self.results, self.videos = results, videos

    def on_end(self, envs, ended: list[EpisodeResult]) -> None:
        for r in ended:
            ep = Episode(
                seed=r.seed,
                task=r.task,
                instruction=r.instruction,
                success=r.success,
                length=r.length,
                question=r.info.get(keys.QUESTION),
                answer=r.info.get(keys.ANSWER),
                predicted=r.predicted,
                given=None if self.given is None else self.given[r.seed],
            )
            self.results.append(ep)
            if r.frames:
                self.videos.append(_write_episode_video(self.out, ep, r.frames))
        rate = f"{np.mean([r.success for r in self.results]):.0%}"
        self.bar.set_postfix(success=rate, refresh=False)
        self.bar.update(len(ended))


def prepare_out(out: str | Path, field: str = "out") -> Path:
    """Make the folder ``out`` and prove it writable (a temporary file made and removed).

    Called before the first episode: a file or an unwritable path given as ``out`` would
    otherwise fail only when the report is written, after every episode has run.
    """
    path = Path(out)
    fix = f"set {field}= to a folder that can be made and written (or {field}=null: no files)"
    if path.exists() and not path.is_dir():
        raise ValueError(f"{field}={out} is a file, not a folder: {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        raise ValueError(
            f"{field}={out} cannot be written: {err.strerror or err}{where}: {fix}"
        ) from err
    return path


def _write_episode_video(out: Path, ep: Episode, frames: list[np.ndarray]) -> Path:
    text = f"[{ep.task}] {ep.instruction}"
    annotated = [annotate(f, text) for f in frames[:-1]]
    annotated += [annotate(frames[-1], text, ep.success)] * 5  # hold the verdict for 0.5 s
    verdict = "success" if ep.success else "failure"
    return write_video(out / "videos" / f"seed{ep.seed:04d}_{ep.task}_{verdict}.mp4", annotated)


def make_report(
    results: list[Episode],
    env: dict[str, Any],
    seed: int,
    checkpoint: str | None,
    seconds: float,
    num_envs: int,
) -> dict[str, Any]:
    results = sorted(results, key=lambda r: r.seed)
    n, wins = len(results), sum(r.success for r in results)
    per_task: dict[str, dict[str, Any]] = {}
    for name in sorted({r.task for r in results}):
        rs = [r for r in results if r.task == name]
        k = sum(r.success for r in rs)
        per_task[name] = {
            "success_rate": k / len(rs),
            "episodes": len(rs),
            "ci95": list(wilson_interval(k, len(rs))),
        }
    asked = [r for r in results if r.predicted is not None]
    qa = {}
    if asked:  # video QA: exact match of the normalized answer
        right = sum(_norm(r.predicted) == _norm(r.answer) for r in asked)
        qa = {"qa_accuracy": right / len(asked), "qa_episodes": len(asked),
              "qa_ci95": list(wilson_interval(right, len(asked)))}  # fmt: skip
    return {
        "success_rate": wins / n,
        "episodes": n,
        "ci95": list(wilson_interval(wins, n)),
        "per_task": per_task,
        "split": env.get("split", "train"),
        "env": str(env.get("id", "")).split(":")[-1],
        "mean_episode_length": float(np.mean([r.length for r in results])),
        "checkpoint": checkpoint,
        "seed": seed,
        "num_envs": num_envs,
        "seconds": round(seconds, 2),
        **qa,
        "episodes_detail": [asdict(r) for r in results],
    }


def _norm(text: str | None) -> str:
    return " ".join((text or "").lower().strip(" .?!").split())


def write_report(out: Path, report: dict[str, Any]) -> None:
    """``success_per_task.png`` and ``report.json`` (atomically), which names the plot (``plot``:
    None if it could not be drawn: the numbers matter more than the picture)."""
    out.mkdir(parents=True, exist_ok=True)
    plot = out / "success_per_task.png"
    try:
        plot_per_task(report, plot)
        report["plot"] = plot.name
    except Exception as err:  # a broken matplotlib must not lose the results
        print(f"warning: {plot} not written ({type(err).__name__}: {err})", file=sys.stderr)
        report["plot"] = None
    write_json_atomic(out / "report.json", report)


def plot_per_task(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["per_task"])
    rates = [report["per_task"][t]["success_rate"] for t in names]
    cis = [report["per_task"][t]["ci95"] for t in names]
    lo = [max(0.0, r - ci[0]) for r, ci in zip(rates, cis, strict=True)]  # float noise at 0/100%
    hi = [max(0.0, ci[1] - r) for r, ci in zip(rates, cis, strict=True)]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(names) + 2), 3.2))
    ax.bar(names, rates, yerr=[lo, hi], capsize=4, color="#4c72b0")
    for i, (t, r) in enumerate(zip(names, rates, strict=True)):
        label = f"{r:.0%}\nn={report['per_task'][t]['episodes']}"
        ax.text(i, cis[i][1] + 0.02, label, ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.22)  # room for the labels above a 100% bar
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("success rate (95% CI)")
    ax.set_title(f"{report['env']} ({report['split']} split, seed {report['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
