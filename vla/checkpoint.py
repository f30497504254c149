"""Checkpoint folders: safetensors weights, resolved config, tokenizer, action bins, norm stats.

Layout (``FORMAT_VERSION`` 3; versions 1 (no integrity record) and 2 (the prompt's parameters
under their old names ``obs.``, ``speech.``, ``text_encoder.``, ``text_adapter.``,
``prompt_end``, renamed on load by ``legacy_weight_name``) still load)::

    config.json            {"format": "vla", "format_version": 3, "model": <config node>,
                            "files": {<relative path>: {"bytes": n, "sha256": hex}, ...}}
    model.safetensors      every parameter and persistent buffer (action token ids included)
    tokenizer/             the text tokenizer's own files (fitted BPE merges, HF tokenizer ...)
    text_encoder/          a pretrained text encoder's tokenizer files (only models with one;
                           its weights are in model.safetensors)
    action_tokenizer.json  n_bins, q01 / q99 bounds and the bins' vocabulary ids, for people
    normalization.json     the stats the model normalizes with, plus any the caller passes
    training.json          optional: what the trainer records (cameras, state key, env spec, step)

The folder is written under a temporary name and renamed into place, so a crash never leaves a
half-written checkpoint where a complete one is expected (DESIGN.md); ``config.json`` is written
last, with the size and SHA-256 of every other file (``vla.checkpoint_files``).

A checkpoint is untrusted input (people download them). Loading
(``load_checkpoint``):

* checks every recorded file's size and SHA-256 before reading it, and refuses unlisted files in
  ``tokenizer/``;
* checks the whole config before building anything (``vla.trusted_config``): only this
  package's model parts are instantiated (never Hydra's ``instantiate``, which runs any callable a
  ``_target_`` names), no file outside the folder is named, no remote code is enabled;
* reads tensors with safetensors (nothing is unpickled) and refuses NaN / inf weights.

Every refusal is a ``CheckpointError`` (a ``ValueError``) naming the file.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from vla.checkpoint_files import (
    MANIFEST_KEY,
    CheckpointError,
    file_record,
    read_json,
    verify_files,
)
from vla.hydra_config import to_plain
from vla.model import VLA
from vla.specs import TrainingInfo
from vla.trusted_config import build, check_config, inside_folder

__all__ = ["CheckpointError", "load_checkpoint", "read_config", "save_checkpoint"]

FORMAT = "vla"
FORMAT_VERSION = 3
# 1: no integrity record; 1-2: the prompt encoder's parameters under their old names
SUPPORTED_FORMAT_VERSIONS = (1, 2, 3)
# parameter-name prefixes of versions 1-2 -> today's (the parts moved into ``VLA.prompt``)
LEGACY_PREFIXES = (
    ("obs.", "prompt.obs."),
    ("speech.", "prompt.speech."),
    ("text_encoder.", "prompt.text_encoder."),
    ("text_adapter.", "prompt.text_adapter."),
    ("prompt_end", "prompt.end"),
)
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
ACTION_TOKENIZER_FILE = "action_tokenizer.json"
NORMALIZATION_FILE = "normalization.json"
TRAINING_FILE = "training.json"
REQUIRED = (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_DIR)
TEXT_ENCODER_DIR = "text_encoder"
TOKENIZER_PATH_KEY = "text_tokenizer.path"  # the file keys a checkpoint config may set
TEXT_ENCODER_PATH_KEY = "text_encoder.tokenizer_path"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(to_plain(obj), indent=2) + "\n")


def legacy_weight_name(name: str, version: int) -> str:
    """Today's name of a parameter that a format-``version`` checkpoint saved as ``name``."""
    if version < 3:
        for old, new in LEGACY_PREFIXES:
            if name == old or (old.endswith(".") and name.startswith(old)):
                return new + name[len(old) :]
    return name


