"""The objects, places and cue of ``assets/tabletop.xml``, as the env writes and reads them.

The scene has ``N_SLOTS`` object slots (a free body with one geom per shape, only the episode's
shape drawn and colliding; unused slots are parked, gravity-compensated and contact-free), two
coloured pads and a bowl, and a cue light for memory tasks. :class:`TabletopScene` holds the
MuJoCo ids once per model and writes an episode's layout into the model (``layout``), and reads
the objects' poses and the gripper's contacts back (``objects``, ``contacts``).
"""

from __future__ import annotations

import mujoco
import numpy as np

from envs.palette import COLOURS, HALF_SIZE, SHAPES
from envs.tasks import EpisodeSpec

N_SLOTS = 6
GRIPPER_PARTS = ("palm", "wrist", "finger_left", "finger_right")


class TabletopScene:
    """Ids of the scene's bodies, geoms and joints in ``model``, and the layout / contact logic."""

    def __init__(self, model: mujoco.MjModel) -> None:
        m = model
        self.slot_body = [m.body(f"obj{i}").id for i in range(N_SLOTS)]
        self.slot_geoms = [[m.geom(f"obj{i}_{s}").id for s in SHAPES] for i in range(N_SLOTS)]
        self.slot_qpos = [m.jnt_qposadr[m.joint(f"obj{i}").id] for i in range(N_SLOTS)]
        self.slot_qvel = [m.jnt_dofadr[m.joint(f"obj{i}").id] for i in range(N_SLOTS)]
        self.geom_slot = np.full(m.ngeom, -1)  # geom -> object slot, or -1
        for i, geoms in enumerate(self.slot_geoms):
            self.geom_slot[geoms] = i
        self.geom_part = np.full(m.ngeom, -1)  # geom -> index into GRIPPER_PARTS, or -1
        for k, part in enumerate(GRIPPER_PARTS):
            self.geom_part[m.geom(part).id] = k
        self.place_body = [m.body(n).id for n in ("pad0", "pad1", "bowl")]
        self.place_park = m.body_pos[self.place_body].copy()
        self.pad_geom = [m.geom("pad0").id, m.geom("pad1").id]
        self.cue_body, self.cue_geom = m.body("cue").id, m.geom("cue").id
        self.cue_park = m.body_pos[self.cue_body].copy()

    def layout(self, model: mujoco.MjModel, spec: EpisodeSpec, qpos: np.ndarray, cue: bool) -> None:
        """Write ``spec`` into ``model`` and the objects' poses into ``qpos``; ``cue``: place the
        cue light under the target (else parked)."""
        m = model
        if len(spec.objects) > N_SLOTS:
            raise ValueError(
                f"task drew {len(spec.objects)} objects; the scene has {N_SLOTS} slots"
            )
        for i in range(N_SLOTS):
            obj = spec.objects[i] if i < len(spec.objects) else None
            for k, g in enumerate(self.slot_geoms[i]):
                active = obj is not None and SHAPES[k] == obj.shape
                m.geom_contype[g] = m.geom_conaffinity[g] = int(active)
                m.geom_rgba[g] = [*COLOURS[obj.colour], 1.0] if active else [0, 0, 0, 0]
            # parked slots float with gravity compensated: no contacts, no drift
            m.body_gravcomp[self.slot_body[i]] = 0.0 if obj is not None else 1.0
            if obj is not None:
                a = self.slot_qpos[i]
                half = obj.yaw / 2
                qpos[a : a + 7] = [*obj.xy, HALF_SIZE, np.cos(half), 0, 0, np.sin(half)]
        m.body_pos[self.place_body] = self.place_park
        pads = iter(range(2))
        for place in spec.places:
            slot = 2 if place.kind == "bowl" else next(pads)
            m.body_pos[self.place_body[slot]] = [*place.xy, 0.0]
            if place.kind == "pad":
                m.geom_rgba[self.pad_geom[slot]] = [*COLOURS[place.colour], 1.0]
        m.body_pos[self.cue_body] = self.cue_park
        if cue:
            m.body_pos[self.cue_body] = [*spec.objects[spec.target].xy, 0.0]

    def objects(self, data: mujoco.MjData, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions and linear velocities ``(n, 3)`` of the first ``n`` objects."""
        pos = np.stack([data.qpos[a : a + 3] for a in self.slot_qpos[:n]])  # (n, 3)
        vel = np.stack([data.qvel[a : a + 3] for a in self.slot_qvel[:n]])  # (n, 3)
        return pos, vel

    def contacts(self, data: mujoco.MjData, n_objects: int) -> list[set[str]]:
        """Per object slot, the gripper parts in contact with it now."""
        touched: list[set[str]] = [set() for _ in range(n_objects)]
        pairs = data.contact.geom[: data.ncon]  # (ncon, 2) geom ids
        slots, parts = self.geom_slot[pairs], self.geom_part[pairs]  # (ncon, 2) each, -1 = none
        for a, b in ((0, 1), (1, 0)):  # a gripper part on one side, an object on the other
            hit = (parts[:, a] >= 0) & (slots[:, b] >= 0) & (slots[:, b] < n_objects)  # (ncon,)
            for slot, part in zip(slots[hit, b], parts[hit, a], strict=True):
                touched[slot].add(GRIPPER_PARTS[part])
        return touched
