"""``vla-train``: train a VLA from a config (configs/train.yaml).

    vla-train dataset.path=data/touch.zarr                      # the default small VLA
    vla-train experiment=quickstart trainer.max_steps=3000      # an experiment + overrides
    vla-train ... resume=true                                   # continue out/checkpoints/last.ckpt

Everything is checked before the first step: the dataset exists and is valid, the model's
cameras and horizons agree with the dataset, and the env (for rollouts) with both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from vla import keys
from vla.atomic_file import write_json_atomic
from vla.checkpoint import init_from_checkpoint
from vla.cli.errors import user_errors
from vla.cpu_runtime import retain_freed_memory
from vla.data import EpisodeStore
from vla.data.store_error import InvalidStoreError
from vla.data.window_dataset import TRANSCRIBE_QUESTION
from vla.text.normalize import normalize_instruction
from vla.training import PretrainedCheckpoints, VLATrainingModule
from vla.training.checkpoints import RESUME_FILE, SUCCESS_METRIC, VAL_METRIC
from vla.training.lightning_noise import quiet_lightning
from vla.training.run_folder import RunFolderError, prepare_run_folder, trim_metrics

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "configs")


# action_bounds -> the statistics that bound the action tokenizer's bins
ACTION_BOUNDS = {"min_max": ("min", "max"), "quantile": ("q01", "q99")}


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, VLATrainingModule, dict[str, Any]]:
    """Data module (stats computed), model (bounds filled in) and the training module."""
    if cfg.dataset.path in (None, "???") or not Path(cfg.dataset.path).exists():
        raise FileNotFoundError(
            f"dataset.path={cfg.dataset.get('path')!r} does not exist: collect one first, e.g. "
            "`vla-collect env=touch episodes=500 out=data/touch.zarr`, then pass "
            "dataset.path=data/touch.zarr"
        )
    if cfg.get("action_bounds") not in ACTION_BOUNDS:
        raise ValueError(
            f"action_bounds={cfg.get('action_bounds')!r} must be one of {list(ACTION_BOUNDS)}"
        )
    data = instantiate(cfg.dataset)
    data.prepare_data()  # validates the store; computes and caches the statistics
    stats = {k: v.to_dict() for k, v in data.normalization_stats.items()}
    store = EpisodeStore(cfg.dataset.path, check_values=False)
    check_specs(cfg, store.env_spec)
    check_speech(cfg, store)
    with open_dict(cfg):
        low, high = ACTION_BOUNDS[cfg.action_bounds]
        cfg.model.action_tokenizer.low = stats[keys.ACTION][low]
        cfg.model.action_tokenizer.high = stats[keys.ACTION][high]
        state = cfg.dataset.state_key
        cfg.model.state_low = stats[state]["q01"] if state else None
        cfg.model.state_high = stats[state]["q99"] if state else None
    tokenizer = instantiate(cfg.model.text_tokenizer)
    train_episodes = [i for i, s in enumerate(store.splits) if s == "train"]
    texts = [normalize_instruction(store.instructions[i]) for i in train_episodes]  # as fed
    if cfg.dataset.get("qa_fraction"):  # co-training: questions and answers are text too
        qa = [store.extras[i] for i in train_episodes if keys.ANSWER in store.extras[i]]
        texts += [x[keys.QUESTION] for x in qa] + [x[keys.ANSWER] for x in qa]
    if cfg.dataset.get("transcribe_fraction"):
        texts.append(TRANSCRIBE_QUESTION)
    tokenizer.fit(texts)  # byte fallback for anything else
    model = instantiate(cfg.model, text_tokenizer=tokenizer)
    if cfg.get("init_from"):  # fine-tune / staged training: start from a checkpoint's weights
        init = init_from_checkpoint(model, cfg.init_from)
        new = sorted({".".join(n.split(".")[:2]) for n in init["new"]})  # e.g. speech.encoder
        print(
            f"init_from={cfg.init_from}: {len(init['copied'])} parameter tensors copied; "
            f"{len(init['new'])} new (fresh init: {', '.join(new) or 'none'}); "
            f"{len(init['unused'])} of the checkpoint's unused"
        )
    module = instantiate(cfg.optim, model=model, max_steps=cfg.trainer.max_steps)
    info = {
        "image_keys": list(cfg.dataset.image_keys),
        "state_key": cfg.dataset.state_key,
        "dataset": str(cfg.dataset.path),
        "env_spec": store.env_spec,
        "tasks": sorted({store.tasks[i] for i in train_episodes}),  # what evaluation may ask
        "obs_horizon": cfg.model.obs_horizon,
        "action_horizon": cfg.model.action_horizon,
    }
    return data, module, {"stats": stats, "info": info}


def check_speech(cfg: DictConfig, store: EpisodeStore) -> None:
    """A speech model needs the store's spoken instructions, at its encoder's sample rate."""
    mode = cfg.model.get("instruction", "text")
    if mode == "text":
        return
    if not store.has_audio:
        raise ValueError(
            f"model.instruction={mode} needs spoken instructions, but {store.path} has none: "
            f"collect with `vla-collect ... speech=true out={store.path.name}` (a new store)"
        )
    if not cfg.dataset.get("audio"):
        raise ValueError(f"model.instruction={mode} reads speech: set dataset.audio=true")
    rate = cfg.model.audio_encoder.sample_rate
    if store.audio_sample_rate != rate:
        raise ValueError(
            f"the store's speech is {store.audio_sample_rate} Hz but the audio encoder expects "
            f"{rate} Hz: set model.audio_encoder.sample_rate={store.audio_sample_rate}"
        )


def check_specs(cfg: DictConfig, env_spec: dict[str, Any]) -> None:
    """Dataset, model and rollout env must agree on cameras and image size (fail before work)."""
    n_cams = len(cfg.dataset.image_keys)
    if cfg.model.num_cameras != n_cams:
        raise ValueError(
            f"model.num_cameras={cfg.model.num_cameras} but dataset.image_keys="
            f"{list(cfg.dataset.image_keys)} has {n_cams} cameras: make them agree"
        )
    size = (env_spec.get("image_size") or [None])[0]
    if size is not None and cfg.model.vision.image_size != size:
        raise ValueError(
            f"the dataset's images are {size} px but model.vision.image_size="
            f"{cfg.model.vision.image_size}: set model.vision.image_size={size}"
        )
    rollouts = (cfg.get("callbacks") or {}).get("rollout")
    env = (cfg.get("env") or {}) if rollouts else {}  # the env matters only to the rollouts
    cams = env_spec.get("cameras")
    if cams is not None and env.get("cameras") is not None and list(env.cameras) != list(cams):
        raise ValueError(
            f"the dataset was recorded with cameras {list(cams)} but the rollout env observes "
            f"env.cameras={list(env.cameras)}: set env.cameras={list(cams)}"
        )
    if size is not None and env.get("image_size") not in (None, size):
        raise ValueError(
            f"the dataset's images are {size} px but the rollout env renders "
            f"env.image_size={env.image_size}: set env.image_size={size}"
        )


@hydra.main(config_path=CONFIG_PATH, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with user_errors("vla-train", extra=(InvalidStoreError, RunFolderError)):
        train(cfg)


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
    data, module, extra = build(cfg)
    saver = PretrainedCheckpoints(
        out / "checkpoints", cfg.checkpoint_every_n_steps, extra["stats"], extra["info"]
    )
    callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values() if c is not None]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=[*callbacks, saver, *extra_callbacks])
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


if __name__ == "__main__":
    main()
