"""``vla-demo``: the demos, one subcommand each (Hydra overrides after it).

vla-demo audio checkpoint=DIR say="touch the red cube"      # synthesized with espeak-ng
vla-demo audio checkpoint=DIR wav=command.wav target=[red,cube]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

CONFIG_PATH = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "configs"))
DEMOS = ("audio",)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in DEMOS:
        sys.exit(f"usage: vla-demo {{{','.join(DEMOS)}}} key=value ...\n{__doc__}")
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        cfg = compose(config_name=f"demo_{argv[0]}", overrides=argv[1:])
    from policies.audio_demo import run_audio_demo

    try:
        summary = run_audio_demo(
            checkpoint=cfg.checkpoint,
            env_cfg=OmegaConf.to_container(cfg.env, resolve=True),
            out=cfg.out,
            wav=cfg.wav,
            say=cfg.say,
            voice=cfg.voice,
            target=tuple(cfg.target) if cfg.target else None,
            seed=cfg.seed,
        )
    except (ValueError, FileNotFoundError) as err:  # bad input: the message, not a traceback
        sys.exit(f"vla-demo audio: {err}")
    table = Table(title="vla-demo audio")
    table.add_column("")
    table.add_column("")
    for key, value in summary.items():
        table.add_row(key, str(value))
    Console(width=100).print(table)


if __name__ == "__main__":
    main()
