"""What a task is: how it draws an episode (objects, places, instruction) and how it is judged.

A task never touches MuJoCo directly: it returns an :class:`EpisodeSpec` that the env lays
out, and judges each step from a :class:`SceneView` the env fills in. That keeps every task a
small file and lets one env (and one multi-task env) run them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from envs.instructions import NAMINGS, InstructionGenerator
from envs.palette import COLOURS, HALF_SIZE, SHAPES, check_choice, combos

# where object centres may be drawn (m, table frame); the gripper reaches all of it
REGION_X = (-0.2, 0.2)
REGION_Y = (-0.12, 0.13)
MIN_OBJECT_GAP = 0.085  # centre distance: an open gripper fits between any two objects
PLACE_GAP = 0.13  # centre distance from a pad / the bowl to anything else
REST_Z = HALF_SIZE  # centre height of an object resting on the table


@dataclass
class ObjectSpec:
    colour: str
    shape: str
    xy: np.ndarray  # (2,)
    yaw: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class PlaceSpec:
    kind: str  # "pad" | "bowl"
    colour: str | None
    xy: np.ndarray  # (2,)


@dataclass
class EpisodeSpec:
    """One drawn episode. ``objects[target]`` is what the instruction refers to."""

    objects: list[ObjectSpec]
    instruction: str
    target: int = 0
    places: list[PlaceSpec] = field(default_factory=list)
    place: int | None = None  # index into places of the destination, if any


@dataclass
class SceneView:
    """What a task may read of the simulator after a step (filled in by the env)."""

    tcp: np.ndarray  # (3,)
    object_pos: np.ndarray  # (n_objects, 3)
    object_vel: np.ndarray  # (n_objects, 3) linear velocity
    touched: list[set[str]]  # per object: which gripper parts ("finger_left", ...) touch it now
    place_xy: np.ndarray  # (n_places, 2)
    # per object: the gripper parts that touched it at any moment of the last control step (a
    # ball hit mid-step may have rolled away by its end); what a touch task judges. Grasps are
    # judged on ``touched``, the contacts that hold at the step's end.
    contacted: list[set[str]]

    def grasped(self, i: int) -> bool:
        return {"finger_left", "finger_right"} <= self.touched[i]


class Task:
    """Base class: subclasses set ``name`` and ``max_episode_steps`` and implement two methods."""

    name: ClassVar[str]
    max_episode_steps: ClassVar[int]
    n_distractors: ClassVar[tuple[int, int]] = (2, 5)  # inclusive range
    pad_radius: ClassVar[float] = 0.045
    # memory tasks: frames at the start that show a cue under the target, and steps whose
    # actions the env ignores (the robot watches); 0 for tasks that need no memory
    cue_steps: ClassVar[int] = 0
    hold_steps: ClassVar[int] = 0
    bowl_inner_radius: ClassVar[float] = 0.06
    # train-split scenes may show the test split's held-out colour x shape combos as distractors
    # (never as the target); False keeps them out of train-split scenes altogether (the env's
    # ``held_out_distractors`` option)
    held_out_distractors: bool = True
    # share of train-split episodes whose instruction names the target by its colour alone or
    # its shape alone (half each), in a scene where no other object has that attribute (the env's
    # ``single_attribute`` option); the rest, and every test-split episode, name both
    single_attribute: float = 0.0
    # whether the instruction names the target by colour and shape through ``scatter`` and the
    # ``{obj}`` slot, so that ``single_attribute`` applies (not relation, not recall)
    names_target: ClassVar[bool] = True

    def set_scene_options(self, held_out_distractors: bool, single_attribute: float) -> None:
        """The env's scene options (``TabletopEnv``'s arguments of the same names), checked."""
        if not 0.0 <= single_attribute <= 1.0:
            raise ValueError(f"single_attribute={single_attribute!r} must be a share in [0, 1]")
        if single_attribute > 0 and not self.names_target:
            raise ValueError(
                f"single_attribute={single_attribute} but task {self.name!r} does not name its "
                "target by colour and shape; use it with touch, lift, push or pick_place"
            )
        self.held_out_distractors = bool(held_out_distractors)
        self.single_attribute = float(single_attribute)

    def instructions(self, split: str) -> InstructionGenerator:
        return InstructionGenerator(self.name, split)

    def sample(
        self, rng: np.random.Generator, split: str, target: tuple[str, str] | None = None
    ) -> EpisodeSpec:
        """Draw an episode; ``target`` = (colour, shape) forces the referent.

        The default scatters the target and its distractors; tasks with places override it.
        """
        naming = self.draw_naming(rng, split)
        objects = self.scatter(rng, split, target, taken=[], naming=naming)
        text = self.instructions(split)(rng, objects[0].colour, objects[0].shape, naming=naming)
        return EpisodeSpec(objects=objects, instruction=text, target=0)

    def draw_naming(self, rng: np.random.Generator, split: str) -> str:
        """How this episode's instruction names its target (one of ``NAMINGS``): ``both`` unless
        a share ``single_attribute`` of train-split episodes names one attribute. Draws nothing
        when ``single_attribute`` is 0, so the default's scenes stay what they were."""
        if self.single_attribute <= 0 or split != "train":
            return "both"
        if rng.random() >= self.single_attribute:
            return "both"
        return NAMINGS[1 + int(rng.integers(2))]

    def scatter(
        self,
        rng: np.random.Generator,
        split: str,
        target: tuple[str, str] | None,
        taken: list[np.ndarray],
        target_ok=None,
        distractor_ok=None,
        naming: str = "both",
    ) -> list[ObjectSpec]:
        """The target (first) and 2-5 distractors at free spots; appends their xy to ``taken``.

        ``target_ok`` / ``distractor_ok`` are extra placement constraints (see :func:`draw_xy`);
        ``naming`` is how the instruction will name the target (see :func:`draw_distractors`).
        """
        colour, shape = draw_target(rng, split, target)
        n = int(rng.integers(self.n_distractors[0], self.n_distractors[1] + 1))
        pool = None if self.held_out_distractors or split != "train" else combos("train")
        objects = []
        drawn = draw_distractors(rng, (colour, shape), n, pool, naming)
        for k, (c, s) in enumerate([(colour, shape), *drawn]):
            taken.append(draw_xy(rng, taken, ok=target_ok if k == 0 else distractor_ok))
            objects.append(ObjectSpec(c, s, taken[-1], random_yaw(rng)))
        return objects

    def draw_pads(
        self, rng: np.random.Generator, n: int, taken: list[np.ndarray]
    ) -> list[PlaceSpec]:
        """``n`` pads of distinct colours at free spots; appends their xy to ``taken``."""
        colours = list(COLOURS)
        picks = rng.choice(len(colours), size=n, replace=False)
        pads = []
        for k in picks:
            taken.append(draw_xy(rng, taken, gap=PLACE_GAP))
            pads.append(PlaceSpec("pad", colours[k], taken[-1]))
        return pads

    def question(
        self, spec: EpisodeSpec, rng: np.random.Generator, split: str
    ) -> tuple[str, str] | None:
        """A (question, answer) about the episode for text co-training, or None."""
        return None

    def evaluate(
        self, spec: EpisodeSpec, view: SceneView, memory: dict
    ) -> tuple[bool, bool, dict[str, float]]:
        """Return (success, failure, reward terms). ``memory`` persists across an episode."""
        raise NotImplementedError


