"""Push: "push the green sphere onto the yellow pad". Two pads of different colours are on the
table, so both the object and the pad must be read. Success: the target's centre is over the
named pad while it rests on the table and is not held (pushed, not carried)."""

from __future__ import annotations

import numpy as np

from envs.tasks.base import (
    REST_Z,
    EpisodeSpec,
    SceneView,
    Task,
    reach_term,
    segment_distance,
)

TABLE_REACH = (0.28, 0.2)  # |x|, |y| the gripper can stand at to push from behind
PATH_CLEARANCE = 0.075  # distractor centres keep this far from the push path


class PushTask(Task):
    name = "push"
    max_episode_steps = 100
    push_distance = (0.1, 0.2)

    def sample(self, rng, split, target=None) -> EpisodeSpec:
        naming = self.draw_naming(rng, split)  # nothing drawn by default: scenes as before
        taken: list[np.ndarray] = []
        pads = self.draw_pads(rng, 2, taken)
        dest = int(rng.integers(2))
        goal = pads[dest].xy

        def behind(xy: np.ndarray) -> np.ndarray:  # where the gripper stands to push xy to goal
            return xy + (xy - goal) / np.linalg.norm(xy - goal) * 0.06

        def target_ok(xy: np.ndarray) -> bool:
            lo, hi = self.push_distance
            start = behind(xy)
            return lo <= np.linalg.norm(xy - goal) <= hi and bool(
                np.all(np.abs(start) <= TABLE_REACH)
            )

        def distractor_ok(xy: np.ndarray) -> bool:
            start = behind(taken[len(pads)])  # the target is drawn first, right after the pads
            return segment_distance(xy, start, goal) >= PATH_CLEARANCE

        objects = self.scatter(rng, split, target, taken, target_ok, distractor_ok, naming)
        t = objects[0]
        text = self.instructions(split)(
            rng, t.colour, t.shape, place=("pad", pads[dest].colour), naming=naming
        )
        return EpisodeSpec(objects=objects, instruction=text, target=0, places=pads, place=dest)

    def evaluate(self, spec: EpisodeSpec, view: SceneView, memory: dict):
        i = spec.target
        dist = float(np.linalg.norm(view.object_pos[i, :2] - view.place_xy[spec.place]))
        resting = view.object_pos[i, 2] < REST_Z + 0.01
        success = dist <= self.pad_radius and resting and not view.grasped(i)
        terms = {"reach": reach_term(view, i), "to_goal": -dist, "success": float(success)}
        return success, False, terms
