"""``vla-eval``: seeded rollouts of a policy, with a report, videos and a plot (configs/eval.yaml).

vla-eval checkpoint=DIR env=touch episodes=50 split=test seed=0 out=runs/eval
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from pathlib import Path  # noqa: E402

import hydra  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from policies.evaluate import evaluate  # noqa: E402

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "configs")


def print_report(report: dict, out: Path | None) -> None:
    table = Table(title=f"{report['env']} | {report['split']} split | seed {report['seed']}")
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
    if out is not None:
        console.print(f"report: {out / 'report.json'}")
        console.print(f"plot:   {out / 'success_per_task.png'}")
        console.print(f"videos: {out / 'videos'}")


@hydra.main(config_path=CONFIG_PATH, config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    policy = instantiate(cfg.policy)
    out = Path(cfg.out) if cfg.out else None
    report = evaluate(
        env=OmegaConf.to_container(cfg.env, resolve=True),
        policy=policy,
        episodes=cfg.episodes,
        seed=cfg.seed,
        num_envs=cfg.num_envs,
        out=out,
        video_episodes=cfg.video_episodes,
        checkpoint=cfg.checkpoint,
    )
    print_report(report, out)


if __name__ == "__main__":
    main()
