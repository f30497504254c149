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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.utils import instantiate
from safetensors.torch import load_model, save_model

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
