"""A training run's parts from a composed config (``configs/train.yaml``): the data module, the
model (its action bins and state bounds from the store's statistics, its tokenizer fitted on the
training instructions) and the Lightning module, all checked against the store first.

A notebook builds the model ``vla-train`` would train in one call::

    from hydra import compose, initialize_config_dir
    with initialize_config_dir(config_dir=".../configs", version_base="1.3"):
        cfg = compose("train", overrides=["experiment=quickstart"])
    model = build_model(cfg)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from vla import keys
from vla.checkpoint import init_from_checkpoint
from vla.data import EpisodeStore
from vla.data.episode_data_module import EpisodeDataModule
from vla.data.episode_split import TRAIN, select_tasks
from vla.data.window_dataset import TRANSCRIBE_QUESTION
from vla.model import VLA
from vla.specs import EnvSpec, TrainingInfo
from vla.text.normalize import normalize_instruction
from vla.training.module import VLATrainingModule

# action_bounds -> the statistics that bound the action tokenizer's bins
ACTION_BOUNDS = {"min_max": ("min", "max"), "quantile": ("q01", "q99")}


@dataclass
class TrainingSetup:
    """What ``build_training`` returns: everything ``vla.training.fit.train`` runs."""

    data: EpisodeDataModule
    module: VLATrainingModule
    stats: dict[str, Any]  # the store's normalization statistics (saved with checkpoints)
    info: TrainingInfo


def build_model(cfg: DictConfig) -> VLA:
    """The VLA a config trains, built exactly as ``vla-train`` builds it (untrained)."""
    return build_training(cfg).module.model


def build_training(cfg: DictConfig) -> TrainingSetup:
    """Data module (stats computed), model (bounds filled in) and the training module. Fills the
    bounds into ``cfg.model`` (what the run's config.json then records)."""
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
    env_spec = EnvSpec.from_dict(store.env_spec)
    check_specs(cfg, env_spec)
    check_speech(cfg, store)
    with open_dict(cfg):
        low, high = ACTION_BOUNDS[cfg.action_bounds]
        cfg.model.action_tokenizer.low = stats[keys.ACTION][low]
        cfg.model.action_tokenizer.high = stats[keys.ACTION][high]
        state = cfg.dataset.state_key
        cfg.model.state_low = stats[state]["q01"] if state else None
        cfg.model.state_high = stats[state]["q99"] if state else None
    tokenizer = instantiate(cfg.model.text_tokenizer)
    labels = select_tasks(store.splits, store.tasks, cfg.dataset.get("tasks"))
    train_episodes = [i for i, s in enumerate(labels) if s == TRAIN]
    texts = [normalize_instruction(store.instructions[i]) for i in train_episodes]  # as fed
    if cfg.dataset.get("qa_fraction"):  # co-training: questions and answers are text too
        qa = [store.extras[i] for i in train_episodes if keys.ANSWER in store.extras[i]]
        texts += [x[keys.QUESTION] for x in qa] + [x[keys.ANSWER] for x in qa]
    if cfg.dataset.get("transcribe_fraction"):
        texts.append(TRANSCRIBE_QUESTION)
    if not getattr(tokenizer, "fitted", False):  # one loaded from a folder keeps its ids
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
    info = TrainingInfo(
        image_keys=tuple(cfg.dataset.image_keys),
        state_key=cfg.dataset.state_key,
        dataset=str(cfg.dataset.path),
        env_spec=env_spec,
        tasks=tuple(sorted({store.tasks[i] for i in train_episodes})),  # what evaluation may ask
        obs_horizon=cfg.model.obs_horizon,
        action_horizon=cfg.model.action_horizon,
    )
    return TrainingSetup(data, module, stats, info)


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


def vision_image_size(vision: DictConfig, key: str = "model.vision") -> tuple[str, Any]:
    """The image size an image encoder's config sets and its key: its own ``image_size``, or
    that of the encoder it wraps (``model/vision=colour_shape``: ``model.vision.shape``)."""
    if "image_size" in vision:
        return f"{key}.image_size", vision.image_size
    for name, node in vision.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            return vision_image_size(node, f"{key}.{name}")
    raise ValueError(f"{key} sets no image_size (nor does an encoder it wraps)")


def check_specs(cfg: DictConfig, env_spec: EnvSpec) -> None:
    """Dataset, model and rollout env must agree on cameras and image size (fail before work)."""
    n_cams = len(cfg.dataset.image_keys)
    if cfg.model.num_cameras != n_cams:
        raise ValueError(
            f"model.num_cameras={cfg.model.num_cameras} but dataset.image_keys="
            f"{list(cfg.dataset.image_keys)} has {n_cams} cameras: make them agree"
        )
    size = env_spec.image_size[0] if env_spec.image_size else None
    key, model_size = vision_image_size(cfg.model.vision)
    if size is not None and model_size != size:
        raise ValueError(
            f"the dataset's images are {size} px but {key}={model_size}: set {key}={size}"
        )
    rollouts = (cfg.get("callbacks") or {}).get("rollout")
    env = (cfg.get("env") or {}) if rollouts else {}  # the env matters only to the rollouts
    cams = env_spec.cameras
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
