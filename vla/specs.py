"""Typed records that cross package boundaries: what a store says of its env, what a checkpoint
says of its training run.

Both are written as JSON (the store's ``env_spec`` attribute, a checkpoint's ``training.json``)
and read back here, so the field names are spelled once. Stores written by other simulators
through ``vla.data.EpisodeWriter`` may describe their env with fields of their own: ``EnvSpec``
keeps those in ``extra`` and writes them back unchanged, and every field this package reads is
optional (a foreign store need not know what a camera list is).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EnvSpec:
    """The env a store was recorded in (``policies.collect.env_spec_of`` fills it for gym envs).

    Attributes:
        env_id: the gymnasium id (``vla/Touch-v0``).
        action_shape / action_low / action_high: the action space (a Box).
        control_hz: control steps per second.
        cameras: camera names, in the order of the store's image keys.
        image_size: ``[height, width]`` of every camera image.
        state_names: one name per state dimension.
        split: the scene split the episodes were drawn from.
        extra: any other field the writer recorded, kept as written.
    """

    env_id: str | None = None
    action_shape: tuple[int, ...] | None = None
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None
    control_hz: float | None = None
    cameras: tuple[str, ...] | None = None
    image_size: tuple[int, int] | None = None
    state_names: tuple[str, ...] | None = None
    split: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | None) -> EnvSpec:
        spec = dict(spec or {})
        space = spec.pop("action_space", None) or {}
        size = spec.pop("image_size", None)
        return cls(
            env_id=spec.pop("env_id", None),
            action_shape=_tuple(space.get("shape")),
            action_low=_tuple(space.get("low")),
            action_high=_tuple(space.get("high")),
            control_hz=spec.pop("control_hz", None),
            cameras=_tuple(spec.pop("cameras", None)),
            image_size=None if size is None else (int(size[0]), int(size[-1])),
            state_names=_tuple(spec.pop("state_names", None)),
            split=spec.pop("split", None),
            extra=spec,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``from_dict`` reads it back); unset fields are left out."""
        out: dict[str, Any] = {}
        if self.env_id is not None:
            out["env_id"] = self.env_id
        if self.action_shape is not None:
            out["action_space"] = {
                "shape": list(self.action_shape),
                "low": list(self.action_low or ()),
                "high": list(self.action_high or ()),
            }
        if self.control_hz is not None:
            out["control_hz"] = self.control_hz
        if self.cameras is not None:
            out["cameras"] = list(self.cameras)
        if self.image_size is not None:
            out["image_size"] = list(self.image_size)
        if self.state_names is not None:
            out["state_names"] = list(self.state_names)
        if self.split is not None:
            out["split"] = self.split
        return {**out, **self.extra}


@dataclass(frozen=True)
class TrainingInfo:
    """What a policy needs from the training run besides the weights (``training.json``).

    Attributes:
        image_keys: the store's camera keys, in the model's camera order.
        state_key: the observation key of proprioception (None: no state input).
        dataset: the store's path.
        env_spec: the store's env.
        tasks: the tasks the training split holds (what an evaluation may ask for).
        obs_horizon / action_horizon: the model's T and H.
        step / epoch: where in training the checkpoint was written.
        extra: other fields (metrics a checkpoint was selected by, ...), kept as written.
    """

    image_keys: tuple[str, ...] = ()
    state_key: str | None = None
    dataset: str | None = None
    env_spec: EnvSpec = field(default_factory=EnvSpec)
    tasks: tuple[str, ...] = ()
    obs_horizon: int | None = None
    action_horizon: int | None = None
    step: int | None = None
    epoch: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, info: Mapping[str, Any] | None) -> TrainingInfo:
        info = dict(info or {})
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: info.pop(k) for k in list(info) if k in names}
        known["env_spec"] = EnvSpec.from_dict(known.get("env_spec"))
        for key in ("image_keys", "tasks"):
            known[key] = _tuple(known.get(key)) or ()
        return cls(**known, extra=info)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.pop("extra")
        out["env_spec"] = self.env_spec.to_dict()
        out["image_keys"], out["tasks"] = list(self.image_keys), list(self.tasks)
        return {**{k: v for k, v in out.items() if v is not None}, **self.extra}

    def with_step(self, **fields: Any) -> TrainingInfo:
        """A copy with ``step`` / ``epoch`` set and any other field added to ``extra``."""
        known = {k: fields.pop(k) for k in ("step", "epoch") if k in fields}
        return dataclasses.replace(self, **known, extra={**self.extra, **fields})


def _tuple(values: Sequence[Any] | None) -> tuple[Any, ...] | None:
    return None if values is None else tuple(values)
