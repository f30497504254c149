"""The tabletop tasks. ``TASKS`` maps a task name to its class (the gymnasium ids wrap them)."""

from envs.tasks.base import EpisodeSpec, ObjectSpec, PlaceSpec, SceneView, Task
from envs.tasks.lift import LiftTask
from envs.tasks.pick_place import PickPlaceTask
from envs.tasks.push import PushTask
from envs.tasks.recall import RecallTask
from envs.tasks.relation import RelationTask
from envs.tasks.touch import TouchTask

TASKS: dict[str, type[Task]] = {
    t.name: t for t in (TouchTask, LiftTask, PushTask, PickPlaceTask, RelationTask, RecallTask)
}

__all__ = [
    "TASKS",
    "EpisodeSpec",
    "LiftTask",
    "ObjectSpec",
    "PickPlaceTask",
    "PlaceSpec",
    "PushTask",
    "RecallTask",
    "RelationTask",
    "SceneView",
    "Task",
    "TouchTask",
]
