"""Lift: "pick up the blue cylinder". Success: the target's centre is >= 5 cm above its resting
height while both fingers hold it, for ``held_steps`` consecutive control steps."""

from __future__ import annotations

from envs.tasks.base import REST_Z, EpisodeSpec, SceneView, Task, reach_term


class LiftTask(Task):
    name = "lift"
    max_episode_steps = 80
    lift_height = 0.05
    # consecutive steps the target must be held up (not ``Task.hold_steps``, the steps whose
    # actions the env ignores: that name once made the env ignore a lift's first 3 actions)
    held_steps = 3

    def evaluate(self, spec: EpisodeSpec, view: SceneView, memory: dict):
        i = spec.target
        height = float(view.object_pos[i, 2] - REST_Z)
        held = view.grasped(i) and height >= self.lift_height
        memory["held"] = memory.get("held", 0) + 1 if held else 0
        success = memory["held"] >= self.held_steps
        terms = {
            "reach": reach_term(view, i),
            "grasp": float(view.grasped(i)),
            "height": min(height, self.lift_height),
            "success": float(success),
        }
        return success, False, terms
