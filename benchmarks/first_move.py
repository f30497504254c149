"""Does a policy head for its target at the first step, and which of its text paths decides that?

    python benchmarks/first_move.py CHECKPOINT [--task pick_place] [--split train] [--episodes 40]
        [--seed 1000150] [--rollouts 50 --n-action-steps 2] [--neutral "touch the object"]

A tabletop policy reads its instruction twice: the LM reads its tokens, and a FiLM image encoder
reads one pooled vector of them (``model.film_pooling``). For each scene of ``--task`` this compares
the policy's first action (x, y) with the scripted expert's, with four instructions:

- ``env / env``: the env's instruction in both paths (what an evaluation runs);
- ``short / short``: the target named alone, "touch the red cube", in both;
- ``env / short`` and ``short / env`` (LM's text / FiLM's text; FiLM encoders only): one path
  reads the env's instruction, the other the short one.

If the short instruction moves the policy toward its target where the env's does not, the words
besides the target's (a destination, a longer template) confuse it; the mixed rows say in which
path. Meaningful for tasks whose expert heads for the target first (touch, lift, pick and place,
relation's referent is not the named object: use touch, lift or pick_place). Scene k is seed
``seed + k``; the env is the checkpoint's (cameras, image size), with privileged state for the
expert.

``--rollouts N`` then runs N whole episodes of the same scenes per row of (LM text, FiLM text),
and prints the success rates: a better first move need not finish the task (a pick and place also
needs its destination found). Rows: ``env / env``, ``env / short``, ``short / short``, and two
that take one path's words away: ``neutral / short`` (the LM reads ``--neutral``, a sentence that
names no object, while the FiLM reads the target) and ``short / neutral``. If the first matches
``short / short``, the LM's reading of the target adds nothing; if the second falls to chance,
the FiLM is what finds the target. ``--split test`` draws the scenes' targets from the held-out
colour x shape pairs (the short instruction then names a pair never a target in training).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

# benchmarks/envs.py would shadow the envs package: drop this folder from the path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import envs  # noqa: E402, F401  registers the ids
from policies.collect import camera_kwargs  # noqa: E402
from policies.rollout import run_episode  # noqa: E402
from policies.scripted_expert import ScriptedExpert  # noqa: E402
from policies.vla_policy import VLAPolicy  # noqa: E402
from vla.checkpoint import read_training_info  # noqa: E402

ROWS = (("env", "env"), ("short", "short"), ("env", "short"), ("short", "env"))
# whole episodes: (LM text, FiLM text); a policy without FiLM runs the rows whose two are the same
ROLLOUT_ROWS = (
    ("env", "env"),
    ("env", "short"),
    ("short", "short"),
    ("neutral", "short"),
    ("short", "neutral"),
)


def short_instruction(colour: str, shape: str) -> str:
    return f"touch the {colour} {shape}"


class FilmText:
    """Makes a policy's FiLM encoder read ``text`` (when set) instead of the instruction its LM
    reads; ``None`` restores the model's own path."""

    def __init__(self, policy: VLAPolicy) -> None:
        self.prompt = policy.model.prompt
        self.text: str | None = None
        self.own: Callable = self.prompt.obs.film_condition
        self.prompt.obs.film_condition = self._condition

    @property
    def available(self) -> bool:
        return self.prompt.obs.film is not None

    def restore(self) -> None:
        self.prompt.obs.film_condition = self.own

    def _condition(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.text is None:
            return self.own(tokens, mask)
        tokens, mask = self.prompt.embed_text([self.text] * tokens.shape[0])
        return self.own(tokens, mask)


def first_moves(
    env: gym.Env, policy: VLAPolicy, seeds: list[int]
) -> dict[tuple[str, str], list[tuple[float, bool, str]]]:
    """Per row (LM text, FiLM text): per scene, (mean |policy - expert| over x, y of the first
    action, whether both signs agree, the destination's kind: pad, bowl or "" for none)."""
    expert = ScriptedExpert.for_env(env)
    film = FilmText(policy)
    rows = [r for r in ROWS if r[0] == r[1] or film.available]
    out: dict[tuple[str, str], list[tuple[float, bool, str]]] = {r: [] for r in rows}
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            kind, short = scene(env)
            expert.reset()
            want = expert.act(obs)[:2]
            texts = {"env": obs["instruction"], "short": short}
            for lm, film_text in rows:
                film.text = None if lm == film_text else texts[film_text]
                policy.reset()
                with torch.no_grad():
                    got = policy.act({**obs, "instruction": texts[lm]})[:2]
                agree = bool(np.all(np.sign(got) == np.sign(want)))
                out[(lm, film_text)].append((float(np.abs(got - want).mean()), agree, kind))
    finally:
        film.restore()
    return out


def scene(env: gym.Env) -> tuple[str, str]:
    """The scene just reset: its destination's kind (pad, bowl, "" for none) and the short
    instruction naming its target alone."""
    spec = env.unwrapped.spec_
    target = spec.objects[spec.target]
    kind = spec.places[spec.place].kind if spec.place is not None else ""
    return kind, short_instruction(target.colour, target.shape)


class LMText:
    """A policy whose LM reads ``text`` (when set) instead of the observation's instruction."""

    def __init__(self, policy: VLAPolicy) -> None:
        self.policy = policy
        self.text: str | None = None

    def reset(self) -> None:
        self.policy.reset()

    def act(self, obs: dict) -> np.ndarray:
        return self.policy.act(obs if self.text is None else {**obs, "instruction": self.text})


def rollouts(
    env: gym.Env, policy: VLAPolicy, seeds: list[int], neutral: str = "touch the object"
) -> dict[tuple[str, str], list[tuple[bool, str]]]:
    """Whole episodes per row of ``ROLLOUT_ROWS`` (LM text, FiLM text; for a policy without FiLM
    the rows whose two texts are the same), per scene (success, the destination's kind)."""
    film, lm = FilmText(policy), LMText(policy)
    rows = [r for r in ROLLOUT_ROWS if r[0] == r[1] or film.available]
    out: dict[tuple[str, str], list[tuple[bool, str]]] = {r: [] for r in rows}
    try:
        for (lm_text, film_text), results in out.items():
            for seed in seeds:
                obs, _ = env.reset(seed=seed)  # the scene, to name its target; reset again below
                kind, short = scene(env)
                texts = {"env": obs["instruction"], "short": short, "neutral": neutral}
                lm.text = texts[lm_text]
                film.text = None if lm_text == film_text else texts[film_text]
                results.append((run_episode(env, lm, seed).success, kind))
    finally:
        film.restore()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--split", default="train", choices=("train", "test"),
                        help="the targets' split (test: held-out colour x shape pairs)")  # fmt: skip
    parser.add_argument("--neutral", default="touch the object",
                        help="the rollouts' text that names no object")  # fmt: skip
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1_000_150)
    parser.add_argument("--rollouts", type=int, default=0, help="whole episodes (0: none)")
    parser.add_argument("--n-action-steps", type=int, default=None,
                        help="actions executed per chunk in --rollouts (default: the whole chunk)")  # fmt: skip
    args = parser.parse_args()
    policy = VLAPolicy.from_checkpoint(
        args.checkpoint, n_action_steps=args.n_action_steps, device="cpu"
    )
    spec = read_training_info(args.checkpoint).env_spec
    env = gym.make("vla/MultiTask-v0", tasks=[args.task], split=args.split, privileged=True,
                   **camera_kwargs(spec))  # fmt: skip
    try:
        rows = first_moves(env, policy, [args.seed + k for k in range(args.episodes)])
        seeds = [args.seed + k for k in range(args.rollouts)]
        episodes = rollouts(env, policy, seeds, args.neutral)
    finally:
        env.close()
    if args.episodes:
        print_first_moves(rows, args)
    if args.rollouts:
        print_rollouts(episodes, f"{args.task} ({args.split} split), {args.rollouts} episodes")


