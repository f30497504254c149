"""Build a model from an untrusted config (a downloaded checkpoint's ``config.json``) safely.

A ``_target_`` is code: Hydra's ``instantiate`` imports and calls whatever a config names, and its
blocklist (``os.system``, ``exec``) is not a boundary — ``torch.load`` with unpickling allowed, on
a pickle beside the config, or ``builtins.open(mode="w")``, run fine through it. So checkpoints are
never given to Hydra. This module checks the *whole* config before anything is imported outside
this package or built, then builds it with a small instantiate of its own:

* every ``_target_`` must name a class of this package (``vla.*``) that is a model part — a
  subclass of one of ``PART_BASES`` (encoders, adapters, LMs, tokenizers, the VLA) — reached
  through modules and classes only (``vla.checkpoint.os.system`` is refused: ``os`` is a module
  reached by attribute, not by import), or a class path the caller trusts explicitly;
* the only special keys are ``_target_`` and ``_partial_`` (no ``_args_``, ``_convert_``,
  ``_recursive_``); strings are data: ``${...}`` interpolations are never resolved;
* nothing points outside the folder: file keys (``path``, ``pretrained_path``, ``gguf_file``
  ...) must be null, except those the caller allows, which must be relative paths inside it;
* Hugging Face escape hatches are refused: ``trust_remote_code``, ``auto_map`` (remote code) and
  an ``attn_implementation`` that is not a built-in kernel (hub kernels are downloaded code).

Errors name the offending key path, the value, the file and what to do.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TARGET, PARTIAL = "_target_", "_partial_"
SPECIAL_KEYS = (TARGET, PARTIAL)
PACKAGE = "vla"
# keys whose value names a file or folder to read: a checkpoint carries its files itself
FILE_KEYS = ("path", "pretrained_path", "gguf_file", "pretrained_cfg_overlay", "tokenizer_path")
REMOTE_CODE_KEYS = ("trust_remote_code", "auto_map")
ATTENTION_KEY = "attn_implementation"
BUILTIN_ATTENTION = (
    None,
    "eager",
    "sdpa",
    "flash_attention_2",
    "flash_attention_3",
    "flex_attention",
)


class UntrustedConfigError(ValueError):
    """A config names code or files that loading a checkpoint must not touch."""


def part_bases() -> tuple[type, ...]:
    """The model-part base classes a checkpoint may instantiate (imported late: no cycles)."""
    from vla.action_tokenizer import ActionTokenizer
    from vla.adapters.adapter import Adapter
    from vla.audio.audio_encoder import AudioEncoder
    from vla.causal_lm import CausalLM
    from vla.model import VLA
    from vla.text.text_encoder import TextEncoder
    from vla.text.text_tokenizer import TextTokenizer
    from vla.vision.colour_shape import ColourShapeEncoder
    from vla.vision.timm_encoder import TimmEncoder

    return (
        VLA,
        TimmEncoder,
        ColourShapeEncoder,
        Adapter,
        CausalLM,
        AudioEncoder,
        TextTokenizer,
        TextEncoder,
        ActionTokenizer,
    )


def check_config(
    config: Any,
    source: str,
    allowed_files: Sequence[str] = (),
    root: str | Path | None = None,
    trusted: Sequence[str] = (),
) -> dict[str, type]:
    """Check every node of ``config``; returns ``{target: class}``, or raises naming the first
    problem. ``allowed_files``: dotted key paths (e.g. ``text_tokenizer.path``) that may name a
    relative path inside ``root``; ``trusted``: extra class paths the caller vouches for."""
    classes: dict[str, type] = {}
    for where, node in _walk(config, ""):
        if isinstance(node, Mapping):
            for key in node:
                if not isinstance(key, str):
                    raise UntrustedConfigError(
                        f"{source}: key {key!r} at {where or '<root>'} is not a string"
                    )
                _check_key(node, key, _join(where, key), source, allowed_files, root)
            if TARGET in node:
                target = node[TARGET]
                if not isinstance(target, str):
                    raise UntrustedConfigError(
                        f"{source}: {_join(where, TARGET)}={target!r} must be a class path"
                    )
                if target not in classes:
                    classes[target] = resolve_target(
                        target, f"{source} ({_join(where, TARGET)})", trusted
                    )
            if PARTIAL in node and not isinstance(node[PARTIAL], bool):
                raise UntrustedConfigError(
                    f"{source}: {_join(where, PARTIAL)}={node[PARTIAL]!r} must be true or false"
                )
    return classes


def _check_key(
    node: Mapping,
    key: str,
    where: str,
    source: str,
    allowed_files: Sequence[str],
    root: str | Path | None,
) -> None:
    value = node[key]
    if key.startswith("_") and key.endswith("_") and key not in SPECIAL_KEYS:
        raise UntrustedConfigError(
            f"{source}: {where} is a Hydra directive this loader does not run; a checkpoint config "
            f"uses only {list(SPECIAL_KEYS)}"
        )
    if key in REMOTE_CODE_KEYS:
        raise UntrustedConfigError(
            f"{source}: {where}={value!r} asks Hugging Face to run code shipped with a model; "
            "a vla checkpoint never needs it: remove the key (or rebuild the checkpoint)"
        )
    if key == ATTENTION_KEY and value not in BUILTIN_ATTENTION:
        raise UntrustedConfigError(
            f"{source}: {where}={value!r} is not a built-in attention kernel "
            f"{[k for k in BUILTIN_ATTENTION if k]} (hub kernels are downloaded code)"
        )
    if key in FILE_KEYS and value is not None:
        if where not in allowed_files:
            raise UntrustedConfigError(
                f"{source}: {where}={value!r} points at a file outside the checkpoint; a "
                "checkpoint carries its own weights and tokenizer, so this must be null"
            )
        inside_folder(value, root, f"{source}: {where}")


def inside_folder(value: Any, root: str | Path | None, what: str) -> Path:
    """``root / value`` when ``value`` is a relative path that stays inside ``root``."""
    if not isinstance(value, str) or not value or Path(value).is_absolute() or root is None:
        raise UntrustedConfigError(
            f"{what}={value!r} must be a relative path inside the checkpoint"
        )
    base = Path(root).resolve()
    full = (base / value).resolve()
    if not full.is_relative_to(base):
        raise UntrustedConfigError(f"{what}={value!r} leaves the checkpoint folder {str(base)!r}")
    return full


def resolve_target(target: str, where: str, trusted: Sequence[str] = ()) -> type:
    """The class ``target`` names, imported only from this package; raises unless allowed."""
    parts = target.split(".")
    if target not in trusted and parts[0] != PACKAGE:
        raise UntrustedConfigError(
            f"{where}: _target_={target!r} is not a class of the {PACKAGE} package; loading a "
            f"checkpoint builds only {PACKAGE}'s model parts. If you wrote this class and trust "
            f"the checkpoint, pass trusted_targets=[{target!r}]"
        )
    obj: Any = None
    for i in range(len(parts), 0, -1):  # the longest importable module prefix
        name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(name)
        except ImportError:
            continue
        rest = parts[i:]
        break
    else:
        raise UntrustedConfigError(
            f"{where}: _target_={target!r}: no module {parts[0]!r} to import"
        )
    for attr in rest:  # attributes of a module or class: only classes (never a module or function)
        obj = getattr(obj, attr, None)
        if not inspect.isclass(obj):
            raise UntrustedConfigError(
                f"{where}: _target_={target!r}: {attr!r} is not a class (only classes are built)"
            )
    if not inspect.isclass(obj):
        raise UntrustedConfigError(f"{where}: _target_={target!r} names a module, not a class")
    if target in trusted:
        return obj
    bases = part_bases()
    if not obj.__module__.startswith(PACKAGE + ".") or not issubclass(obj, bases):
        raise UntrustedConfigError(
            f"{where}: _target_={target!r} is not a model part (one of "
            f"{[b.__name__ for b in bases]} or their subclasses in {PACKAGE}); refused"
        )
    return obj


def build(config: Any, classes: Mapping[str, type], **overrides: Any) -> Any:
    """Instantiate a config checked by ``check_config`` (``classes`` is what it returned).

    Nested nodes are built first; ``_partial_: true`` gives a ``functools.partial``. Top-level
    ``overrides`` replace keyword arguments of the root node (already-built objects).
    """
    if isinstance(config, Mapping):
        kwargs = {k: build(v, classes) for k, v in config.items() if k not in SPECIAL_KEYS}
        if TARGET not in config:
            return {**kwargs, **overrides}
        cls = classes[config[TARGET]]
        kwargs.update(overrides)
        return functools.partial(cls, **kwargs) if config.get(PARTIAL) else cls(**kwargs)
    if isinstance(config, list):
        return [build(v, classes) for v in config]
    return config


def _walk(node: Any, where: str):
    yield where, node
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _walk(value, _join(where, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}[{i}]")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
