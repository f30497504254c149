"""DAgger's data (Ross et al. 2011): a trained policy drives the env, the expert labels its states.

A behaviour-cloned policy drifts into states its demonstrations never show (a missed contact, a
gripper risen off the table) and, having no label there, keeps drifting. Here the env executes
the *learner's* actions while the store keeps the scripted expert's action for every state the
learner reached, so a fine-tune on these episodes (added to the demonstrations) teaches the way
back from the learner's own mistakes. ``vla-collect`` runs it through its ``expert`` factory:

    vla-collect --config-dir datasets/multitask --config-name recipe \\
        expert._target_=policies.dagger.LearnerDriven.for_env \\
        +expert.checkpoint=runs/multitask/train/checkpoints/last \\
        keep_failures=true noise=0 out=... episodes=...

``keep_failures=true`` keeps the episodes the learner failed: those are the ones with labels it
lacks (the stored ``success`` is the learner's). With ``beta`` > 0 each step runs the expert's
own action with that probability (DAgger's mixture), and ``noise`` adds Gaussian noise to the
executed action as DART does. Any expert factory with the scripted experts' interface labels
(``act`` setting ``clean_action``), named by its dotted path: default the tabletop's
``ScriptedExpert.for_env``; Meta-World's:
``+expert.labeller=policies.metaworld_expert.MetaWorldExpert.for_env``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs import keys as obs_keys

DEFAULT_LABELLER = "policies.scripted_expert.ScriptedExpert.for_env"
DRIVER = "driver"  # extras field of a learner-driven episode (vla-data, EpisodeStore.extras)


class LearnerDriven:
    """Executes ``learner``'s action (``expert``'s with probability ``beta``), labels each state
    with ``expert``'s clean action (``clean_action``, what ``vla-collect`` stores).

    Args:
        expert: a scripted expert (``act(obs)`` sets ``clean_action``), made without noise.
        learner: a policy (``reset()``, ``act(obs)``), e.g. ``VLAPolicy``.
        beta: probability that a step executes the expert's action instead (0: the learner's
            only, DAgger's usual choice after the first round).
        noise: std of Gaussian noise on the executed action, clipped to [-1, 1] (0 = off).
        seed: seed of the mixture and noise stream (``vla-collect`` reseeds ``rng`` per episode).
        checkpoint: the learner's folder, recorded with each episode.
    """

    needs_privileged = True  # the expert reads simulator state; the learner ignores it
    driver = "learner"  # who acts in the env (vla-collect's progress, summary and card say so)

    def __init__(
        self,
        expert: Any,
        learner: Any,
        beta: float = 0.0,
        noise: float = 0.0,
        seed: int | None = None,
        checkpoint: str = "",
    ):
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta={beta} must be in [0, 1] (probability of the expert's action)")
        if noise < 0:
            raise ValueError(f"noise={noise} must be >= 0 (std of the action noise)")
        self.expert, self.learner, self.beta, self.noise = expert, learner, beta, noise
        self.rng = np.random.default_rng(seed)
        self.clean_action = np.zeros(0, np.float32)
        self.learner_steps = self.steps = 0  # this episode's: executed by the learner / all
        self.checkpoint = str(checkpoint)

    @classmethod
    def for_env(
        cls,
        env: Any,
        checkpoint: str,
        noise: float = 0.0,
        beta: float = 0.0,
        labeller: str = DEFAULT_LABELLER,
        n_action_steps: int | None = None,
        threads: int = 1,
        seed: int | None = None,
    ) -> LearnerDriven:
        """What ``vla-collect`` makes in each worker: ``checkpoint`` loaded as a ``VLAPolicy`` on
        the CPU (``n_action_steps``: re-plan after this many steps of a chunk, default the
        checkpoint's chunk), the expert from its factory ``labeller`` (a dotted path, called
        with ``env=`` and no noise).
        ``threads``: torch threads of this process (workers run side by side: 1 each)."""
        import torch
        from hydra.utils import get_method

        from policies.vla_policy import VLAPolicy

        if threads < 1:
            raise ValueError(f"threads={threads} must be >= 1")
        torch.set_num_threads(threads)
        learner = VLAPolicy.from_checkpoint(checkpoint, n_action_steps=n_action_steps, device="cpu")
        learner.check_action_space(env.action_space)  # before any episode: a clear error
        tasks = getattr(env.unwrapped, "task_names", None)
        if tasks:
            learner.check_tasks(tasks)
        expert = get_method(labeller)(env=env, noise=0.0)
        return cls(expert, learner, beta=beta, noise=noise, seed=seed, checkpoint=checkpoint)

    def reset(self) -> None:
        self.expert.reset()
        self.learner.reset()
        self.steps = self.learner_steps = 0

    def episode_extras(self) -> dict[str, Any]:
        """Stored with each episode (``vla-collect``): who drove it, and how much."""
        return {
            DRIVER: {
                "checkpoint": self.checkpoint,
                "beta": self.beta,
                "noise": self.noise,
                "learner_steps": self.learner_steps,
                "steps": self.steps,
            }
        }

    def act(self, obs: dict) -> np.ndarray:
        self.expert.act(obs)  # labels this state: sets clean_action
        self.clean_action = np.asarray(self.expert.clean_action, np.float32)
        seen = {k: v for k, v in obs.items() if k != obs_keys.PRIVILEGED}
        learned = np.asarray(self.learner.act(seen), np.float32)  # the learner always steps
        self.steps += 1
        if self.beta > 0 and self.rng.random() < self.beta:
            action = self.clean_action
        else:
            action, self.learner_steps = learned, self.learner_steps + 1
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, size=action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def act_chunk(self, obs: dict) -> np.ndarray:
        return self.act(obs)[None]  # (1, D): the learner's queue advances one step per call
