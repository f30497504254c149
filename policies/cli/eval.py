"""``vla-eval``: seeded rollouts of a policy, with a report, videos and a plot (configs/eval.yaml).

vla-eval checkpoint=DIR env=touch episodes=50 split=test seed=0 out=runs/eval
vla-eval checkpoint=SPEECH_DIR env=touch speech.split=test   # a speech model hears test voices

Bad input (an ``out`` that is a file or cannot be written, a missing or broken checkpoint, an
env that differs from training) fails before the first episode with one line on stderr,
``vla-eval: error: ...``, naming the setting and the fix, and exit status 2
(``HYDRA_FULL_ERROR=1`` shows the traceback instead).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from pathlib import Path  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.errors import InstantiationException  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from policies.evaluate import evaluate, prepare_out  # noqa: E402
from policies.spoken_instruction_env import speech_wrappers  # noqa: E402
from vla.cli.errors import fail as cli_fail  # noqa: E402
from vla.cli.errors import full_error  # noqa: E402

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "configs")


def print_report(report: dict, out: Path | None) -> None:
    control = report.get("instruction_control", "given")
    told = "" if control == "given" else f" | instruction={control} (language control)"
    table = Table(title=f"{report['env']} | {report['split']} split | seed {report['seed']}{told}")
    for col in ("task", "success", "95% CI", "episodes"):
        table.add_column(col, justify="right")
    rows = [(t, r) for t, r in report["per_task"].items()]
    if len(rows) > 1:
        rows.append(("all", report))
    for name, r in rows:
        lo, hi = r["ci95"]
        table.add_row(name, f"{r['success_rate']:.1%}", f"{lo:.0%} - {hi:.0%}", str(r["episodes"]))
    console = Console(width=100)
    console.print(table)
    console.print(
        f"mean episode length {report['mean_episode_length']:.1f} steps, "
        f"{report['seconds']:.0f} s with {report['num_envs']} envs"
    )
    if "qa_accuracy" in report:
        lo, hi = report["qa_ci95"]
        console.print(
            f"video QA: {report['qa_accuracy']:.1%} of {report['qa_episodes']} answers exact "
            f"(95% CI {lo:.0%} - {hi:.0%})"
        )
    if out is not None:  # only what this run wrote
        console.print(f"report: {out / 'report.json'}")
        if report.get("plot"):
            console.print(f"plot:   {out / report['plot']}")
        if report.get("videos"):
            console.print(f"videos: {len(report['videos'])} in {out / 'videos'}")


def fail(message: str) -> NoReturn:
    """Bad input: one line on stderr and exit status 2, not a traceback."""
    cli_fail("vla-eval", message)


def load_policy(cfg: DictConfig) -> Any:
    """``cfg.policy`` built; a checkpoint that cannot be loaded fails naming the checkpoint."""
    loads = "checkpoint" in cfg.policy  # policy=vla: built from a checkpoint folder
    if loads and cfg.policy.checkpoint is None:
        choice = HydraConfig.get().runtime.choices.get("policy", "vla")
        fail(
            f"checkpoint=null but policy={choice} loads one: pass checkpoint=DIR (a vla-train "
            "checkpoint, e.g. runs/quickstart/train/checkpoints/last), or policy=expert"
        )
    if "allow_empty_instruction" in cfg.policy and cfg.get("instruction") == "empty":
        with open_dict(cfg):
            cfg.policy.allow_empty_instruction = True  # the control gives empty ones on purpose
    try:
        return instantiate(cfg.policy)
    except InstantiationException as err:  # Hydra's wrapper: report what the loader said
        cause = err.__cause__
        expected = isinstance(cause, ValueError | OSError)  # a missing or refused file
        if cause is None or full_error() or not (loads or expected):
            raise
        message = str(cause)
        if loads and str(cfg.policy.checkpoint) not in message:  # every error names the folder
            message = f"checkpoint={cfg.policy.checkpoint}: {message}"
        if not expected:  # not a refusal the loader meant: say what broke, and how to see where
            message += f" ({type(cause).__name__}; HYDRA_FULL_ERROR=1 shows the traceback)"
        fail(message)


@hydra.main(config_path=CONFIG_PATH, config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        # `out` first: a file or an unwritable folder would otherwise fail after every episode
        out = prepare_out(cfg.out) if cfg.out else None
        policy = load_policy(cfg)
        report = evaluate(
            env=OmegaConf.to_container(cfg.env, resolve=True),
            policy=policy,
            episodes=cfg.episodes,
            seed=cfg.seed,
            num_envs=cfg.num_envs,
            out=out,
            video_episodes=cfg.video_episodes,
            checkpoint=cfg.checkpoint,
            instruction=cfg.instruction,
            episodes_per_task=cfg.get("episodes_per_task"),
            env_wrappers=speech_wrappers(policy, cfg.speech.split, cfg.speech.seed),
        )
    except (ValueError, FileNotFoundError) as err:  # bad input: the message, not a traceback
        if full_error():
            raise
        fail(str(err))
    print_report(report, out)


if __name__ == "__main__":
    main()
