"""``vla-train``: train a VLA from a config (configs/train.yaml).

    vla-train dataset.path=data/touch.zarr                      # the default small VLA
    vla-train experiment=quickstart trainer.max_steps=3000      # an experiment + overrides
    vla-train ... resume=true                                   # continue out/checkpoints/last.ckpt

The run itself is ``vla.training.fit.train`` (the parts: ``vla.training.build``); everything is
checked before the first step: the dataset exists and is valid, the model's
cameras and horizons agree with the dataset, and the env (for rollouts) with both.
"""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig

from vla.cli.errors import user_errors
from vla.data.store_error import InvalidStoreError
from vla.training.fit import train
from vla.training.run_folder import RunFolderError

__all__ = ["main", "train"]

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "configs")


@hydra.main(config_path=CONFIG_PATH, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with user_errors("vla-train", extra=(InvalidStoreError, RunFolderError)):
        train(cfg)


if __name__ == "__main__":
    main()