def print_first_moves(rows: dict, args: argparse.Namespace) -> None:
    table = Table(title=f"{args.checkpoint}: first action vs the expert's, {args.task}, "
                  f"{args.episodes} scenes")  # fmt: skip
    kinds = sorted({k for values in rows.values() for *_, k in values if k})
    for column in ("LM reads", "FiLM reads", "mean |policy - expert| (x, y)", "signs agree"):
        table.add_column(column)
    for kind in kinds if len(kinds) > 1 else ():  # e.g. pick and place: bowl or pad
        table.add_column(f"{kind} destinations: error / signs")
    for (lm, film_text), values in rows.items():
        err, agree, kind = (np.array(c) for c in zip(*values, strict=True))
        cells = [f"{err.mean():.3f}", f"{agree.mean():.0%}"]
        for k in kinds if len(kinds) > 1 else ():
            cells.append(f"{err[kind == k].mean():.3f} / {agree[kind == k].mean():.0%} "
                         f"({int((kind == k).sum())})")  # fmt: skip
        table.add_row(lm, film_text, *cells)
    if len(rows) < len(ROWS):
        table.caption = "no FiLM encoder: the instruction has one path, the LM's"
    Console(width=120).print(table)


def print_rollouts(episodes: dict[tuple[str, str], list[tuple[bool, str]]], title: str) -> None:
    table = Table(title=title)
    kinds = sorted({k for values in episodes.values() for _, k in values if k})
    for column in ("LM reads", "FiLM reads", "success", *(f"{k} destinations" for k in kinds)):
        table.add_column(column)
    for (lm_text, film_text), values in episodes.items():
        won, kind = (np.array(c) for c in zip(*values, strict=True))
        cells = [f"{won[kind == k].mean():.0%} ({int((kind == k).sum())})" for k in kinds]
        table.add_row(lm_text, film_text, f"{won.mean():.0%}", *cells)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
