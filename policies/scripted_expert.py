"""Scripted experts for every tabletop task, using privileged simulator state.

Each task's expert is a closed-loop controller over the tcp position: it re-reads the target
and destination every step, so after a perturbation (``noise``, a slipped grasp, a sphere that
rolled past the pad) it simply heads for the right place again. That is what makes the
noise-injected demonstrations show recoveries (as in DART, Laskey et al. 2017).

Controllers are registered per task name (:func:`controls`): a new task adds its controller
beside its other code, ``@controls("stack") def stack(expert, view): ...``, and the expert runs
it whenever ``privileged["task"]`` names that task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from envs import TASK_NAMES, keys
from envs.palette import HALF_SIZE

HOVER_Z = 0.1  # tcp height for travelling above objects (tops at 4.4 cm)
GRASP_Z = 0.02  # tcp height that puts the finger pads around an object's upper half
LIFT_Z = 0.15
CARRY_Z = 0.12
# fingers stopped between these openings = an object is between them (a cube held across its
# diagonal is 6.2 cm wide; empty fingers close to 2 mm)
OPENING_HELD = (0.015, 0.07)
ALIGNED = 0.01  # xy distance that counts as "over" a point
PUSH_Z = 0.01  # push low (fingertips 3 mm above the table) so objects slide rather than tip
PUSH_OFFSET = HALF_SIZE + 0.038  # tcp stands this far behind an object's centre to push it


@dataclass(frozen=True)
class ExpertView:
    """What a controller reads each step (privileged simulator state, float64)."""

    tcp: np.ndarray  # (3,) tool centre point
    opening: float  # gripper opening in metres
    target: np.ndarray  # (3,) centre of the object the instruction refers to
    place: np.ndarray  # (3,) centre of the destination (pad / bowl); zeros when none
    place_kind: int  # 0 none, 1 pad, 2 bowl


Controller = Callable[["ScriptedExpert", ExpertView], tuple[np.ndarray, float]]
CONTROLLERS: dict[str, Controller] = {}  # task name -> its controller: (tcp goal (3,), grip)


def controls(*tasks: str) -> Callable[[Controller], Controller]:
    """Register the decorated function as the scripted expert's controller of ``tasks``."""

    def register(controller: Controller) -> Controller:
        for task in tasks:
            if task in CONTROLLERS:
                raise ValueError(
                    f"task {task!r} already has an expert controller "
                    f"({CONTROLLERS[task].__name__}): register each task once"
                )
            CONTROLLERS[task] = controller
        return controller

    return register


class ScriptedExpert:
    """The expert for whichever task the env is running (read from ``privileged``).

    Args:
        max_delta: the env's metres per unit action (to turn position errors into actions).
        noise: std of Gaussian noise added to every action dimension (then clipped to [-1, 1]).
        seed: seed of the noise stream.
    """

    needs_privileged = True  # evaluators make the env with privileged=True for it

    def __init__(self, max_delta: float = 0.03, noise: float = 0.0, seed: int | None = None):
        if max_delta <= 0:
            raise ValueError(f"max_delta={max_delta} must be > 0 (the env's max_delta)")
        if noise < 0:
            raise ValueError(f"noise={noise} must be >= 0 (std of the action noise)")
        self.max_delta, self.noise = max_delta, noise
        self.rng = np.random.default_rng(seed)
        self.reset()

    @classmethod
    def for_env(cls, env, noise: float = 0.0, seed: int | None = None) -> ScriptedExpert:
        """The expert ``vla-collect`` makes for ``env`` (a tabletop env: its ``max_delta``)."""
        return cls(max_delta=env.unwrapped.max_delta, noise=noise, seed=seed)

    def reset(self) -> None:
        self.closing = 0  # control steps the gripper has been closing on the target

    def act(self, obs: dict) -> np.ndarray:
        if keys.PRIVILEGED not in obs:
            raise ValueError(
                "the scripted expert needs simulator state: make the env with privileged=True"
            )
        p = obs[keys.PRIVILEGED]
        task = TASK_NAMES[int(p[keys.TASK_INDEX])]
        if task not in CONTROLLERS:
            raise ValueError(
                f"no scripted expert for task {task!r} (experts: {sorted(CONTROLLERS)}): "
                f"register its controller with @controls({task!r}) (policies.scripted_expert)"
            )
        state = np.asarray(obs[keys.STATE], dtype=np.float64)
        view = ExpertView(
            tcp=state[:3],
            opening=float(state[6]),
            target=np.asarray(p[keys.TARGET_POS], dtype=np.float64),
            place=np.asarray(p[keys.PLACE_POS], dtype=np.float64),
            place_kind=int(p[keys.PLACE_KIND]),
        )
        if int(p.get(keys.HOLD, 0)):  # the env ignores actions while a memory cue plays
            goal, grip = view.tcp, -1.0  # label what happens: stay put, fingers open
        else:
            goal, grip = CONTROLLERS[task](self, view)
        action = np.append(np.clip((goal - view.tcp) / self.max_delta, -1, 1), grip)
        # DART: the env runs the perturbed action, but the label a learner should copy is the
        # expert's own (``clean_action``), otherwise the noise is baked into the targets
        self.clean_action = action.astype(np.float32)
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, size=4)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def act_chunk(self, obs: dict) -> np.ndarray:
        return self.act(obs)[None]  # (1, 4): a closed-loop expert plans one step at a time

    def grasp(self, v: ExpertView) -> tuple[np.ndarray | None, float, bool]:
        """Approach open, descend, close on the target; returns (goal, grip, held)."""
        tcp, target = v.tcp, v.target
        near = _xy_dist(tcp, target) < 0.02 and abs(tcp[2] - target[2]) < 0.03
        if near and OPENING_HELD[0] < v.opening < OPENING_HELD[1] and self.closing >= 4:
            return None, 1.0, True
        if _xy_dist(tcp, target) > ALIGNED and not (near and self.closing):
            self.closing = 0
            return _at(target, HOVER_Z), -1.0, False
        if tcp[2] > GRASP_Z + 0.008 and not self.closing:
            return _at(target, GRASP_Z), -1.0, False
        self.closing += 1
        return _at(target, GRASP_Z), 1.0, False


