"""``train``: everything ``vla-train`` does with a composed config (``vla.cli.train`` is the entry
point): the run folder, the parts (``vla.training.build``), the trainer, resume at the exact data
position, and the summary table."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vla.atomic_file import write_json_atomic
from vla.cpu_runtime import retain_freed_memory
from vla.training.build import build_training
from vla.training.checkpoints import (
    RESUME_FILE,
    SUCCESS_METRIC,
    VAL_METRIC,
    PretrainedCheckpoints,
)
from vla.training.lightning_noise import quiet_lightning
from vla.training.run_folder import prepare_run_folder, trim_metrics


def train(cfg: DictConfig, extra_callbacks: Sequence[L.Callback] = ()) -> L.Trainer:
    """Everything ``vla-train`` does with a composed config; returns the finished trainer."""
    retain_freed_memory()  # far fewer page faults per CPU step, same results (vla.cpu_runtime)
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    out = Path(cfg.out)
    resume = out / "checkpoints" / RESUME_FILE
    if cfg.resume and not resume.exists():
        raise FileNotFoundError(f"resume=true but {resume} does not exist (nothing to resume)")
    prepare_run_folder(out, bool(cfg.resume), bool(cfg.get("overwrite")))  # before any work
    setup = build_training(cfg)
    data, module = setup.data, setup.module
    saver = PretrainedCheckpoints(
        out / "checkpoints", cfg.checkpoint_every_n_steps, setup.stats, setup.info
    )
    callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values() if c is not None]
    # dataset.val_fraction=0 trains on every episode (e.g. a benchmark's fixed demonstration
    # count): there is nothing to validate, so no validation loop and no best_val checkpoint
    no_val = {"limit_val_batches": 0} if not cfg.dataset.get("val_fraction", 0.1) else {}
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=[*callbacks, saver, *extra_callbacks], **no_val
    )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", OmegaConf.to_container(cfg, resolve=True))
    ckpt = str(resume) if cfg.resume else None
    if ckpt:  # continue at the same data position: skip what the run already consumed
        import torch

        step = torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]
        if step >= cfg.trainer.max_steps:
            raise ValueError(
                f"resume=true: {resume} is at step {step}, already >= trainer.max_steps="
                f"{cfg.trainer.max_steps}; raise trainer.max_steps to train further"
            )
        data.setup("fit")
        data.train_sampler.resume_at(step * data.batch_size * trainer.world_size)
        if trainer.is_global_zero:
            trim_metrics(out / "logs", step)  # rows past the checkpoint are logged again
    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=ckpt, weights_only=True)
    if trainer.global_step < cfg.trainer.max_steps and not (
        trainer.interrupted or trainer.should_stop
    ):
        raise RuntimeError(
            f"training stopped at step {trainer.global_step} of trainer.max_steps="
            f"{cfg.trainer.max_steps} without an error: this is a bug, please report it"
        )
    if trainer.is_global_zero:
        print_summary(trainer, saver, out, (time.perf_counter() - start) / 60)
    return trainer


def print_summary(trainer: L.Trainer, saver: PretrainedCheckpoints, out: Path, minutes: float):
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"trained {trainer.global_step} steps in {minutes:.1f} min")
    table.add_column("checkpoint")
    table.add_column("metric", justify="right")
    table.add_column("path")
    table.add_row("last", f"step {trainer.global_step}", str(out / "checkpoints" / "last"))
    for metric, name in ((VAL_METRIC, "best_val"), (SUCCESS_METRIC, "best_success")):
        if metric in saver.best:
            value = f"{metric} {saver.best[metric]:.3f}"
            table.add_row(name, value, str(out / "checkpoints" / name))
    Console(width=120).print(table)
