"""Observation and ``info`` keys: the one place their names are spelled (envs know nothing of
``vla``; ``vla.keys`` spells the same observation names for the learning side)."""

IMAGE = "image"  # (H, W, 3) uint8 from the first camera in ``cameras``
STATE = "state"  # (7,) float32: tcp xyz, tcp velocity xyz, gripper opening (m)
INSTRUCTION = "instruction"  # str
PRIVILEGED = "privileged"  # dict, only with ``privileged=True``: simulator truth for experts

# inside PRIVILEGED
TASK_INDEX = "task"  # int index into envs.TASK_NAMES
TARGET_POS = "target_pos"  # (3,) centre of the object the instruction refers to
PLACE_POS = "place_pos"  # (3,) centre of the destination (pad / bowl); zeros when none
PLACE_KIND = "place_kind"  # 0 none, 1 pad, 2 bowl
HOLD = "hold"  # 1 while the env ignores actions (a memory task's watch phase), else 0
TASK_NAME = "task_name"  # str: the task's name, for experts that have one policy per task
SIM_OBS = "sim_obs"  # (39,) Meta-World's own observation, goal included (envs.metaworld_env)

# info, every step
SUCCESS = "success"  # bool: the task is done (the episode terminates)
FAILURE = "failure"  # bool: the episode failed for good (e.g. touched the wrong object first)
TASK = "task"  # str: the task's name (envs.TASK_NAMES)
TOUCHED = "touched"  # list[str]: "<colour> <shape>" of each object the gripper touches now
REWARD_PREFIX = "reward_"  # reward_<term>: float shaping terms, their sum is the reward
# info at reset only
INFO_INSTRUCTION = INSTRUCTION  # str: the episode's instruction
SPLIT = "split"  # str: the scene split ("train" / "test")
TARGET = "target"  # str: "<colour> <shape>" of the object the instruction names
N_OBJECTS = "n_objects"  # int: objects on the table
QUESTION = "question"  # str: a question about the episode (tasks that ask one, e.g. recall)
ANSWER = "answer"  # str: its answer

STATE_NAMES = ("tcp_x", "tcp_y", "tcp_z", "tcp_vx", "tcp_vy", "tcp_vz", "gripper_opening")


def image_key(camera: str, cameras: tuple[str, ...]) -> str:
    """Observation key of ``camera``: ``image`` for the first camera, ``image_<name>`` after."""
    return IMAGE if camera == cameras[0] else f"{IMAGE}_{camera}"
