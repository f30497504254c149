"""Meta-World v3 tasks in this package's observation format (optional: ``pip install vla[metaworld]``).

    import gymnasium as gym, envs
    env = gym.make("vla/MetaWorld-MT10-v0", image_size=96, cameras=("corner", "topview"))

Meta-World (Yu et al. 2019; Farama's v3) is a public MuJoCo benchmark of 50 Sawyer manipulation
tasks with a scripted expert each. This wrapper gives them what the tabletop envs give:

- ``image`` (the first camera) and ``image_<camera>`` (the others): ``(S, S, 3)`` uint8, upright
  (the ``corner*`` cameras are mounted upside down: their frames are turned 180 degrees);
- ``state`` ``(4,)`` float32: hand xyz and the gripper's finger distance (Meta-World's own first
  four observation entries, what a real arm reports); the goal is *not* in it: a policy must see
  it (reach's, push's and pick-and-place's goal marker);
- ``instruction``: a sentence naming the task, from the split's wordings (``test``: held out);
- ``privileged`` (``privileged=True``, for the scripted experts only): Meta-World's full
  39-d observation, goal included;
- ``info["success"]`` every step; the episode ends at success or after ``max_episode_steps``
  (200: the evaluation length SmolVLA and LeRobot report MT10/MT50 at). ``steps_after_success=K``
  ends it K steps after the first success instead: a collected demonstration then shows the
  expert settling at the goal, not only arriving within the success radius of it.

Layouts are seeded: ``reset(seed=s)`` draws object and goal positions from ``s`` (Meta-World's own
``reset`` ignores its seed; here the task's random vector comes from the env's ``np_random``).
A multi-task env (``tasks=[...]``) runs task ``seed mod n`` of its ``n`` tasks (unseeded resets
count on from the last seed), so any ``n`` consecutive seeds hold every task once: a store of
``50 n`` episodes has exactly 50 of each.

Needs ``metaworld`` (which pins ``mujoco`` 3.3.x: ``make metaworld-deps`` installs it in its own
venv); this module imports it only when an env is made.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs import keys
from envs.palette import SPLITS, check_choice, check_views

# MT10 (Meta-World's multi-task benchmark of 10 tasks), in Meta-World's order
MT10 = (
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "drawer-open-v3",
    "drawer-close-v3",
    "button-press-topdown-v3",
    "peg-insert-side-v3",
    "window-open-v3",
    "window-close-v3",
)
# per task: training wordings, then held-out ones (split=test). Every MT10 task's scene differs,
# so the wording is not needed to tell them apart; the test split checks that a policy is not
# thrown by words it never read
INSTRUCTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "reach-v3": (
        ("reach the goal", "move the gripper to the target"),
        ("bring the hand to the goal",),
    ),
    "push-v3": (
        ("push the puck to the goal", "slide the puck to the target"),
        ("shove the puck onto the goal",),
    ),
    "pick-place-v3": (
        ("pick up the puck and place it at the goal", "put the puck on the target"),
        ("grab the puck and move it to the goal",),
    ),
    "door-open-v3": (("open the door", "pull the door open"), ("swing the door open",)),
    "drawer-open-v3": (("open the drawer", "pull the drawer out"), ("slide the drawer open",)),
    "drawer-close-v3": (("close the drawer", "push the drawer shut"), ("slide the drawer closed",)),
    "button-press-topdown-v3": (
        ("press the button from above", "push the button down"),
        ("press down on the button",),
    ),
    "peg-insert-side-v3": (
        ("insert the peg into the hole", "put the peg in the hole from the side"),
        ("slide the peg into the hole",),
    ),
    "window-open-v3": (("open the window", "slide the window open"), ("push the window open",)),
    "window-close-v3": (
        ("close the window", "slide the window shut"),
        ("push the window closed",),
    ),
}
CAMERAS = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")
UPSIDE_DOWN = frozenset({"corner", "corner2", "corner3", "corner4"})  # turned 180 degrees
# Viewpoints of our own: free cameras (MuJoCo's ``mjvCamera``) aimed at ``lookat`` (world metres)
# from ``distance`` metres at ``azimuth`` / ``elevation`` degrees (azimuth 0 looks along +x, 90
# along +y; negative elevation looks down), drawn with the model's field of view (45 degrees).
# Meta-World's own cameras frame the whole table, where a goal marker is 1-2 px at 96 px;
# ``side`` frames the space in front of the arm where MT10's goals and objects lie (x -0.3..0.3,
# y 0.4..0.95, z 0..0.35) from the robot's right, level with it: height and depth along the
# table, which the top view cannot show. Add others with ``viewpoints={name: {...}}``.
VIEWPOINTS: dict[str, dict[str, Any]] = {
    "side": {"lookat": (0.0, 0.7, 0.15), "distance": 0.85, "azimuth": 180.0, "elevation": -15.0},
}
VIEWPOINT_KEYS = ("lookat", "distance", "azimuth", "elevation")
STATE_NAMES = ("hand_x", "hand_y", "hand_z", "gripper_distance")
SIM_OBS_DIM = 39  # Meta-World's observation with the goal (the experts' input)
SIM_HAND, SIM_GOAL = slice(0, 3), slice(36, 39)  # in it: the hand's x, y, z; the goal (last 3)
CHARSET = string.ascii_letters + string.digits + " -"


def _check_viewpoints(viewpoints: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Free cameras given as ``{name: {lookat, distance, azimuth, elevation}}``, checked."""
    out = {}
    for name, view in dict(viewpoints).items():
        if name in CAMERAS:
            raise ValueError(f"viewpoint {name!r} would hide Meta-World's camera of that name")
        view = dict(view)
        if sorted(view) != sorted(VIEWPOINT_KEYS):
            raise ValueError(
                f"viewpoint {name!r} has keys {sorted(view)}; it needs exactly "
                f"{list(VIEWPOINT_KEYS)} (lookat: 3 floats in metres, distance > 0 in metres, "
                "azimuth and elevation in degrees)"
            )
        lookat = np.asarray(list(view["lookat"]), dtype=np.float64)
        numbers = [float(view[k]) for k in ("distance", "azimuth", "elevation")]
        if lookat.shape != (3,) or not np.all(np.isfinite([*lookat, *numbers])):
            raise ValueError(f"viewpoint {name!r}: lookat must be 3 finite floats, got {view}")
        if numbers[0] <= 0:
            raise ValueError(f"viewpoint {name!r}: distance must be > 0, got {numbers[0]}")
        out[name] = dict(zip(VIEWPOINT_KEYS, (tuple(lookat), *numbers), strict=True))
    return out


