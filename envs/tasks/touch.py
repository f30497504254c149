"""Touch: "touch the red cube". Success is gripper contact with the target; touching any
other object first ends the episode as a failure, so touching everything is not a strategy."""

from __future__ import annotations

from envs.tasks.base import EpisodeSpec, SceneView, Task, reach_term, wrong_touch


class TouchTask(Task):
    name = "touch"
    max_episode_steps = 50

    def evaluate(self, spec: EpisodeSpec, view: SceneView, memory: dict):
        success = bool(view.contacted[spec.target])
        failure = not success and wrong_touch(view, spec.target)
        return success, failure, {"reach": reach_term(view, spec.target), "success": float(success)}
