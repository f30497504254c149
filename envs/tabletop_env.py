"""The tabletop env every task runs in: a mocap-driven two-finger gripper over a table.

Why a mocap gripper rather than an arm with IK: the policy's action is an end-effector delta
either way (as in RT-2 / OpenVLA's EE-delta action spaces); a welded mocap body gives exact,
fast, singularity-free EE control at ~10 us per physics step, and real friction grasps still
happen between the fingers and the objects (no attachment tricks). Meta-World and robosuite's
"mocap" controllers use the same construction.

Action ``Box(-1, 1, (4,))``: dx, dy, dz scaled by ``max_delta`` metres per control step, and
the gripper command (-1 fully open ... +1 closed; a position target for both fingers).
Control runs at 10 Hz with 50 physics substeps of 2 ms. Contacts between the gripper and the
objects are read every 5 substeps (10 ms), so a touch that knocks a ball away within a control
step still counts (``SceneView.contacted``; grasps are judged on the contacts at the step's end).
"""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from pathlib import Path

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

from envs import keys
from envs.palette import COLOURS, SHAPES, SPLITS, check_choice, check_views
from envs.tabletop_scene import TabletopScene
from envs.tasks import TASKS, EpisodeSpec, SceneView, Task
from envs.tasks.base import PlacementError

# Mesa's llvmpipe (the software OpenGL behind MUJOCO_GL=egl / osmesa without a GPU) hands every
# frame to rasterizer threads; LP_NUM_THREADS=0 draws in the calling thread. Read when the first
# GL context is made (the first render), so setting it here is in time. Measured on this
# project's 2-core VM: a 64 px camera view takes 0.91 ms instead of 1.46 ms, with the same pixels,
# and rendering no longer competes with training threads for the cores (rollout callback).
os.environ.setdefault("LP_NUM_THREADS", "0")

LAYOUT_ATTEMPTS = 20  # draws of a scene before a crowded layout is an error

ASSET = Path(__file__).parent / "assets" / "tabletop.xml"
CAMERAS = ("front", "top", "wrist")
TASK_NAMES = tuple(TASKS)  # privileged["task"] indexes this
FRAME_SKIP = 50  # 50 x 2 ms = 10 Hz control
# substeps between two reads of the gripper's contacts within a control step: a ball the fingers
# hit mid-step can roll away before the step ends (it did, 12-50 cm, in touch rollouts), and a
# touch is a touch whenever it happens. Stepping 10 x 5 substeps is the same physics as 1 x 50.
CONTACT_SUBSTEPS = 5
TCP_OFFSET = np.array([0.0, 0.0, -0.065])  # tcp site relative to the hand body
FINGER_OPEN = 0.045  # finger joint travel (m), see tabletop.xml
FINGER_CLOSED = -0.015  # position target of a closed gripper: past the limit, for preload
TCP_LOW = np.array([-0.3, -0.24, 0.008])  # tcp workspace: fingertips stay above the table
TCP_HIGH = np.array([0.3, 0.24, 0.3])
LEASH = 0.05  # the mocap target never runs further than this ahead of the real hand
INSTRUCTION_CHARSET = string.ascii_letters + string.digits + " ,.:;'-?!"
VEL_LIMIT = 5.0  # m/s; reported tcp velocity is clipped to the observation space
STATE_LIMIT = np.array([1, 1, 1, VEL_LIMIT, VEL_LIMIT, VEL_LIMIT, 0.2], np.float32)


