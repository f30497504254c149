"""Pick and place: "put the red cube in the bowl" / "place the red cube on the blue pad".
The bowl and two pads are always on the table; the destination is one of them. Success: the
target rests in the bowl (or on the named pad) and the gripper has let go of it."""

from __future__ import annotations

import numpy as np

from envs.tasks.base import (
    PLACE_GAP,
    REST_Z,
    EpisodeSpec,
    PlaceSpec,
    SceneView,
    Task,
    draw_xy,
    reach_term,
)


class PickPlaceTask(Task):
    name = "pick_place"
    max_episode_steps = 100
    bowl_probability = 0.5

    def sample(self, rng, split, target=None) -> EpisodeSpec:
        naming = self.draw_naming(rng, split)  # nothing drawn by default: scenes as before
        taken: list[np.ndarray] = []
        places = self.draw_pads(rng, 2, taken)
        taken.append(draw_xy(rng, taken, gap=PLACE_GAP))
        places.append(PlaceSpec("bowl", None, taken[-1]))
        dest = 2 if rng.random() < self.bowl_probability else int(rng.integers(2))

        def clear_of_bowl(xy: np.ndarray) -> bool:  # objects must not start in the bowl's rim
            return np.linalg.norm(xy - places[2].xy) >= PLACE_GAP - 0.01

        objects = self.scatter(rng, split, target, taken, clear_of_bowl, clear_of_bowl, naming)
        t = objects[0]
        place = places[dest]
        text = self.instructions(split)(
            rng, t.colour, t.shape, place=(place.kind, place.colour), naming=naming
        )
        return EpisodeSpec(objects=objects, instruction=text, target=0, places=places, place=dest)

    def evaluate(self, spec: EpisodeSpec, view: SceneView, memory: dict):
        i = spec.target
        place = spec.places[spec.place]
        dist = float(np.linalg.norm(view.object_pos[i, :2] - view.place_xy[spec.place]))
        if place.kind == "bowl":
            inside = dist <= self.bowl_inner_radius - 0.015 and view.object_pos[i, 2] < 0.06
        else:
            inside = dist <= self.pad_radius and view.object_pos[i, 2] < REST_Z + 0.01
        settled = float(np.linalg.norm(view.object_vel[i])) < 0.05
        success = bool(inside and settled and not view.touched[i])
        terms = {
            "reach": reach_term(view, i),
            "grasp": float(view.grasped(i)),
            "to_goal": -dist,
            "success": float(success),
        }
        return success, False, terms
