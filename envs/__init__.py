"""MuJoCo tabletop grounding tasks, registered as gymnasium ids in the ``vla`` namespace.

    import gymnasium as gym, envs
    env = gym.make("vla/Touch-v0", split="test", image_size=64, cameras=("front", "wrist"))

Depends only on gymnasium, mujoco and numpy (never on ``vla`` or ``policies``).
"""

from gymnasium.envs.registration import register, registry

from envs.tabletop_env import CAMERAS, TASK_NAMES, TabletopEnv

MULTITASK_NAMES = ("touch", "lift", "push", "pick_place", "relation")

# gymnasium id -> task name(s); the multi-task env draws one of the five manipulation tasks
# per episode (recall, a memory task with a hold phase, stands alone)
_IDS = {
    "vla/Touch-v0": "touch",
    "vla/Lift-v0": "lift",
    "vla/Push-v0": "push",
    "vla/PickPlace-v0": "pick_place",
    "vla/Relation-v0": "relation",
    "vla/Recall-v0": "recall",
    "vla/MultiTask-v0": MULTITASK_NAMES,
}
TASK_IDS: tuple[str, ...] = tuple(_IDS)  # every registered id, the multi-task env last
SINGLE_TASK_IDS: tuple[str, ...] = TASK_IDS[:-1]
MULTITASK_ID = TASK_IDS[-1]

for _id, _tasks in _IDS.items():
    if _id not in registry:
        register(id=_id, entry_point="envs.tabletop_env:TabletopEnv", kwargs={"tasks": _tasks})

# Meta-World v3 (optional extra vla[metaworld]: envs/metaworld_env.py imports metaworld only when
# an env is made); tasks=[...] picks any of its tasks, the default is MT10
METAWORLD_ID = "vla/MetaWorld-v0"
if METAWORLD_ID not in registry:
    register(id=METAWORLD_ID, entry_point="envs.metaworld_env:MetaWorldEnv")

__all__ = [
    "CAMERAS",
    "METAWORLD_ID",
    "MULTITASK_ID",
    "MULTITASK_NAMES",
    "SINGLE_TASK_IDS",
    "TASK_IDS",
    "TASK_NAMES",
    "TabletopEnv",
]