class TabletopEnv(MujocoEnv):
    """One or more tabletop tasks (several -> one drawn per episode, for multi-task training).

    Args:
        tasks: task name(s) from ``envs.tasks.TASKS`` (touch, lift, push, pick_place, relation).
        split: ``train`` or ``test``: held-out target colour x shape combos and templates.
        image_size: square camera resolution in pixels (16..512).
        cameras: cameras to observe; the first is ``image``, others ``image_<name>``.
        privileged: add simulator truth under ``privileged`` (for scripted experts only).
        max_delta: metres the tcp moves per control step at action 1.
        render_size: resolution of ``render()`` frames (videos).
        render_camera: the camera ``render()`` films (``front``; ``top`` shows the recall
            task's cue, which the gripper hides from the front at the start).
        held_out_distractors: whether train-split scenes may show the test split's held-out
            colour x shape combos as distractors (never as targets; the default, as every store
            so far was collected). False keeps them out of train-split scenes altogether, so
            that training never shows a held-out combo as "not the one": the usual protocol of
            a compositional split. The test split is unchanged either way.
        single_attribute: share (0-1) of train-split episodes whose instruction names the target
            by its colour alone ("touch the red one") or its shape alone ("tap the cube"), half
            each, in a scene where no other object has that colour (shape) and one has the
            other attribute; the rest name both, as every test-split episode does. Training on
            them asks each word to find its objects on its own, whatever the other attribute;
            0 (the default) draws the scenes every store so far was collected with. Not for
            tasks that name their referent otherwise (relation, recall).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        tasks: str | Sequence[str] = "touch",
        split: str = "train",
        image_size: int = 96,
        cameras: Sequence[str] = ("front",),
        privileged: bool = False,
        max_delta: float = 0.03,
        render_mode: str | None = None,
        render_size: int = 256,
        render_camera: str = "front",
        held_out_distractors: bool = True,
        single_attribute: float = 0.0,
    ):
        names = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        if not names:
            raise ValueError(f"tasks=() is empty; choose from {list(TASKS)}")
        self.tasks: tuple[Task, ...] = tuple(TASKS[check_choice("task", t, TASKS)]() for t in names)
        for task in self.tasks:
            task.set_scene_options(held_out_distractors, single_attribute)
        self.split = check_choice("split", split, SPLITS)
        self.cameras = check_views(cameras, CAMERAS, image_size, render_size)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r}; choose None or 'rgb_array'")
        self.image_size, self.render_size = image_size, render_size
        self.render_camera = check_choice("render_camera", render_camera, CAMERAS)
        self.privileged, self.max_delta = privileged, max_delta
        size = max(image_size, render_size)
        super().__init__(
            str(ASSET), FRAME_SKIP, None, render_mode=render_mode, width=size, height=size
        )
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = self._observation_space()
        self._index_model()
        self._renderer: mujoco.Renderer | None = None
        self._video_renderer: mujoco.Renderer | None = None
        self.task: Task = self.tasks[0]
        self.spec_: EpisodeSpec | None = None
        self._options: dict = {}

    # ---- construction helpers ------------------------------------------------------------

    @property
    def task_names(self) -> tuple[str, ...]:
        """The tasks this env draws from (``tasks=[name]`` makes an env of one of them)."""
        return tuple(t.name for t in self.tasks)

    def _observation_space(self) -> spaces.Dict:
        img = spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)
        obs = {keys.image_key(c, self.cameras): img for c in self.cameras}
        obs[keys.STATE] = spaces.Box(-STATE_LIMIT, STATE_LIMIT, dtype=np.float32)
        obs[keys.INSTRUCTION] = spaces.Text(200, min_length=1, charset=INSTRUCTION_CHARSET)
        if self.privileged:
            vec = spaces.Box(-10.0, 10.0, (3,), np.float32)  # objects can fall off the table
            obs[keys.PRIVILEGED] = spaces.Dict(
                {
                    keys.TASK_INDEX: spaces.Discrete(len(TASK_NAMES)),
                    keys.TARGET_POS: vec,
                    keys.PLACE_POS: vec,
                    keys.PLACE_KIND: spaces.Discrete(3),
                    keys.HOLD: spaces.Discrete(2),
                }
            )
        return spaces.Dict(obs)

    def _index_model(self) -> None:
        m = self.model
        self.scene = TabletopScene(m)  # the objects, places and cue
        self._park_qpos = self.init_qpos.copy()
        self._hand_body = m.body("hand").id
        self._hand_qpos = m.jnt_qposadr[m.joint("hand").id]
        self._finger_qpos = [m.jnt_qposadr[m.joint(n).id] for n in ("finger_left", "finger_right")]
        self._tcp = m.site("tcp").id

    # ---- gymnasium API -------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """``options``: ``task`` (name, multi-task envs), ``target`` ((colour, shape))."""
        self._options = dict(options or {})
        if "task" in self._options:
            names = [t.name for t in self.tasks]
            check_choice("options['task']", self._options["task"], names)
        if "target" in self._options:
            colour, shape = self._options["target"]
            check_choice("colour", colour, COLOURS)
            check_choice("shape", shape, SHAPES)
        return super().reset(seed=seed, options=options)

    def _sample_layout(self, rng: np.random.Generator) -> EpisodeSpec:
        """The task's scene for this episode. A crowded draw (rejection sampling found no free
        spot, rare: pads, bowl and up to 6 objects) is drawn again from the same generator, so
        every seed resets, reproducibly, and seeds whose first draw fits keep their scene."""
        for _ in range(LAYOUT_ATTEMPTS - 1):
            try:
                return self.task.sample(rng, self.split, self._options.get("target"))
            except PlacementError:
                continue
        return self.task.sample(rng, self.split, self._options.get("target"))

    def reset_model(self):
        rng = self.np_random
        if "task" in self._options:
            self.task = next(t for t in self.tasks if t.name == self._options["task"])
        else:
            self.task = self.tasks[int(rng.integers(len(self.tasks)))]
        self.spec_ = spec = self._sample_layout(rng)
        qpos = self._park_qpos.copy()
        self.scene.layout(self.model, spec, qpos, cue=bool(self.task.cue_steps))
        tcp = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.16, -0.1), rng.uniform(0.14, 0.2)])
        qpos[self._hand_qpos : self._hand_qpos + 7] = [*(tcp - TCP_OFFSET), 1, 0, 0, 0]
        qpos[self._finger_qpos] = FINGER_OPEN
        self.data.mocap_pos[0] = tcp - TCP_OFFSET
        self.data.ctrl[:] = FINGER_OPEN
        self.set_state(qpos, np.zeros(self.model.nv))
        self._memory: dict = {}
        self._steps = 0
        self._prev_tcp = self.data.site_xpos[self._tcp].copy()
        # drawn last (and only by tasks that ask questions): other tasks' scenes stay as they were
        self._qa = self.task.question(spec, rng, self.split)
        return self._get_obs()

    def _get_reset_info(self) -> dict:
        spec = self.spec_
        target = spec.objects[spec.target]
        info = {
            keys.TASK: self.task.name,
            keys.INFO_INSTRUCTION: spec.instruction,
            keys.SPLIT: self.split,
            keys.TARGET: target.name,
            keys.N_OBJECTS: len(spec.objects),
            keys.SUCCESS: False,
        }
        if self._qa is not None:  # a question about the episode (video-QA co-training)
            info[keys.QUESTION], info[keys.ANSWER] = self._qa
        return info

    def step(self, action):
        act = self._check_action(action)
        finger = self.data.ctrl.copy()
        if self._steps >= self.task.hold_steps:  # a memory task's watch phase ignores actions
            hand = self.data.xpos[self._hand_body]
            goal = self.data.mocap_pos[0] + act[:3] * self.max_delta
            goal = np.clip(goal, TCP_LOW - TCP_OFFSET, TCP_HIGH - TCP_OFFSET)
            self.data.mocap_pos[0] = hand + np.clip(goal - hand, -LEASH, LEASH)
            closed = (act[3] + 1.0) / 2.0  # 0 = open ... 1 = closed
            finger = np.full(2, FINGER_OPEN + (FINGER_CLOSED - FINGER_OPEN) * closed)
        touched, contacted = self._simulate(finger)
        self._steps += 1
        view = self._scene_view(touched, contacted)
        success, failure, terms = self.task.evaluate(self.spec_, view, self._memory)
        obs = self._get_obs()
        terminated = bool(success or failure)
        truncated = not terminated and self._steps >= self.task.max_episode_steps
        info = {keys.SUCCESS: bool(success), keys.FAILURE: bool(failure), keys.TASK: self.task.name}
        info[keys.TOUCHED] = [
            o.name for o, t in zip(self.spec_.objects, view.contacted, strict=True) if t
        ]
        info.update({f"{keys.REWARD_PREFIX}{k}": float(v) for k, v in terms.items()})
        return obs, float(sum(terms.values())), terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._video_renderer is None:
            self._video_renderer = mujoco.Renderer(self.model, self.render_size, self.render_size)
        self._video_renderer.update_scene(self.data, camera=self.render_camera)
        return self._video_renderer.render()

    def close(self):
        # own the EGL renderers and free them here, never at garbage collection (DESIGN.md)
        for r in (self._renderer, self._video_renderer):
            if r is not None:
                r.close()
        self._renderer = self._video_renderer = None
        super().close()

    # ---- internals -----------------------------------------------------------------------

    def _check_action(self, action) -> np.ndarray:
        act = np.asarray(action, dtype=np.float64)
        if act.shape != (4,):
            raise ValueError(
                f"action has shape {act.shape}; expected (4,) = dx, dy, dz, gripper in [-1, 1]"
            )
        if not np.all(np.isfinite(act)):
            raise ValueError(f"action {act.tolist()} contains NaN or inf; expected finite values")
        return np.clip(act, -1.0, 1.0)

    def _simulate(self, finger: np.ndarray) -> tuple[list[set[str]], list[set[str]]]:
        """One control step (``frame_skip`` substeps, as ``do_simulation``), reading the gripper's
        contacts every ``CONTACT_SUBSTEPS``. Per object, the parts touching it at the step's end
        (the last read) and those that touched it at any read."""
        n = len(self.spec_.objects)
        contacted: list[set[str]] = [set() for _ in range(n)]
        self.data.ctrl[:] = finger
        for _ in range(self.frame_skip // CONTACT_SUBSTEPS):
            mujoco.mj_step(self.model, self.data, nstep=CONTACT_SUBSTEPS)
            touched = self.scene.contacts(self.data, n)
            for seen, now in zip(contacted, touched, strict=True):
                seen |= now
        mujoco.mj_rnePostConstraint(self.model, self.data)  # as do_simulation: derived forces
        return touched, contacted

    def _scene_view(
        self, touched: list[set[str]] | None = None, contacted: list[set[str]] | None = None
    ) -> SceneView:
        """The task's view of the simulator now; ``touched`` / ``contacted``: a control step's
        contacts at its end and at any moment (``_simulate``), else those of this moment."""
        n = len(self.spec_.objects)
        pos, vel = self.scene.objects(self.data, n)  # (n, 3), (n, 3)
        place_xy = np.array([p.xy for p in self.spec_.places]).reshape(-1, 2)  # (n_places, 2)
        tcp = self.data.site_xpos[self._tcp].copy()
        touched = self.scene.contacts(self.data, n) if touched is None else touched
        return SceneView(
            tcp, pos, vel, touched, place_xy, touched if contacted is None else contacted
        )

    def _get_obs(self) -> dict:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
        lit = self._steps < self.task.cue_steps  # the cue shows in frames 0 .. cue_steps - 1
        self.model.geom_rgba[self.scene.cue_geom, 3] = 1.0 if lit else 0.0  # render() shows it too
        obs = {}
        for cam in self.cameras:
            self._renderer.update_scene(self.data, camera=cam)
            obs[keys.image_key(cam, self.cameras)] = self._renderer.render()  # (H, W, 3) uint8
        tcp = self.data.site_xpos[self._tcp].copy()
        vel = np.clip((tcp - self._prev_tcp) / self.dt, -VEL_LIMIT, VEL_LIMIT)
        self._prev_tcp = tcp
        opening = self.data.qpos[self._finger_qpos].sum()
        obs[keys.STATE] = np.array([*tcp, *vel, opening], dtype=np.float32)  # (7,)
        obs[keys.INSTRUCTION] = self.spec_.instruction
        if self.privileged:
            obs[keys.PRIVILEGED] = self._privileged()
        return obs

    def _privileged(self) -> dict:
        spec = self.spec_
        a = self.scene.slot_qpos[spec.target]
        place_pos = np.zeros(3, np.float32)
        kind = 0
        if spec.place is not None:
            place = spec.places[spec.place]
            place_pos[:2] = place.xy
            kind = 2 if place.kind == "bowl" else 1
        return {
            keys.TASK_INDEX: TASK_NAMES.index(self.task.name),
            keys.TARGET_POS: self.data.qpos[a : a + 3].astype(np.float32),
            keys.PLACE_POS: place_pos,
            keys.PLACE_KIND: kind,
            keys.HOLD: int(self._steps < self.task.hold_steps),
        }
