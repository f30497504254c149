"""What a collection run reports: its summary, and the dataset card written beside the store."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vla.atomic_file import write_text_atomic
from vla.data import EpisodeStore

SPEECH = "speech"  # extras field of the synthesizer's choices (voice, rate, pitch, snr, ...)


@dataclass
class CollectSummary:
    path: Path
    episodes: int  # committed episodes in the store now
    added: int  # committed by this call
    attempted: int  # expert episodes run by this call
    expert_successes: int  # episodes the acting policy succeeded (the learner's with DAgger)
    seconds: float
    driver: str = "expert"  # who acted in the env: the expert, or a learner (policies.dagger)

    @property
    def episodes_per_s(self) -> float:
        return self.attempted / max(self.seconds, 1e-9)


def write_card(path: Path, summary: CollectSummary, noise: float, keep_failures: bool) -> Path:
    """A short dataset card beside the data: what is in it and the command that made it."""
    store = EpisodeStore(path, check_values=False)
    info = store.summary(num_instructions=8)
    tasks = Counter(store.tasks)
    lines = [
        f"# Dataset card: {path.name}",
        "",
        f"Made by: `{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`",
        "",
        "| | |",
        "|---|---|",
        f"| env | {info['env_spec'].get('env_id')} |",
        f"| split | {', '.join(f'{k}: {v}' for k, v in info['splits'].items())} |",
        f"| episodes | {info['episodes']} |",
        f"| steps | {info['steps']} (mean length {info['mean_episode_length']:.1f}) |",
        f"| tasks | {', '.join(f'{k}: {v}' for k, v in tasks.items())} |",
        f"| expert noise | {noise} |",
        f"| failures kept | {keep_failures} |",
        f"| {summary.driver} success (last run) | {summary.expert_successes}/{summary.attempted} |",
        f"| disk | {info['disk_bytes'] / 1e6:.1f} MB ({info['bytes_per_frame']:.0f} B/frame) |",
        *_speech_rows(store, info["audio"]),
        "",
        "Example instructions:",
        "",
        *[f"- {text}" for text in info["instructions"]],
        "",
    ]
    return write_text_atomic(path / "README.md", "\n".join(lines))  # never half written


def _speech_rows(store: EpisodeStore, audio: dict[str, Any] | None) -> list[str]:
    """Card rows on the spoken instructions, none for a store without them."""
    if audio is None or not store.num_episodes:
        return []
    choices = [x[SPEECH] for x in store.extras if SPEECH in x]
    voices = Counter(c["voice"] for c in choices)
    seeds = sorted({c["seed"] for c in choices})
    return [
        f"| speech | espeak-ng (policies.speech), speech_seed {', '.join(map(str, seeds))} |",
        f"| audio | {audio['sample_rate']} Hz int16, {audio['seconds']:.1f} s "
        f"(mean {audio['mean_seconds']:.2f} s), {audio['disk_bytes'] / 1e6:.2f} MB "
        f"({audio['bytes_per_second'] / 1e3:.1f} KB/s) |",
        f"| voices | {', '.join(f'{v}: {n}' for v, n in voices.most_common())} |",
    ]
