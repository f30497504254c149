"""Observation keys: the one place their names are spelled (envs know nothing of ``vla``)."""

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

STATE_NAMES = ("tcp_x", "tcp_y", "tcp_z", "tcp_vx", "tcp_vy", "tcp_vz", "gripper_opening")


def image_key(camera: str, cameras: tuple[str, ...]) -> str:
    """Observation key of ``camera``: ``image`` for the first camera, ``image_<name>`` after."""
    return IMAGE if camera == cameras[0] else f"{IMAGE}_{camera}"
