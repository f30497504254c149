"""Spatial relation: "touch the cylinder left of the red cube". Two objects of the referent's
shape stand on opposite sides of the named anchor, and no other object has that shape, so
the referent is only resolvable through the relation (a shape-only guess is right half the
time). Relations are seen from the front camera: left = -x, in front = -y. Judged as touch."""

from __future__ import annotations

import numpy as np

from envs.instructions import RELATIONS
from envs.palette import COLOURS, SHAPES
from envs.tasks.base import (
    REGION_X,
    REGION_Y,
    EpisodeSpec,
    ObjectSpec,
    draw_target,
    draw_xy,
    random_yaw,
)
from envs.tasks.touch import TouchTask

# relation -> (axis, sign) of the referent's offset from the anchor
OFFSETS = {"left": (0, -1.0), "right": (0, 1.0), "front": (1, -1.0), "behind": (1, 1.0)}


class RelationTask(TouchTask):
    name = "relation"
    max_episode_steps = 50
    names_target = False  # the referent is named by its shape and an anchor, never as {obj}
    n_extra = (0, 2)  # distractors besides the two candidates, of other shapes

    def sample(self, rng, split, target=None) -> EpisodeSpec:
        """``target`` forces the *anchor* (the object the instruction names by colour)."""
        anchor_colour, anchor_shape = draw_target(rng, split, target)
        relation = list(RELATIONS)[rng.integers(len(RELATIONS))]
        axis, sign = OFFSETS[relation]
        shape = [s for s in SHAPES if s != anchor_shape][rng.integers(len(SHAPES) - 1)]
        if axis == 0:
            anchor = np.array([rng.uniform(-0.08, 0.08), rng.uniform(*REGION_Y)])  # (2,)
        else:
            anchor = np.array([rng.uniform(*REGION_X), rng.uniform(-0.03, 0.04)])  # (2,)
        colours = list(COLOURS)
        objects = [ObjectSpec(anchor_colour, anchor_shape, anchor, random_yaw(rng))]
        for side in (sign, -sign):  # the referent first, then its mirror candidate
            xy = anchor.copy()
            xy[axis] += side * rng.uniform(0.09, 0.12)
            xy[1 - axis] += rng.uniform(-0.03, 0.03)
            colour = colours[rng.integers(len(colours))]
            objects.append(ObjectSpec(colour, shape, xy, random_yaw(rng)))
        taken = [o.xy for o in objects]
        others = [s for s in SHAPES if s != shape]
        for _ in range(int(rng.integers(self.n_extra[0], self.n_extra[1] + 1))):
            taken.append(draw_xy(rng, taken))
            pair = (colours[rng.integers(len(colours))], others[rng.integers(len(others))])
            if pair == (anchor_colour, anchor_shape):  # a twin would make the anchor ambiguous
                pair = (colours[(colours.index(anchor_colour) + 1) % len(colours)], anchor_shape)
            objects.append(ObjectSpec(*pair, taken[-1], random_yaw(rng)))
        referent = objects[1]
        text = self.instructions(split)(
            rng, referent.colour, shape, relation=relation, anchor=(anchor_colour, anchor_shape)
        )
        return EpisodeSpec(objects=objects, instruction=text, target=1)
