"""Rebuildable configs: every model part records the Hydra node that rebuilds it.

The constructor signature is the config (DESIGN.md), so a part built by Hydra can write the same
``{_target_: ..., **choices}`` node back into a checkpoint, and ``hydra.utils.instantiate`` rebuilds
it. Sizes derived from other parts (``in_dim``, ``out_dim``, vocabulary size) are left out: the
parent passes them again when it rebuilds.
"""

from collections.abc import Mapping, Sequence
from typing import Any


def target_config(obj: object, **choices: Any) -> dict[str, Any]:
    """The Hydra node ``{_target_: <obj's class>, **choices}`` as plain Python values."""
    cls = type(obj)
    return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **to_plain(choices)}


def to_plain(value: Any) -> Any:
    """Deep-convert OmegaConf containers, tuples and tensors' lists into dict / list / scalars.

    Hydra passes ``DictConfig`` / ``ListConfig`` for nested values; they are converted here so
    that model code never depends on OmegaConf and every recorded config is JSON-serializable.
    """
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if hasattr(value, "to_dict"):  # e.g. vla.data's NormalizationStats
        return to_plain(value.to_dict())
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [to_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays / torch tensors / numpy scalars
        return value.tolist()
    return value
