"""Checkpoint folders: safetensors weights, resolved config, tokenizer, action bins, norm stats.

Layout (``FORMAT_VERSION`` 1)::

    config.json            {"format": "vla", "format_version": 1, "model": <Hydra node>}
    model.safetensors      every parameter and persistent buffer (action token ids included)
    tokenizer/             the text tokenizer's own files (fitted BPE merges, HF tokenizer ...)
    action_tokenizer.json  n_bins, q01 / q99 bounds and the bins' vocabulary ids, for people
    normalization.json     the stats the model normalizes with, plus any the caller passes
    training.json          optional: what the trainer records (cameras, state key, env spec, step)

The folder is written under a temporary name and renamed into place, so a crash never leaves a
half-written checkpoint where a complete one is expected (DESIGN.md). Loading rebuilds the model
from ``config.json`` with ``hydra.utils.instantiate`` (a from-pretrained LM or encoder is rebuilt
from its recorded architecture, not from its original folder) and reads tensors with safetensors:
nothing is unpickled.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from hydra.utils import instantiate
from safetensors.torch import load_file, load_model, save_model

from vla.hydra_config import to_plain

if TYPE_CHECKING:
    from vla.model import VLA

FORMAT = "vla"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
ACTION_TOKENIZER_FILE = "action_tokenizer.json"
NORMALIZATION_FILE = "normalization.json"
TRAINING_FILE = "training.json"
REQUIRED = (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_DIR)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(to_plain(obj), indent=2) + "\n")


def save_checkpoint(
    model: "VLA",
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
    _write_json(
        tmp / CONFIG_FILE, {"format": FORMAT, "format_version": FORMAT_VERSION, "model": config}
    )
    save_model(model, str(tmp / WEIGHTS_FILE))  # handles tied embeddings
    model.text_tokenizer.save_pretrained(tmp / TOKENIZER_DIR)
    at = model.action_tokenizer
    _write_json(
        tmp / ACTION_TOKENIZER_FILE,
        {"n_bins": at.n_bins, "low": at.low, "high": at.high, "token_ids": at.token_ids},
    )
    stats: dict[str, Any] = {"action": {"q01": at.low, "q99": at.high}}
    if model.obs.state_dim:
        stats["state"] = {"q01": model.obs.state_low, "q99": model.obs.state_high}
    for key, value in (norm_stats or {}).items():
        stats[key] = {**stats.get(key, {}), **to_plain(value)}
    _write_json(tmp / NORMALIZATION_FILE, stats)
    if extra:
        _write_json(tmp / TRAINING_FILE, extra)
    old = directory.parent / f".{directory.name}.old-{os.getpid()}"
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def read_training_info(directory: str | Path) -> dict[str, Any]:
    """``training.json`` of a checkpoint ({} when it was saved outside a training run)."""
    path = Path(directory) / TRAINING_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def read_config(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config.json`` after checking the folder is complete and compatible."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint {str(directory)!r} is not a folder")
    missing = [name for name in REQUIRED if not (directory / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"checkpoint {str(directory)!r} is incomplete: missing {missing} (a VLA checkpoint "
            f"holds {list(REQUIRED)}; write one with VLA.save_pretrained)"
        )
    meta = json.loads((directory / CONFIG_FILE).read_text())
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {str(directory)!r} has format={meta.get('format')!r} version "
            f"{meta.get('format_version')!r}; this vla reads format={FORMAT!r} version "
            f"{FORMAT_VERSION}: re-save it with a matching vla release"
        )
    return meta["model"]


def load_checkpoint(directory: str | Path, map_location: str = "cpu") -> "VLA":
    """Rebuild and load a model written by ``save_checkpoint``; returned in eval mode."""
    directory = Path(directory)
    config = read_config(directory)
    config["text_tokenizer"]["path"] = str(directory / config["text_tokenizer"]["path"])
    model = instantiate(config)
    ids_before = model.action_tokenizer.token_ids.clone()  # as the rebuilt tokenizer assigned them
    try:
        missing, unexpected = load_model(
            model, str(directory / WEIGHTS_FILE), strict=False, device=map_location
        )
    except RuntimeError as err:  # shape mismatch: weights from another architecture
        raise ValueError(
            f"weights in {str(directory / WEIGHTS_FILE)!r} do not fit the model its "
            f"config.json describes: {str(err)[:500]}"
        ) from err
    if missing or unexpected:
        raise ValueError(
            f"weights in {str(directory / WEIGHTS_FILE)!r} do not match config.json: "
            f"missing {sorted(missing)[:8]}, unexpected {sorted(unexpected)[:8]}"
        )
    if not (model.action_tokenizer.token_ids == ids_before).all():
        raise ValueError(
            f"the tokenizer in {str(directory / TOKENIZER_DIR)!r} assigns the action tokens "
            "other ids than the saved weights use: the folder mixes files of two checkpoints"
        )
    return model.to(map_location).eval()


def init_from_checkpoint(model: "VLA", directory: str | Path) -> dict[str, list[str]]:
    """Start ``model`` from a checkpoint's weights (fine-tuning, staged training).

    Every parameter of ``model`` whose name is in the checkpoint is copied; it must have the same
    shape. Parameters the checkpoint lacks (a part the new model adds, e.g. a speech encoder)
    keep their fresh init. Buffers are not copied: action bins and state bounds stay this run's
    (its data statistics). Both models must tokenize text alike (the rows of the token
    embeddings are tokens). Returns ``{"copied": [...], "new": [...], "unused": [...]}``.
    """
    directory = Path(directory)
    config = read_config(directory)  # complete, readable folder
    saved = load_file(str(directory / WEIGHTS_FILE))
    ours = Path(tempfile.mkdtemp())
    try:
        model.text_tokenizer.save_pretrained(ours)
        theirs = directory / config["text_tokenizer"]["path"]
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
            "(the same store, transcribe / qa settings) or use its tokenizer "
            "(model/text_tokenizer=pretrained)"
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