def save_checkpoint(
    model: VLA,
    directory: str | Path,
    norm_stats: dict | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to ``directory`` atomically (replacing an existing checkpoint there).

    ``extra`` (JSON-able) goes to ``training.json``: what a policy needs besides the weights.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    config = model.model_config()
    config["text_tokenizer"]["path"] = TOKENIZER_DIR  # relative: the folder can be moved
    if "gguf_file" in config["text_tokenizer"]:  # tokenizer/ holds plain tokenizer files
        config["text_tokenizer"]["gguf_file"] = None
    save_model(model, str(tmp / WEIGHTS_FILE))  # handles tied embeddings
    model.text_tokenizer.save_pretrained(tmp / TOKENIZER_DIR)
    if model.text_encoder is not None:
        config["text_encoder"] = model.text_encoder.export_config(tokenizer_path=TEXT_ENCODER_DIR)
        model.text_encoder.save_tokenizer(tmp / TEXT_ENCODER_DIR)
    at = model.action_tokenizer
    _write_json(
        tmp / ACTION_TOKENIZER_FILE,
        {"n_bins": at.n_bins, "low": at.low, "high": at.high, "token_ids": at.token_ids},
    )
    stats = model.normalization_bounds()
    for key, value in (norm_stats or {}).items():
        stats[key] = {**stats.get(key, {}), **to_plain(value)}
    _write_json(tmp / NORMALIZATION_FILE, stats)
    if extra:
        _write_json(tmp / TRAINING_FILE, extra)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": config}
    meta[MANIFEST_KEY] = file_record(tmp, exclude=(CONFIG_FILE,))  # last: it seals the rest
    _write_json(tmp / CONFIG_FILE, meta)
    old = directory.parent / f".{directory.name}.old-{os.getpid()}"
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def read_training_info(directory: str | Path) -> TrainingInfo:
    """``training.json`` of a checkpoint (empty when it was saved outside a training run)."""
    path = Path(directory) / TRAINING_FILE
    if not path.exists():
        return TrainingInfo()
    info = read_json(path)
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: must hold a JSON object, got {type(info).__name__}")
    return TrainingInfo.from_dict(info)


def read_config(directory: str | Path, verify: bool = True) -> dict[str, Any]:
    """The checkpoint's model config after checking the folder is complete, compatible and (with
    ``verify``) that every file matches the integrity record."""
    return read_meta(directory, verify)["model"]


def read_meta(directory: str | Path, verify: bool = True) -> dict[str, Any]:
    """``config.json`` (format, version, model config, file record) after ``read_config``'s
    checks."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint {str(directory)!r} is not a folder")
    missing = [name for name in REQUIRED if not (directory / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"checkpoint {str(directory)!r} is incomplete: missing {missing} (a VLA checkpoint "
            f"holds {list(REQUIRED)}; write one with vla.checkpoint.save_checkpoint)"
        )
    path = directory / CONFIG_FILE
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: must hold a JSON object, got {type(meta).__name__}")
    version = meta.get("format_version")
    if meta.get("format") != FORMAT or version not in SUPPORTED_FORMAT_VERSIONS:
        raise CheckpointError(
            f"{path}: format={meta.get('format')!r} version {version!r}; this vla reads "
            f"format={FORMAT!r} versions {list(SUPPORTED_FORMAT_VERSIONS)}: re-save it with a "
            "matching vla release"
        )
    if not isinstance(meta.get("model"), dict):
        raise CheckpointError(f"{path}: has no 'model' config object")
    if version >= 2:
        if MANIFEST_KEY not in meta:
            raise CheckpointError(
                f"{path}: format_version {version} but no integrity record ('{MANIFEST_KEY}'); "
                "the config was edited or replaced: copy or download the checkpoint again"
            )
        if verify:
            sealed = (TOKENIZER_DIR, TEXT_ENCODER_DIR)  # tokenizer loaders read these whole
            verify_files(directory, meta[MANIFEST_KEY], sealed_dirs=sealed)
    return meta


def load_checkpoint(
    directory: str | Path, map_location: str = "cpu", trusted_targets: Sequence[str] = ()
) -> VLA:
    """Rebuild and load a model written by ``save_checkpoint``; returned in eval mode.

    ``trusted_targets``: class paths outside this package that you wrote and trust (your own
    adapter, say); everything else a config names must be one of vla's model parts.
    """
    directory = Path(directory)
    meta = read_meta(directory)
    config, version = meta["model"], meta["format_version"]
    source = str(directory / CONFIG_FILE)
    allowed = (TOKENIZER_PATH_KEY, TEXT_ENCODER_PATH_KEY)
    classes = check_config(
        config, source, allowed_files=allowed, root=directory, trusted=trusted_targets
    )
    tokenizer = config.get("text_tokenizer")
    if not isinstance(tokenizer, dict) or "_target_" not in tokenizer:
        raise CheckpointError(f"{source}: model.text_tokenizer must be a config node")
    where = f"{source}: {TOKENIZER_PATH_KEY}"
    tokenizer["path"] = str(inside_folder(tokenizer.get("path"), directory, where))
    encoder = config.get("text_encoder")
    if encoder is not None:
        if not isinstance(encoder, dict):
            raise CheckpointError(f"{source}: model.text_encoder must be a config node or null")
        where = f"{source}: {TEXT_ENCODER_PATH_KEY}"
        encoder["tokenizer_path"] = str(
            inside_folder(encoder.get("tokenizer_path"), directory, where)
        )
    model = build(config, classes)
    if not isinstance(model, VLA):
        raise CheckpointError(
            f"{source}: the model config builds {type(model).__name__}, not a VLA"
        )
    ids_before = model.action_tokenizer.token_ids.clone()  # as the rebuilt tokenizer assigned them
    weights = directory / WEIGHTS_FILE
    try:
        if version < 3:  # old parameter names: load a renamed copy (the folder stays sealed)
            with tempfile.TemporaryDirectory() as tmp:
                renamed = Path(tmp) / WEIGHTS_FILE
                save_file(load_weights(directory, version), str(renamed))
                missing, unexpected = load_model(
                    model, str(renamed), strict=False, device=map_location
                )
        else:
            missing, unexpected = load_model(model, str(weights), strict=False, device=map_location)
    except SafetensorError as err:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({err})") from None
    except RuntimeError as err:  # shape mismatch: weights from another architecture
        raise CheckpointError(
            f"weights in {str(weights)!r} do not fit the model its config.json describes: "
            f"{str(err)[:500]}"
        ) from None
    if missing or unexpected:
        raise CheckpointError(
            f"weights in {str(weights)!r} do not match config.json: "
            f"missing {sorted(missing)[:8]}, unexpected {sorted(unexpected)[:8]}"
        )
    check_finite(model.state_dict().items(), weights)
    if not (model.action_tokenizer.token_ids == ids_before).all():
        raise CheckpointError(
            f"the tokenizer in {str(directory / TOKENIZER_DIR)!r} assigns the action tokens "
            "other ids than the saved weights use: the folder mixes files of two checkpoints"
        )
    return model.to(map_location).eval()


def check_finite(tensors: Any, source: Path) -> None:
    """Refuse NaN / inf in any floating tensor, naming the first one."""
    for name, t in tensors:
        if t.is_floating_point() and not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(
                f"{source}: tensor {name!r} holds {bad} NaN/inf values (a diverged run or a "
                "damaged file); use an earlier checkpoint"
            )


def load_weights(directory: Path, version: int = FORMAT_VERSION) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors (finite, readable) under today's parameter names."""
    weights = directory / WEIGHTS_FILE
    try:
        saved = load_file(str(weights))
    except SafetensorError as err:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({err})") from None
    check_finite(saved.items(), weights)
    return {legacy_weight_name(name, version): t for name, t in saved.items()}


def init_from_checkpoint(model: VLA, directory: str | Path) -> dict[str, list[str]]:
    """Start ``model`` from a checkpoint's weights (fine-tuning, staged training).

    Every parameter of ``model`` whose name is in the checkpoint is copied; it must have the same
    shape. Parameters the checkpoint lacks (a part the new model adds, e.g. a speech encoder)
    keep their fresh init. Buffers are not copied: action bins and state bounds stay this run's
    (its data statistics). Both models must tokenize text alike (the rows of the token
    embeddings are tokens). Returns ``{"copied": [...], "new": [...], "unused": [...]}``.
    """
    directory = Path(directory)
    meta = read_meta(directory)  # complete folder, every file as recorded
    config = meta["model"]
    saved = load_weights(directory, meta["format_version"])
    ours = Path(tempfile.mkdtemp())
    try:
        model.text_tokenizer.save_pretrained(ours)
        where = f"{directory / CONFIG_FILE}: {TOKENIZER_PATH_KEY}"
        theirs = inside_folder(config.get("text_tokenizer", {}).get("path"), directory, where)
        differ = [
            p.name
            for p in sorted(ours.iterdir())
            if not (theirs / p.name).is_file() or (theirs / p.name).read_bytes() != p.read_bytes()
        ]
    finally:
        shutil.rmtree(ours, ignore_errors=True)
    if differ:
        raise ValueError(
            f"init_from={str(directory)!r}: its text tokenizer differs from this run's ({differ}), "
            "so its token-embedding rows would mean other tokens: fit on the same instructions "
            "(the same store, transcribe / qa settings) or keep its tokenizer "
            f"(model.text_tokenizer.path={theirs}: a store that grew, e.g. DAgger episodes; "
            "model/text_tokenizer=pretrained for a pretrained LM's)"
        )
    params = dict(model.named_parameters(remove_duplicate=False))
    wrong = {
        n: (tuple(saved[n].shape), tuple(p.shape))
        for n, p in params.items()
        if n in saved and saved[n].shape != p.shape
    }
    if wrong:
        raise ValueError(
            f"init_from={str(directory)!r}: parameters of another shape (checkpoint, this "
            f"model): {dict(list(wrong.items())[:6])}; the architectures differ"
        )
    copied, loaded = [], set()
    with torch.no_grad():
        for name, p in params.items():
            if name in saved:
                p.copy_(saved[name].to(p.device, p.dtype))
                copied.append(name)
                loaded.add(id(p))
    new = [n for n, p in params.items() if id(p) not in loaded]
    buffers = {n for n, _ in model.named_buffers()}
    unused = sorted(k for k in saved if k not in params and k not in buffers)
    return {"copied": copied, "new": new, "unused": unused}
