"""The learned policy: a VLA checkpoint + frame history + action-chunk execution.

The model predicts a chunk of H actions per call. Two ways to execute chunks (by config):

- ``n_action_steps = k``: run the first k actions of a chunk, then predict again (diffusion
  policy / ACT without ensembling). k = 1 re-plans every step.
- ``temporal_ensemble = m``: predict every step and execute, for each time step, the
  exponentially weighted mean of every chunk's prediction for it, w_i = exp(-m * i) with i = 0
  the oldest prediction (ACT, Zhao et al. 2023): smooth, reactive, H times the compute.

A model conditioned on speech (``instruction`` audio or both) hears each episode's instruction
in the observation's ``audio`` (a float waveform at the model's rate: a microphone, a WAV, or an
env wrapped in ``policies.spoken_instruction_env.SpokenInstructionEnv``), at the episode's start.

Observations hold the frames the model's ``history`` names (``vla.history``): the last
``obs_horizon`` frames, or the episode's first frame and the last ``obs_horizon - 1``; the first
frame is repeated at the start of an episode, exactly as in training windows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs import keys as obs_keys
from policies.batch import obs_at
from vla.audio.audio_encoder import pad_clips
from vla.decoding import check_temperature
from vla.history import observation_steps
from vla.keys import AUDIO
from vla.prompt import PromptInputs
from vla.text.normalize import normalize_instruction
from vla.train_compile import COMPILE_MODES, compile_available


def compiled_predict(model: Any, mode: str | None) -> Any:
    """``model.predict_actions``, through ``torch.compile(mode=mode)`` when ``mode`` is set (and
    ``torch.compile`` can build kernels here: else eager, with a message)."""
    if mode is None:
        return model.predict_actions
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile={mode!r}: choose None (eager) or one of {list(COMPILE_MODES)}")
    if not compile_available(f"policy.compile={mode}"):
        return model.predict_actions
    return torch.compile(model.predict_actions, mode=mode)


def check_instruction(text: str) -> None:
    """Refuse an instruction that says nothing (empty, whitespace or punctuation only)."""
    if not normalize_instruction(text):
        raise ValueError(
            f"the observation's instruction {text!r} is empty: give the task as a sentence "
            "(e.g. 'touch the red cube'); for an instruction-blind policy or control pass "
            "allow_empty_instruction=True"
        )


class VLAPolicy:
    """Acts in a batch of envs (``act_batch``) or one env (``act``) with a VLA.

    Args:
        model: the VLA (``from_checkpoint`` loads one from a checkpoint folder).
        image_keys: env observation keys of the model's cameras, in the model's camera order.
        n_action_steps: actions executed per predicted chunk (default: the whole chunk).
        temporal_ensemble: ACT's m; when set, predict every step and ensemble (n_action_steps
            is then 1).
        trained_cameras: the training data's camera names, if known (for error messages).
        allow_empty_instruction: act on an empty (or whitespace-only) instruction instead of
            refusing it: for instruction-blind policies and the ``instruction=empty`` control.
            Otherwise an empty instruction is an error: it is almost always a lost field, and
            the policy would silently act without knowing its task.
        state_key: observation key of the proprioception (the training store's ``state_key``).
        trained_tasks: the task names the training store had episodes of (empty: unknown).
        compile: run ``predict_actions`` through ``torch.compile`` with this mode (``default``,
            ``reduce-overhead``: CUDA graphs on a GPU, ``max-autotune``, ...); None: eager. The
            first call of each batch size compiles (seconds to tens of seconds); the actions are
            the eager ones up to float rounding. Batch-1 on an H200: 9.2 ms eager, 1.65 ms with
            ``reduce-overhead`` (``benchmarks/model.py --device cuda --compiled``).
        temperature: 0 (default): each action bin is the argmax of its scores, as RT-2 and
            OpenVLA decode. > 0: drawn from ``softmax(scores / temperature)`` (1: the predicted
            distribution itself). A greedy policy repeats its most likely action in a state it
            cannot tell from a neighbouring one where the demonstrations did something else;
            a drawn action takes the other branch as often as the model predicts it.
        seed: seeds the draws (a ``torch.Generator`` on the model's device, made once: a run of
            episodes is reproducible as a whole); unused when ``temperature`` is 0.
    """

    def __init__(
        self,
        model: Any,
        image_keys: tuple[str, ...] = (obs_keys.IMAGE,),
        n_action_steps: int | None = None,
        temporal_ensemble: float | None = None,
        trained_cameras: list[str] | None = None,
        allow_empty_instruction: bool = False,
        state_key: str = obs_keys.STATE,
        trained_tasks: Sequence[str] = (),
        compile: str | None = None,
        temperature: float = 0.0,
        seed: int | None = 0,
    ):
        check_temperature(temperature)
        self.model = model
        self.temperature = temperature
        self.generator: torch.Generator | None = None
        if temperature > 0:
            self.generator = torch.Generator(device=model.device)
            if seed is None:
                self.generator.seed()
            else:
                self.generator.manual_seed(seed)
        self._predict_actions = compiled_predict(model, compile)
        self.state_key = state_key
        self.trained_tasks = tuple(trained_tasks)
        self.allow_empty_instruction = allow_empty_instruction
        self.reads_text = getattr(model, "instruction", "text") != "audio"
        self.listens = getattr(model, "instruction", "text") != "text"
        self.horizon = self.model.action_horizon
        self.obs_horizon = self.model.obs.obs_horizon
        self.history = getattr(self.model, "history", "recent")
        self.image_keys = tuple(image_keys)
        if len(self.image_keys) != self.model.obs.num_cameras:
            raise ValueError(
                f"image_keys={list(self.image_keys)} but the model sees "
                f"{self.model.obs.num_cameras} camera(s)"
            )
        self.use_state = bool(self.model.obs.state_dim)
        if temporal_ensemble is not None and temporal_ensemble < 0:
            raise ValueError(f"temporal_ensemble={temporal_ensemble} must be >= 0 (ACT's m)")
        self.ensemble = temporal_ensemble
        steps = 1 if temporal_ensemble is not None else (n_action_steps or self.horizon)
        if not 1 <= steps <= self.horizon:
            raise ValueError(
                f"n_action_steps={n_action_steps} must be in [1, {self.horizon}] (the model's "
                "action_horizon); use temporal_ensemble for per-step re-planning with smoothing"
            )
        self.n_action_steps = steps
        self.trained_cameras = trained_cameras
        self._envs: list[dict[str, Any]] = []

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path,
        n_action_steps: int | None = None,
        temporal_ensemble: float | None = None,
        image_keys: tuple[str, ...] | None = None,
        device: str = "auto",
        allow_empty_instruction: bool = False,
        compile: str | None = None,
        temperature: float = 0.0,
        seed: int | None = 0,
    ) -> VLAPolicy:
        """Load a checkpoint folder (``vla.checkpoint.save_checkpoint``); cameras default to
        what it was trained on."""
        from vla.checkpoint import load_checkpoint, read_training_info

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load_checkpoint(checkpoint, map_location=device)
        info = read_training_info(checkpoint)
        keys = tuple(image_keys or info.image_keys or (obs_keys.IMAGE,))
        cameras = info.env_spec.cameras
        state_key = info.state_key or obs_keys.STATE
        return cls(model, keys, n_action_steps, temporal_ensemble, cameras,
                   allow_empty_instruction, state_key, info.tasks, compile, temperature,
                   seed)  # fmt: skip

    def check_tasks(self, names: Sequence[str]) -> None:
        """Fail before any rollout if the env runs tasks the checkpoint never saw in training
        (its store had no episode of them): a multi-task store missing a task."""
        trained = self.trained_tasks
        unseen = [n for n in names if trained and n not in trained]
        if unseen:
            raise ValueError(
                f"the env runs tasks {unseen} that this checkpoint's training store has no "
                f"episodes of (it trained on {list(trained)}): evaluate those, e.g. "
                f"'env.tasks=[{','.join(n for n in names if n in trained)}]'"
            )

    def check_action_space(self, space: Any) -> None:
        """Fail before any rollout if the env takes actions of another size than the model makes
        (a checkpoint trained on another robot or task suite)."""
        shape = tuple(getattr(space, "shape", None) or ())
        dim = self.model.action_tokenizer.action_dim
        if shape != (dim,):
            raise ValueError(
                f"the env takes actions of shape {shape} but the checkpoint predicts {dim}-d "
                "actions: evaluate it in the env (or robot) it was trained for"
            )

    def check_observation_space(self, space: Any) -> None:
        """Fail before any rollout if the env's cameras or image size differ from training, or
        a speech model's env does not speak its instructions."""
        if self.listens and AUDIO not in space.spaces:
            raise ValueError(self._no_audio(sorted(space.spaces)))
        size = self.model.obs.vision.image_size
        cams = self.trained_cameras
        fix = (
            f"env.cameras=[{','.join(cams)}]" if cams else f"cameras giving {list(self.image_keys)}"
        )
        for k in self.image_keys:
            if k not in space.spaces:
                raise ValueError(
                    f"the env observes {sorted(space.spaces)} but the checkpoint needs {k!r}: "
                    f"make the env with the cameras it was trained on ({fix})"
                )
            if tuple(space[k].shape[:2]) != (size, size):
                raise ValueError(
                    f"env images {k!r} are {tuple(space[k].shape)} but the model was trained on "
                    f"{size}x{size}: set env.image_size={size}"
                )

    def _no_audio(self, observed: list[str]) -> str:
        return (
            f"this policy's model takes spoken instructions but the observations hold {observed}, "
            f"no {AUDIO!r}: wrap the env in policies.spoken_instruction_env.SpokenInstructionEnv "
            f"(a waveform at {self.model.speech.sample_rate} Hz in every observation)"
        )

    # ---- batch API (vla-eval) -----------------------------------------------------------

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None:  # single-env Policy protocol
            self._envs = []
            return
        if len(self._envs) != len(mask):
            self._envs = [self._fresh() for _ in mask]
        for i, m in enumerate(mask):
            if m:
                self._envs[i] = self._fresh()

    def act_batch(self, obs: dict[str, Any]) -> np.ndarray:
        n = len(obs[obs_keys.INSTRUCTION])
        if len(self._envs) != n:
            self._envs = [self._fresh() for _ in range(n)]
        for i, env in enumerate(self._envs):
            self._remember(env, obs_at(obs, i))
        need = [i for i, e in enumerate(self._envs) if self.ensemble is not None or not e["queue"]]
        if need:
            chunks = self._predict([self._envs[i] for i in need])  # (len(need), H, D)
            for i, chunk in zip(need, chunks, strict=True):
                self._plan(self._envs[i], chunk)
        actions = [self._next_action(e) for e in self._envs]
        return np.stack(actions).astype(np.float32)  # (N, D)

    def answer_batch(self, envs: list[int], questions: list[str]) -> list[str]:
        """Text answers of the model to a question per env, about what that env has seen
        (its frame history: with ``history: start`` the episode's first frame too)."""
        return self.model.generate_text(self._inputs([self._envs[i] for i in envs], questions))

    def predict_goal(self) -> np.ndarray:
        """Where the policy expects each env's episode to end ``(N, S')``, from what it has seen
        so far (call it after ``act`` / ``act_batch``): the goal head's prediction of the final
        state's ``state_dims``, in the state's units (``VLA.predict_goal``; a checkpoint trained
        with ``model.goal_loss`` > 0). E.g. after the first ``act`` of an episode: where it aims."""
        if not self._envs:
            raise ValueError("no observation yet: call act / act_batch before predict_goal")
        return self.model.predict_goal(self._inputs(self._envs)).float().cpu().numpy()

    # ---- single-env Policy protocol ----------------------------------------------------

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        return self.act_batch(_batch_of_one(obs))[0]

    def act_chunk(self, obs: dict[str, Any]) -> np.ndarray:
        if not self._envs:
            self._envs = [self._fresh()]
        self._remember(self._envs[0], obs)
        return self._predict(self._envs[:1])[0]  # (H, D)

    # ---- internals ---------------------------------------------------------------------

    def _fresh(self) -> dict[str, Any]:
        # the episode's first frame (history="start") and the last obs_horizon frames, by step
        return {"first": None, "recent": deque(maxlen=self.obs_horizon), "seen": 0,
                "queue": deque(), "t": 0, "plans": [], "audio": None}  # fmt: skip

    def _remember(self, env: dict[str, Any], obs: dict[str, Any]) -> None:
        missing = [k for k in self.image_keys if k not in obs]
        if missing:
            raise ValueError(
                f"observation lacks {missing} (the checkpoint's cameras {list(self.image_keys)}); "
                "make the env with the same cameras it was trained with"
            )
        frame = np.stack([obs[k] for k in self.image_keys])  # (V, H, W, 3)
        if self.use_state and self.state_key not in obs:
            raise ValueError(
                f"observation lacks {self.state_key!r}, the proprioception this checkpoint reads "
                f"({self.model.obs.state_dim} values; its keys: {sorted(obs)})"
            )
        state = np.asarray(obs.get(self.state_key, np.zeros(0)), np.float32)  # (S,)
        env["instruction"] = str(obs[obs_keys.INSTRUCTION])
        if self.reads_text and not self.allow_empty_instruction:
            check_instruction(env["instruction"])
        if self.listens and env.get("audio") is None:  # heard once, at the episode's start
            env["audio"] = self._hear(obs)
        if env["first"] is None:
            env["first"] = (frame, state)
        env["recent"].append((env["seen"], frame, state))
        env["seen"] += 1

    def _hear(self, obs: dict[str, Any]) -> np.ndarray:
        if AUDIO not in obs:
            raise ValueError(self._no_audio(sorted(obs)))
        wave = np.asarray(obs[AUDIO], np.float32).reshape(-1)  # (N,)
        if wave.size == 0:
            raise ValueError("the spoken instruction is empty (0 samples)")
        return wave

    def _audio(self, envs: list[dict[str, Any]]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Waveforms ``(B, N)`` and lengths ``(B,)`` of the envs' spoken instructions, padded as
        training batches are (``vla.audio.audio_encoder.pad_clips``); (None, None) for a text
        model."""
        if not self.listens:
            return None, None
        clips, lengths = pad_clips([torch.from_numpy(e["audio"]) for e in envs])
        return torch.stack(clips), lengths  # (B, N), (B,)

    def _observation(self, env: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(T, V, H, W, 3)`` and states ``(T, S)`` at the latest step, as in training."""
        steps = observation_steps(env["seen"] - 1, 0, self.obs_horizon, self.history)  # (T,)
        by_step = {0: env["first"], **{i: (f, s) for i, f, s in env["recent"]}}
        frames, states = zip(*(by_step[int(i)] for i in steps), strict=True)
        return np.stack(frames), np.stack(states)  # (T, V, H, W, 3), (T, S)

    def _inputs(self, envs: list[dict[str, Any]], texts: list[str] | None = None) -> PromptInputs:
        """The model's inputs at the envs' latest step: frames, state and speech as in training,
        with their instructions (or ``texts``: questions)."""
        frames, states = zip(*(self._observation(e) for e in envs), strict=True)
        images = torch.from_numpy(np.stack(frames)).permute(0, 1, 2, 5, 3, 4)  # (B, T, V, 3, H, W)
        state = torch.from_numpy(np.stack(states)) if self.use_state else None  # (B, T, S)
        if texts is None:
            texts = [e["instruction"] for e in envs]
        audio, lengths = self._audio(envs)
        return PromptInputs(images, texts, state, audio, lengths)

    def _predict(self, envs: list[dict[str, Any]]) -> np.ndarray:
        inputs = self._inputs(envs)
        if self.temperature > 0:  # the greedy call stays the one policy.compile was measured on
            actions = self._predict_actions(
                inputs, temperature=self.temperature, generator=self.generator
            )
        else:
            actions = self._predict_actions(inputs)
        return actions.float().cpu().numpy()  # (B, H, D)

    def _plan(self, env: dict[str, Any], chunk: np.ndarray) -> None:
        if self.ensemble is None:
            env["queue"].extend(chunk[: self.n_action_steps])
        else:
            env["plans"].append((env["t"], chunk))
            env["plans"] = [(t0, c) for t0, c in env["plans"] if t0 + len(c) > env["t"]]

    def _next_action(self, env: dict[str, Any]) -> np.ndarray:
        t = env["t"]
        env["t"] += 1
        if self.ensemble is None:
            return env["queue"].popleft()
        preds = np.stack([c[t - t0] for t0, c in env["plans"]])  # (K, D), oldest first
        w = np.exp(-self.ensemble * np.arange(len(preds)))  # (K,)
        return (w[:, None] * preds).sum(0) / w.sum()  # (D,)


def _batch_of_one(obs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obs.items():
        out[k] = (
            _batch_of_one(v)
            if isinstance(v, dict)
            else ([v] if isinstance(v, str) else np.asarray(v)[None])
        )
    return out
