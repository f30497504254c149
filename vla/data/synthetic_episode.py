"""Synthetic pick-and-place episodes that look and compress like rendered tabletop frames.

For benchmarks, tests and trying the loader without a simulator. Not pure noise (which no
compressor shrinks and no camera produces): each episode has a smooth table (a bilinear blend
of a 4x4 grid of random colours) with a faint static wood-grain texture, three antialiased
coloured blocks, and a grey gripper disc that moves along a smoothstep path to one block, closes,
and carries it to a goal. A fixed camera sees mostly static pixels between frames, like MuJoCo
renders; the optional wrist camera is a moving crop around the gripper, so it changes every frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vla import keys

COLORS = {
    "red": (200, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 210),
    "yellow": (220, 200, 40),
}


def _table(rng: np.random.Generator, size: int) -> np.ndarray:
    grid = rng.uniform(70, 190, (4, 4, 3))  # (4, 4, 3) corner colours
    t = np.linspace(0, 3, size)
    i0 = np.minimum(t.astype(int), 2)
    f = t - i0
    rows = grid[i0] * (1 - f)[:, None, None] + grid[i0 + 1] * f[:, None, None]  # (size, 4, 3)
    table = rows[:, i0] * (1 - f)[None, :, None] + rows[:, i0 + 1] * f[None, :, None]  # (S, S, 3)
    yy, xx = np.mgrid[0:size, 0:size] / size  # (S, S) each
    grain = 6 * np.sin(2 * np.pi * (rng.uniform(8, 20) * yy + 2 * np.sin(3 * xx)))  # (S, S)
    return table + grain[..., None]  # (S, S, 3)


def _disc(img: np.ndarray, yy: np.ndarray, xx: np.ndarray, center, radius, color) -> None:
    dist = np.hypot(yy - center[0], xx - center[1])  # (S, S)
    alpha = np.clip(radius - dist + 0.5, 0.0, 1.0)[..., None]  # (S, S, 1) antialiased edge
    img *= 1 - alpha
    img += alpha * np.asarray(color, dtype=np.float32)


def synthetic_episode(
    rng: np.random.Generator,
    length: int = 100,
    image_size: int = 96,
    cameras: Sequence[str] = (keys.IMAGE,),
) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """One episode ``({image keys, state (L, 7), action (L, 4)}, meta)`` for EpisodeWriter.

    ``cameras`` are store keys: ``image`` is the fixed view, any other (``image_wrist``) a
    crop that follows the gripper.
    """
    if length < 2 or image_size < 16:
        raise ValueError(f"length={length} must be >= 2 and image_size={image_size} >= 16")
    s = float(image_size)
    names = rng.choice(list(COLORS), size=3, replace=False)
    blocks = rng.uniform(0.2 * s, 0.8 * s, (3, 2))  # (3, 2) pixel centres
    goal = rng.uniform(0.2 * s, 0.8 * s, 2)  # (2,)
    start = rng.uniform(0.1 * s, 0.9 * s, 2)  # (2,)
    grasp = length // 2
    u = np.clip(np.arange(length) / max(1, grasp - 1), 0, 1)  # (L,) reach phase
    v = np.clip((np.arange(length) - grasp) / max(1, length - grasp - 1), 0, 1)  # (L,) carry phase
    reach = (u * u * (3 - 2 * u))[:, None]  # (L, 1) smoothstep
    carry = (v * v * (3 - 2 * v))[:, None]  # (L, 1)
    xy = np.where(
        np.arange(length)[:, None] < grasp,
        start + (blocks[0] - start) * reach,
        blocks[0] + (goal - blocks[0]) * carry,
    )  # (L, 2)
    z = 0.1 + 0.1 * np.sin(np.pi * np.arange(length) / (length - 1))  # (L,) lift between grasps
    closed = (np.arange(length) >= grasp).astype(np.float32)  # (L,)

    table = _table(rng, image_size).astype(np.float32)  # (S, S, 3)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32)  # (S, S) each
    frames = np.empty((length, image_size, image_size, 3), np.uint8)  # (L, S, S, 3)
    for t in range(length):
        img = table.copy()  # (S, S, 3)
        held = blocks[0] if t < grasp else xy[t]
        for k in range(3):
            _disc(img, yy, xx, held if k == 0 else blocks[k], 0.07 * s, COLORS[names[k]])
        _disc(img, yy, xx, xy[t], 0.05 * s * (1.4 - 0.4 * closed[t]), (60, 60, 66))
        frames[t] = np.clip(img, 0, 255)
    episode: dict[str, np.ndarray] = {}
    for camera in cameras:
        if camera == keys.IMAGE:
            episode[camera] = frames
            continue
        half = image_size // 4  # wrist view: 2x zoom around the gripper
        idx = np.arange(-half, half).repeat(2)  # (S,) nearest-neighbour upsampling
        rows = np.clip(xy[:, :1].astype(int) + idx, 0, image_size - 1)  # (L, S)
        cols = np.clip(xy[:, 1:].astype(int) + idx, 0, image_size - 1)  # (L, S)
        episode[camera] = frames[
            np.arange(length)[:, None, None], rows[:, :, None], cols[:, None, :]
        ]  # (L, S, S, 3)

    pos = np.concatenate([xy / s, z[:, None]], axis=1).astype(np.float32)  # (L, 3) normalized
    vel = np.gradient(pos, axis=0) * 10.0  # (L, 3) per second at 10 Hz
    state = np.concatenate([pos, vel, 0.04 * (1 - closed)[:, None]], axis=1)  # (L, 7)
    move = np.clip(np.diff(pos, axis=0, append=pos[-1:]) * 20.0, -1, 1)  # (L, 3)
    action = np.concatenate([move, 2 * closed[:, None] - 1], axis=1)  # (L, 4) in [-1, 1]
    episode[keys.STATE] = state.astype(np.float32)
    episode[keys.ACTION] = action.astype(np.float32)
    meta = {
        keys.INSTRUCTION: f"put the {names[0]} block on the goal",
        keys.TASK: "synthetic/PickPlace-v0",
        keys.SUCCESS: True,
    }
    return episode, meta
