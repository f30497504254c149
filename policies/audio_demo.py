"""The spoken-command demo: one episode driven by a waveform, filmed with its spectrogram.

``run_audio_demo`` loads a speech-conditioned checkpoint, takes the command from a WAV file or
synthesizes it (``say``), lays out a scene where the named object exists (the colour and shape
words of the command, or ``target``), runs one episode (``policies.rollout``) with the waveform in
every observation (``SpokenInstructionEnv``) and writes an mp4 whose frames carry the command's
log-mel spectrogram beside them, with a playhead that crosses it while the episode runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from gymnasium.vector import AutoresetMode, SyncVectorEnv  # noqa: E402
from PIL import Image  # noqa: E402

from envs import keys  # noqa: E402
from envs.palette import COLOURS, NOUNS, check_choice, combos  # noqa: E402
from policies.rollout import Film, rollout  # noqa: E402
from policies.spoken_instruction_env import SpokenInstructionEnv  # noqa: E402
from policies.video import annotate, write_video  # noqa: E402
from vla.audio import load_wav, save_wav  # noqa: E402


def target_from_words(text: str) -> tuple[str, str] | None:
    """``(colour, shape)`` named in ``text`` ("touch the red ball" -> ("red", "sphere"))."""
    words = text.lower().replace(",", " ").split()
    colours = [w for w in words if w in COLOURS]
    shapes = [s for s, nouns in NOUNS.items() for w in words if w in nouns]
    return (colours[0], shapes[0]) if colours and shapes else None


def spectrogram_panel(wave: np.ndarray, sample_rate: int, height: int) -> np.ndarray:
    """The log-mel spectrogram of ``wave`` as an RGB image ``(height, W, 3)`` (low pitch down)."""
    import matplotlib

    from vla.audio import LogMel

    mel = LogMel(sample_rate, n_mels=64)(torch.from_numpy(wave)[None])[0].numpy()  # (M, F)
    lo, hi = np.percentile(mel, 5), mel.max()
    scaled = np.clip((mel - lo) / max(hi - lo, 1e-6), 0, 1)[::-1]  # (M, F) low bins at the bottom
    rgb = (matplotlib.colormaps["magma"](scaled)[..., :3] * 255).astype(np.uint8)  # (M, F, 3)
    width = max(height, round(height * mel.shape[1] / mel.shape[0] / 2))
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR))  # (H, W, 3)


def run_audio_demo(
    checkpoint: str | Path,
    env_cfg: dict[str, Any],
    out: str | Path,
    wav: str | Path | None = None,
    say: str | None = None,
    voice: str = "en-us+m3",
    target: tuple[str, str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run one spoken-command episode; returns a summary (also printed by ``vla-demo``)."""
    from hydra.utils import instantiate

    from policies.vla_policy import VLAPolicy

    if (wav is None) == (say is None):
        raise ValueError('give exactly one command: wav=FILE or say="touch the red cube"')
    policy = VLAPolicy.from_checkpoint(checkpoint)
    model = policy.model
    if model.instruction == "text":
        raise ValueError(
            f"{checkpoint} takes typed instructions (instruction=text): it has no audio encoder. "
            "Train a speech model: vla-train ... model/audio=speech dataset.audio=true"
        )
    rate, limit = model.speech.sample_rate, model.speech.encoder.max_seconds
    if wav is not None:
        wave = load_wav(wav, rate, max_seconds=limit)  # resampled; clear errors on bad input
        command = f"(spoken) {Path(wav).name}"
    else:
        from policies.speech import SpeechSynthesizer

        wave = SpeechSynthesizer(sample_rate=rate).speak(say, voice)  # (N,)
        if wave.size > limit * rate:
            raise ValueError(
                f"say={say!r} lasts {wave.size / rate:.2f} s, longer than the model's audio "
                f"context of {limit} s: say it shorter"
            )
        command = f'(spoken) "{say}"'
        target = target or target_from_words(say)
        if target is None:
            raise ValueError(
                f"say={say!r} names no colour and shape the scene has: use one of "
                f"{sorted(COLOURS)} and one of {sorted(w for n in NOUNS.values() for w in n)}"
            )
    from policies.collect import camera_kwargs
    from vla.checkpoint import read_training_info

    spec = read_training_info(checkpoint).env_spec
    env_cfg = {**env_cfg, **camera_kwargs(spec)}  # filmed the way the policy was trained to see
    if target is not None:  # held-out colour x shape pairs live in the test split's scenes
        check_choice("colour", target[0], COLOURS)
        check_choice("shape", target[1], NOUNS)
        env_cfg = {**env_cfg, "split": "test" if tuple(target) in combos("test") else "train"}
    env = SpokenInstructionEnv(instantiate(env_cfg, render_mode="rgb_array"), lambda _: wave)
    envs = SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.DISABLED)
    try:  # the command is heard whatever sentence the scene was drawn with
        policy.check_observation_space(env.observation_space)
        panel = spectrogram_panel(wave, rate, env.unwrapped.render_size)  # (H, W, 3)
        options = {"target": tuple(target)} if target else None
        (episode,) = rollout(envs, policy, [seed], [Film({seed})], options)
    finally:
        envs.close()
    frames, success = episode.frames, episode.success
    out = Path(out)
    video = []
    for i, frame in enumerate(frames):
        side = panel.copy()
        x = round((side.shape[1] - 1) * i / max(1, len(frames) - 1))  # playhead across the panel
        side[:, x : x + 2] = 255
        verdict = success if i == len(frames) - 1 else None
        video.append(annotate(np.concatenate([frame, side], axis=1), command, verdict))
    video += [video[-1]] * 5  # hold the verdict for 0.5 s
    path = write_video(out / "demo.mp4", video)
    save_wav(out / "command.wav", wave, rate)
    return {
        "video": str(path),
        "command_wav": str(out / "command.wav"),
        "seconds_of_speech": round(wave.size / rate, 2),
        "scene_target": episode.info[keys.TARGET],
        "success": success,
        "steps": episode.length,
    }
