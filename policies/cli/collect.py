"""``vla-collect``: run the scripted expert and write demonstrations (configs/collect.yaml).

vla-collect env=touch episodes=200 out=data/touch.zarr workers=2 noise=0.1
vla-collect env=touch episodes=200 out=data/touch_speech.zarr speech=true  # + spoken instructions
vla-collect env=multitask episodes=0 episodes_per_task=40 out=data/mt.zarr  # 40 of every task
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from policies.collect import collect  # noqa: E402

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "configs")


@hydra.main(config_path=CONFIG_PATH, config_name="collect", version_base="1.3")
def main(cfg: DictConfig) -> None:
    s = collect(
        env=OmegaConf.to_container(cfg.env, resolve=True),
        out=cfg.out,
        episodes=cfg.episodes,
        seed=cfg.seed,
        workers=cfg.workers,
        noise=cfg.noise,
        keep_failures=cfg.keep_failures,
        speech=cfg.speech,
        speech_seed=cfg.speech_seed,
        expert=OmegaConf.to_container(cfg.expert, resolve=True),
        episodes_per_task=cfg.get("episodes_per_task"),
    )
    print(
        f"{s.path}: {s.episodes} episodes ({s.added} added; {s.driver} succeeded in "
        f"{s.expert_successes}/{s.attempted}) in {s.seconds:.1f} s = "
        f"{s.episodes_per_s:.1f} episodes/s. Card: {s.path / 'README.md'}"
    )


if __name__ == "__main__":
    main()