# ---- per-task controllers: each returns (tcp goal (3,), gripper command) ----------------


@controls("touch", "relation", "recall")
def touch(expert: ScriptedExpert, v: ExpertView) -> tuple[np.ndarray, float]:
    tcp, target = v.tcp, v.target
    if _xy_dist(tcp, target) > ALIGNED:
        return _at(target, max(HOVER_Z, tcp[2] if tcp[2] < LIFT_Z else HOVER_Z)), 1.0
    return _at(target, 2 * HALF_SIZE - 0.015), 1.0  # press the closed fingertips on its top


@controls("lift")
def lift(expert: ScriptedExpert, v: ExpertView) -> tuple[np.ndarray, float]:
    goal, grip, held = expert.grasp(v)
    if not held:
        return goal, grip
    return _at(v.tcp, LIFT_Z), 1.0


@controls("push")
def push(expert: ScriptedExpert, v: ExpertView) -> tuple[np.ndarray, float]:
    tcp, target, place = v.tcp, v.target, v.place
    to_goal = place[:2] - target[:2]  # (2,)
    dist = float(np.linalg.norm(to_goal))
    u = to_goal / max(dist, 1e-6)  # push direction (2,)
    rel = tcp[:2] - target[:2]  # (2,)
    along, lateral = float(rel @ u), abs(float(rel @ np.array([-u[1], u[0]])))
    behind = target[:2] - u * PUSH_OFFSET  # (2,)
    if lateral < 0.02 and -PUSH_OFFSET - 0.02 < along < 0 and tcp[2] < 0.04:
        # push by velocity, not by a point relative to the object: contact offsets vary.
        # Slow down near the pad so spheres do not roll past; steer out lateral error.
        side = np.array([-u[1], u[0]]) * float(rel @ np.array([-u[1], u[0]]))  # (2,)
        step = u * min(dist, 0.6 * expert.max_delta) - side
        return np.array([*(tcp[:2] + step), PUSH_Z]), 1.0
    off = float(np.linalg.norm(tcp[:2] - behind))
    low = tcp[2] < HOVER_Z - 0.03
    # hysteresis: start descending only when well aligned, keep descending while roughly
    # aligned, so an object rocking by a few mm does not cause a rise-descend loop
    if off < (0.02 if low else ALIGNED / 2):
        return np.array([*behind, PUSH_Z]), 1.0
    if low and np.linalg.norm(rel) < 0.08:
        return np.array([*tcp[:2], HOVER_Z]), 1.0  # rise before going around the object
    return np.array([*behind, HOVER_Z]), 1.0


@controls("pick_place")
def pick_place(expert: ScriptedExpert, v: ExpertView) -> tuple[np.ndarray, float]:
    tcp, target, place = v.tcp, v.target, v.place
    released = v.opening > OPENING_HELD[1] or tcp[2] > target[2] + 0.03
    if _xy_dist(target, place) < 0.02 and target[2] < 0.06 and released:
        expert.closing = 0
        return _at(place, HOVER_Z), -1.0  # released: back off upwards, open
    goal, grip, held = expert.grasp(v)
    if not held:
        return goal, grip
    release_z = 0.055 if v.place_kind == 2 else 0.04
    if _xy_dist(tcp, place) > ALIGNED:
        if tcp[2] < CARRY_Z - 0.03 and _xy_dist(tcp, place) > 0.03:
            return _at(tcp, CARRY_Z), 1.0  # straight up first: do not drag it through others
        return _at(place, CARRY_Z), 1.0
    if tcp[2] > release_z + 0.005:
        return _at(place, release_z), 1.0
    return _at(place, release_z), -1.0


def _xy_dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a[:2] - b[:2]))


def _at(xy: np.ndarray, z: float) -> np.ndarray:
    return np.array([xy[0], xy[1], z])