def _free_camera(view: Mapping[str, Any]) -> mujoco.MjvCamera:
    """MuJoCo's free camera posed as a checked viewpoint says."""
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.lookat[:] = view["lookat"]
    cam.distance, cam.azimuth, cam.elevation = view["distance"], view["azimuth"], view["elevation"]
    return cam


def _metaworld():
    try:
        import metaworld.env_dict
    except ImportError as err:  # the optional extra
        raise ImportError(
            "Meta-World envs need the `metaworld` package (it pins mujoco 3.3.x): run "
            "`make metaworld-deps` (its own venv, .venv-metaworld) or "
            "`pip install 'vla[metaworld]' -c constraints-metaworld.txt`"
        ) from err
    return metaworld.env_dict


class MetaWorldEnv(gym.Env):
    """One or several Meta-World v3 tasks with image + proprio observations and a sentence.

    Args:
        tasks: Meta-World v3 task name(s) (``reach-v3``, ...; default MT10). With several, the
            episode with seed ``s`` runs task ``s mod n`` (``options={"task": name}`` picks one).
        split: ``train`` or ``test`` (held-out wordings).
        image_size: square camera resolution in pixels (16..512).
        cameras: cameras to observe (``CAMERAS`` or a viewpoint's name); the first is ``image``,
            the others ``image_<name>``.
        viewpoints: free cameras of your own, ``{name: {lookat, distance, azimuth, elevation}}``,
            beside (or replacing) the built-in ``VIEWPOINTS``.
        privileged: add Meta-World's full observation (goal included) for the scripted experts.
        max_episode_steps: the episode is truncated after this many steps (ends at success).
        steps_after_success: the episode ends this many steps after its first success (0: at
            it). For collection: the expert's last steps converge on the goal (Meta-World's
            experts are proportional controllers), so the data shows where to stop, not only
            the way to the success radius's edge.
        render_size: resolution of ``render()`` frames (videos), from ``render_camera``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}  # Meta-World: 5 x 2.5 ms steps

    def __init__(
        self,
        tasks: str | Sequence[str] = MT10,
        split: str = "train",
        image_size: int = 64,
        cameras: Sequence[str] = ("corner",),
        privileged: bool = False,
        max_episode_steps: int = 200,
        steps_after_success: int = 0,
        render_mode: str | None = None,
        render_size: int = 256,
        render_camera: str = "corner",
        viewpoints: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        names = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        known = _metaworld().ALL_V3_ENVIRONMENTS
        if not names:
            raise ValueError(
                f"tasks=() is empty; choose from MT10 {list(MT10)} or {len(known)} more"
            )
        for name in names:
            if name not in known:
                raise ValueError(
                    f"task {name!r} is not a Meta-World v3 task: choose from {list(known)}"
                )
            if name not in INSTRUCTIONS:
                raise ValueError(
                    f"task {name!r} has no instructions yet: add its wordings to "
                    "envs.metaworld_env.INSTRUCTIONS"
                )
        self._names = names
        self.split = check_choice("split", split, SPLITS)
        views = {**VIEWPOINTS, **_check_viewpoints(viewpoints or {})}
        self._free_cameras = {name: _free_camera(view) for name, view in views.items()}
        choices = (*CAMERAS, *views)
        self.cameras = check_views(cameras, choices, image_size, render_size)
        self.render_camera = check_choice("render_camera", render_camera, choices)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r}; choose None or 'rgb_array'")
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps={max_episode_steps} must be >= 1")
        if steps_after_success < 0:
            raise ValueError(f"steps_after_success={steps_after_success} must be >= 0")
        self.steps_after_success = steps_after_success
        self.render_mode, self.image_size, self.render_size = render_mode, image_size, render_size
        self.privileged, self.max_episode_steps = privileged, max_episode_steps
        self.state_names = STATE_NAMES
        self._envs: dict[str, Any] = {}  # task name -> its Meta-World env, made on first use
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}  # (task env id, size)
        self.task = names[0]
        self._sim: Any = None
        self._sim_obs = np.zeros(SIM_OBS_DIM)
        self._instruction, self._steps, self._episode = "", 0, -1
        self._succeeded_at: int | None = None  # the episode's first successful step
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = self._observation_space()
        self.dt = 1.0 / self.metadata["render_fps"]

    @property
    def task_names(self) -> tuple[str, ...]:
        """The tasks this env draws from (``tasks=[name]`` makes an env of one of them)."""
        return self._names

    def _observation_space(self) -> spaces.Dict:
        img = spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)
        obs: dict[str, spaces.Space] = {keys.image_key(c, self.cameras): img for c in self.cameras}
        obs[keys.STATE] = spaces.Box(-10.0, 10.0, (len(STATE_NAMES),), np.float32)
        obs[keys.INSTRUCTION] = spaces.Text(200, min_length=1, charset=CHARSET)
        if self.privileged:
            obs[keys.PRIVILEGED] = spaces.Dict(
                {
                    keys.TASK_NAME: spaces.Text(64, min_length=1, charset=CHARSET),
                    keys.SIM_OBS: spaces.Box(-10.0, 10.0, (SIM_OBS_DIM,), np.float64),
                }
            )
        return spaces.Dict(obs)

    def _task_env(self, name: str) -> Any:
        """Meta-World's env of ``name``, set up once: goal in its observation (for the expert),
        layouts drawn from its ``np_random``, no time limit of its own, no shadows (~10x faster
        rendering here)."""
        if name not in self._envs:
            sim = _metaworld().ALL_V3_ENVIRONMENTS[name]()
            sim._partially_observable = False  # the 39-d observation carries the goal
            if "sawyer_observation_space" in vars(sim):  # a cached property: recompute it
                del sim.sawyer_observation_space
            sim._set_task_called = True
            sim._freeze_rand_vec, sim.seeded_rand_vec = False, True
            sim.max_path_length = 10**9  # this wrapper truncates
            sim.model.vis.quality.shadowsize = 0
            sim.model.vis.quality.offsamples = 0  # no multisampling: shadows and it cost ~40x
            self._envs[name] = sim
        return self._envs[name]

    # ---- gymnasium API -------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        self._episode = seed if seed is not None else self._episode + 1
        if "task" in options:
            self.task = check_choice("options['task']", options["task"], self._names)
        else:  # balanced: every n consecutive seeds run each task once
            self.task = self._names[self._episode % len(self._names)]
        self._sim = self._task_env(self.task)
        # Meta-World ignores reset's seed: its layout comes from the env's own generator, which
        # is seeded here from this env's, so the same seed gives the same scene
        self._sim.seed(int(self.np_random.integers(2**31 - 1)))
        self._sim_obs, _ = self._sim.reset()
        # Meta-World moves the goal marker to the episode's goal only in step(): until then it
        # is drawn where the XML puts it, the same in every episode (seen: the first frame's
        # marker jumped at step 1). Place it now so the first frame shows this episode's goal
        for site in self._sim._target_site_config:
            self._sim._set_pos_site(*site)
        wordings = INSTRUCTIONS[self.task][SPLITS.index(self.split)]
        self._instruction = wordings[int(self.np_random.integers(len(wordings)))]
        self._steps, self._succeeded_at = 0, None
        info = {
            keys.INFO_INSTRUCTION: self._instruction,
            keys.TASK: self.task,
            keys.SPLIT: self.split,
            keys.SUCCESS: False,
        }
        return self._get_obs(), info

    def step(self, action):
        act = np.asarray(action, dtype=np.float32)
        if act.shape != (4,) or not np.all(np.isfinite(act)):
            raise ValueError(f"action must be 4 finite floats, got {act!r}")
        act = np.clip(act, -1.0, 1.0)
        self._sim_obs, reward, _, _, sim_info = self._sim.step(act)
        self._steps += 1
        success = bool(sim_info.get("success", False))
        if success and self._succeeded_at is None:
            self._succeeded_at = self._steps
        terminated = (
            self._succeeded_at is not None
            and self._steps - self._succeeded_at >= self.steps_after_success
        )
        truncated = not terminated and self._steps >= self.max_episode_steps
        info = {keys.SUCCESS: success, keys.TASK: self.task}
        for k, v in sim_info.items():  # Meta-World's reward terms (near_object, grasp_reward, ..)
            if k != "success" and np.isscalar(v):
                info[keys.REWARD_PREFIX + k] = float(v)
        return self._get_obs(), float(reward), terminated, truncated, info

    def _get_obs(self) -> dict:
        o = self._sim_obs
        obs: dict[str, Any] = {
            keys.image_key(c, self.cameras): self._picture(c, self.image_size) for c in self.cameras
        }
        obs[keys.STATE] = np.asarray(o[:4], dtype=np.float32)  # hand xyz, finger distance
        obs[keys.INSTRUCTION] = self._instruction
        if self.privileged:
            obs[keys.PRIVILEGED] = {
                keys.TASK_NAME: self.task,
                keys.SIM_OBS: np.asarray(o, dtype=np.float64),
            }
        return obs

    def _picture(self, camera: str, size: int) -> np.ndarray:
        key = (id(self._sim), size)
        if key not in self._renderers:  # owned here and freed in close() (never by the GC)
            self._renderers[key] = mujoco.Renderer(self._sim.model, size, size)
        r = self._renderers[key]
        r.update_scene(self._sim.data, camera=self._free_cameras.get(camera, camera))
        frame = r.render()  # (S, S, 3) uint8
        return np.ascontiguousarray(frame[::-1, ::-1]) if camera in UPSIDE_DOWN else frame.copy()

    def render(self):
        if self.render_mode != "rgb_array" or self._sim is None:
            return None
        return self._picture(self.render_camera, self.render_size)

    def close(self):
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
        for sim in self._envs.values():
            sim.close()
        self._envs.clear()
        self._sim = None
        super().close()
