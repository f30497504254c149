"""Batch keys: the one place the names of batch entries are spelled.

Shapes in a training batch (B = batch, T = obs_horizon, V = cameras, H = action_horizon):

- ``IMAGE``: (B, T, V, 3, Hpx, Wpx) uint8 — frames, channels first; the model normalizes.
- ``STATE``: (B, T, S) float32 — proprioception.
- ``ACTION``: (B, H, D) float32 — future actions in env units (the action tokenizer normalizes).
- ``ACTION_MASK``: (B, H) bool — False where the window ran past the episode end (padding).
- ``GOAL``: (B, S) float32 — the state at the sample's episode's last step (where the
  demonstration ended: the hindsight goal ``vla.goal_head`` predicts); with a state only.
- ``INSTRUCTION``: list[str] of length B — the natural-language instruction.
- ``TASK``: list[str] of length B — the task id the sample came from.
- ``QUESTION`` / ``ANSWER``: list[str] — optional text QA pairs for co-training.
- ``AUDIO``: (B, N) float32 in [-1, 1] — the spoken instruction, zero-padded to the longest clip
  in the batch (N samples at the store's ``AUDIO_SAMPLE_RATE``); only with ``audio=True``.
- ``AUDIO_LENGTH``: (B,) int64 — real samples per ``AUDIO`` row (the rest is padding).
"""

IMAGE = "image"
STATE = "state"
ACTION = "action"
ACTION_MASK = "action_mask"
GOAL = "goal"
INSTRUCTION = "instruction"
TASK = "task"
QUESTION = "question"
ANSWER = "answer"
AUDIO = "audio"
AUDIO_LENGTH = "audio_length"

# Episode store layout (vla.data.EpisodeStore), the diffusion_policy layout: ``data/<key>`` arrays
# concatenated along time, ``meta/episode_ends`` (N,) int64 cumulative exclusive, and one
# ``meta/<column>`` entry per episode for the columns below (plus ``INSTRUCTION`` and ``TASK``).
# Observation keys in ``data/`` are the env's: ``IMAGE`` (and ``IMAGE + "_" + camera``), ``STATE``,
# ``ACTION``.
# Spoken instructions (optional, every episode or none): ``meta/AUDIO`` (S,) int16 PCM, every
# episode's waveform concatenated, ``meta/AUDIO_ENDS`` (N,) int64 cumulative exclusive sample ends,
# and the root attribute ``AUDIO_SAMPLE_RATE`` (int Hz); ``EpisodeWriter.append`` takes the
# waveform as ``meta[AUDIO]`` (float, in [-1, 1]) with ``meta[AUDIO_SAMPLE_RATE]``.
DATA = "data"
META = "meta"
EPISODE_ENDS = "episode_ends"
AUDIO_ENDS = "audio_ends"
AUDIO_SAMPLE_RATE = "audio_sample_rate"
SPLIT = "split"
SEED = "seed"
SUCCESS = "success"
EXTRA = "extra"
LENGTH = "length"  # derived from episode_ends, reported by EpisodeStore.episode_meta
STATS = "stats"