# ---- helpers shared by the tasks ------------------------------------------------------------


def draw_target(
    rng: np.random.Generator, split: str, target: tuple[str, str] | None
) -> tuple[str, str]:
    allowed = combos(split)
    if target is None:
        return allowed[rng.integers(len(allowed))]
    if tuple(target) not in allowed:
        raise ValueError(
            f"target={tuple(target)} is not a {split!r}-split target; choose one of {allowed}"
        )
    return tuple(target)


def draw_distractors(
    rng: np.random.Generator,
    target: tuple[str, str],
    n: int,
    pool: list[tuple[str, str]] | None = None,
    naming: str = "both",
) -> list[tuple[str, str]]:
    """``n`` distractor (colour, shape) pairs, never equal to the target, from ``pool`` (default:
    every combination).

    ``naming="both"``: the first shares the target's colour and the second its shape, so neither
    word alone names the target: the policy has to read both. ``naming="colour"``: no distractor
    has the target's colour, so the colour alone names it, and the first has its shape, so the
    shape alone does not (``"shape"`` the other way round).
    """
    check_choice("naming", naming, NAMINGS)
    colour, shape = target
    allowed = set(pool) if pool is not None else {(c, s) for c in COLOURS for s in SHAPES}
    others_c = [c for c in COLOURS if c != colour and (c, shape) in allowed]
    others_s = [s for s in SHAPES if s != shape and (colour, s) in allowed]
    same_colour = (colour, others_s[rng.integers(len(others_s))])
    same_shape = (others_c[rng.integers(len(others_c))], shape)
    out = {"both": [same_colour, same_shape], "colour": [same_shape], "shape": [same_colour]}[
        naming
    ]
    everything = [
        (c, s)
        for c in COLOURS
        for s in SHAPES
        if (c, s) != (colour, shape)
        and (c, s) in allowed
        and not (naming == "colour" and c == colour)
        and not (naming == "shape" and s == shape)
    ]
    while len(out) < n:
        out.append(everything[rng.integers(len(everything))])
    out = out[:n]
    return [out[i] for i in rng.permutation(len(out))]


class PlacementError(RuntimeError):
    """No free spot was found for an object: the layout drawn so far is too crowded."""


def draw_xy(
    rng: np.random.Generator,
    taken: list[np.ndarray],
    gap: float = MIN_OBJECT_GAP,
    region_x: tuple[float, float] = REGION_X,
    region_y: tuple[float, float] = REGION_Y,
    ok=None,
    tries: int = 500,
) -> np.ndarray:
    """A point in the region at least ``gap`` from every point in ``taken`` (rejection sampling).

    ``ok(xy) -> bool`` adds a task-specific constraint (e.g. keep a push path clear).
    """
    for _ in range(tries):
        xy = np.array([rng.uniform(*region_x), rng.uniform(*region_y)])  # (2,)
        if all(np.linalg.norm(xy - t) >= gap for t in taken) and (ok is None or ok(xy)):
            return xy
    raise PlacementError(f"could not place an object {gap} m from {len(taken)} others")


def random_yaw(rng: np.random.Generator) -> float:
    return float(rng.uniform(-np.pi / 4, np.pi / 4))


def reach_term(view: SceneView, i: int) -> float:
    return -float(np.linalg.norm(view.tcp - view.object_pos[i]))


def segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from point ``p`` to the segment ``a``-``b`` (all (2,))."""
    ab = b - a  # (2,)
    t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + t * ab)))


def wrong_touch(view: SceneView, target: int) -> bool:
    """Whether the gripper touched an object other than ``target`` during the last step."""
    return any(t for i, t in enumerate(view.contacted) if i != target)
