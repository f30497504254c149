"""Recall: "touch the object that lit up". A memory task that one frame cannot solve.

At the start of an episode a ring of light shines under one object for ``cue_steps`` frames,
then goes out; the instruction never names the object, and after the cue every object looks as
it did before (no frame after the cue carries anything about which one it was: tested by
rendering the same scene with different targets). While the cue plays and for a few steps after
it, the gripper holds still (``hold_steps``: the robot watches, as a person waits for a pointing
gesture to finish), so even a policy that predicts a chunk of actions from a cue frame cannot
start moving towards the target from that frame alone: with chunks of up to
``hold_steps - cue_steps + 1`` actions a single-frame policy is at chance by construction
(1 / number of objects), and only a policy that remembers the cue (``history: start``) can
succeed. ``question`` gives a text question about the clip for video-QA co-training.
"""

from __future__ import annotations

import numpy as np

from envs.palette import NOUNS
from envs.tasks.base import EpisodeSpec, SceneView, Task, reach_term, wrong_touch

QUESTIONS = {
    "train": (
        "which object lit up?",
        "what lit up at the start?",
        "which one glowed?",
        "what was highlighted?",
    ),
    "test": ("name the object that flashed", "which thing had the light under it?"),
}


class RecallTask(Task):
    name = "recall"
    names_target = False  # the referent is never named
    max_episode_steps = 50
    n_distractors = (2, 3)  # 3-4 objects: chance is 1/3 .. 1/4
    cue_steps = 2  # frames 0 and 1 show the light under the target
    hold_steps = 6  # actions of steps 0..5 are ignored: chunks <= 5 cannot leak the cue

    def question(self, spec: EpisodeSpec, rng: np.random.Generator, split: str) -> tuple[str, str]:
        """A question about the clip and its answer, e.g. ("which one glowed?", "the red cube")."""
        target = spec.objects[spec.target]
        q = QUESTIONS[split][rng.integers(len(QUESTIONS[split]))]
        return q, f"the {target.colour} {NOUNS[target.shape][0]}"

    def evaluate(self, spec: EpisodeSpec, view: SceneView, memory: dict):
        success = bool(view.contacted[spec.target])
        failure = not success and wrong_touch(view, spec.target)
        return success, failure, {"reach": reach_term(view, spec.target), "success": float(success)}
