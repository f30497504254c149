"""Spoken instructions from text: eSpeak NG synthesis plus augmentation, with held-out voices.

``SpeechSynthesizer.synthesize(text, rng, split)`` runs the ``espeak-ng`` command line (formant
synthesis: small, offline, deterministic for the same arguments), loads the WAV at the model's
rate and augments it: a random speech level, a little leading / trailing silence and additive
white / pink / brown noise at a random SNR. Every random choice comes from the caller's
``np.random.Generator``, so a seeded episode always gets the same audio.

Held-out speakers: ``split="train"`` and ``split="test"`` draw voices, speaking rates and pitches
from disjoint pools, so test success measures generalization to unseen speakers rather than
memorized waveforms. A voice is an accent plus a speaker variant (``en-us+m3``): the test pools use
accents and variants never heard in training, each test accent close to a training one (New York
vs General American, Received Pronunciation vs the default British voice, West Midlands vs
Lancaster), and rates / pitches between and just outside the training values.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vla.audio import load_wav

# accents: `espeak-ng --voices=en`; speaker variants: `espeak-ng --voices=variant` (files !v/<name>).
# "en" is the British voice: espeak-ng 1.51 resolves "en-gb+m1" by language and drops the +variant
# silently (same samples as plain "en-gb"), while "en+m1" applies it (tests check every voice).
TRAIN_VOICES = tuple(
    f"{accent}+{variant}"
    for accent in ("en-us", "en", "en-gb-scotland", "en-gb-x-gbclan")
    for variant in ("m1", "m2", "m3", "m4", "f1", "f2", "f3")
)
TEST_VOICES = tuple(
    f"{accent}+{variant}"
    for accent in ("en-us-nyc", "en-gb-x-rp", "en-gb-x-gbcwmd")
    for variant in ("m5", "m6", "m7", "f4", "f5")
)
TRAIN_RATES = (140, 155, 170, 185)  # words per minute (espeak-ng -s; its default is 175)
TEST_RATES = (130, 148, 163, 178, 195)
TRAIN_PITCHES = (35, 45, 55, 65)  # espeak-ng -p, 0-99 around the variant's own range
TEST_PITCHES = (30, 40, 50, 60, 70)
NOISE_COLORS = ("white", "pink", "brown")
_NOISE_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power spectrum ~ 1 / f**exponent
_MISSING = "espeak-ng not found: install it with `apt-get install espeak-ng` (Debian/Ubuntu)"


class SpeechSynthesizer:
    """Text -> augmented speech ``(N,)`` float32 at ``sample_rate`` through ``espeak-ng``.

    Args:
        sample_rate: rate of the returned waveforms (the audio encoder's).
        train_voices, test_voices: ``accent+variant`` voice names per split (must be disjoint).
        train_rates, test_rates: speaking rates in words per minute (80-450; disjoint).
        train_pitches, test_pitches: espeak-ng pitch settings 0-99 (disjoint).
        snr_db: (low, high) range of the additive noise's signal-to-noise ratio; None: no noise.
        noise_colors: noise spectra to draw from: ``white``, ``pink``, ``brown``.
        level_dbfs: (low, high) range of the speech's peak level in dB full scale.
        silence_seconds: (low, high) range of the silence added before and, separately, after.
        max_seconds: longest returned clip (the encoder's audio context); None: no limit.
        timeout_s: seconds one espeak-ng call may take.
        executable: the espeak-ng program (name on PATH or a path).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        train_voices: Sequence[str] = TRAIN_VOICES,
        test_voices: Sequence[str] = TEST_VOICES,
        train_rates: Sequence[int] = TRAIN_RATES,
        test_rates: Sequence[int] = TEST_RATES,
        train_pitches: Sequence[int] = TRAIN_PITCHES,
        test_pitches: Sequence[int] = TEST_PITCHES,
        snr_db: tuple[float, float] | None = (10.0, 40.0),
        noise_colors: Sequence[str] = NOISE_COLORS,
        level_dbfs: tuple[float, float] = (-20.0, -3.0),
        silence_seconds: tuple[float, float] = (0.0, 0.25),
        max_seconds: float | None = None,
        timeout_s: float = 10.0,
        executable: str = "espeak-ng",
    ) -> None:
        found = shutil.which(executable)
        if found is None:
            raise FileNotFoundError(_MISSING)
        self.executable = found
        self.pools: dict[str, dict[str, tuple[Any, ...]]] = {
            "train": {
                "voice": tuple(train_voices),
                "rate": tuple(int(r) for r in train_rates),
                "pitch": tuple(int(p) for p in train_pitches),
            },
            "test": {
                "voice": tuple(test_voices),
                "rate": tuple(int(r) for r in test_rates),
                "pitch": tuple(int(p) for p in test_pitches),
            },
        }
        for kind, (low, high) in (("voice", (None, None)), ("rate", (80, 450)), ("pitch", (0, 99))):
            train, test = self.pools["train"][kind], self.pools["test"][kind]
            for split, pool in (("train", train), ("test", test)):
                if not pool:
                    raise ValueError(f"{split}_{kind}s is empty; give at least one")
                if low is not None and not all(low <= v <= high for v in pool):
                    raise ValueError(f"{split}_{kind}s={list(pool)} must lie in [{low}, {high}]")
            shared = sorted(set(train) & set(test), key=str)
            if shared:
                raise ValueError(
                    f"train_{kind}s and test_{kind}s share {shared}: the test split must hold "
                    "out speakers never heard in training; remove them from one pool"
                )
        bad = [c for c in noise_colors if c not in _NOISE_EXPONENT]
        if bad or not noise_colors:
            raise ValueError(f"noise_colors={list(noise_colors)} must be from {NOISE_COLORS}")
        for name, rng_range in (
            ("snr_db", snr_db),
            ("level_dbfs", level_dbfs),
            ("silence_seconds", silence_seconds),
        ):
            if rng_range is not None and not rng_range[0] <= rng_range[1]:
                raise ValueError(f"{name}={rng_range} must be a (low, high) range with low <= high")
        if level_dbfs[1] > 0:
            raise ValueError(f"level_dbfs={level_dbfs} must be <= 0 dBFS (louder clips clip)")
        if silence_seconds[0] < 0:
            raise ValueError(f"silence_seconds={silence_seconds} must be >= 0")
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"max_seconds={max_seconds} must be > 0 or None")
        self.sample_rate, self.timeout_s, self.max_seconds = sample_rate, timeout_s, max_seconds
        self._check_voices(self.pools["train"]["voice"] + self.pools["test"]["voice"])
        self.snr_db, self.noise_colors = snr_db, tuple(noise_colors)
        self.level_dbfs, self.silence_seconds = level_dbfs, silence_seconds

    def synthesize(
        self, text: str, rng: np.random.Generator, split: str = "train"
    ) -> tuple[np.ndarray, int, dict[str, Any]]:
        """``text`` spoken by a voice from ``split``'s pools: ``(wave (N,), sample_rate, meta)``.

        ``meta`` records every choice: voice, rate, pitch, level_dbfs, lead_s, trail_s, noise,
        snr_db (None without noise)."""
        if split not in self.pools:
            raise ValueError(f"split={split!r} must be 'train' or 'test'")
        if not text.strip():
            raise ValueError("text is empty: nothing to speak")
        pools = self.pools[split]
        # every draw happens whatever the settings, so one option never shifts the others' draws
        voice = pools["voice"][rng.integers(len(pools["voice"]))]
        rate = pools["rate"][rng.integers(len(pools["rate"]))]
        pitch = pools["pitch"][rng.integers(len(pools["pitch"]))]
        level = float(rng.uniform(*self.level_dbfs))
        lead, trail = (float(s) for s in rng.uniform(*self.silence_seconds, size=2))
        color = self.noise_colors[rng.integers(len(self.noise_colors))]
        u = float(rng.uniform())
        snr = self.snr_db[0] + u * (self.snr_db[1] - self.snr_db[0]) if self.snr_db else None
        noise_seed = int(rng.integers(2**63))

        speech = self.speak(text, voice, rate, pitch)  # (S,)
        speech = speech * (10 ** (level / 20) / np.abs(speech).max())  # (S,) peak at `level`
        if self.max_seconds is not None:
            room = self.max_seconds - speech.size / self.sample_rate
            if room < 0:
                raise ValueError(
                    f"text={text!r} spoken by {voice} at {rate} wpm lasts "
                    f"{speech.size / self.sample_rate:.2f} s, longer than max_seconds="
                    f"{self.max_seconds}: shorten the instruction or raise max_seconds"
                )
            if lead + trail > room:  # keep the speech, shrink the silence to fit the context
                lead, trail = lead * room / (lead + trail), trail * room / (lead + trail)
        pads = (round(lead * self.sample_rate), round(trail * self.sample_rate))
        wave = np.pad(speech, pads)  # (N,)
        if snr is not None:
            noise = colored_noise(wave.size, color, np.random.default_rng(noise_seed))  # (N,)
            power = float(np.mean(speech.astype(np.float64) ** 2))
            wave = wave + noise * np.sqrt(power / 10 ** (snr / 10))  # (N,)
            peak = float(np.abs(wave).max())
            if peak > 1.0:  # loud noise on a loud clip: scale down rather than clip
                wave = wave / peak  # (N,)
        meta = {
            "voice": voice,
            "rate": rate,
            "pitch": pitch,
            "level_dbfs": level,
            "lead_s": pads[0] / self.sample_rate,
            "trail_s": pads[1] / self.sample_rate,
            "noise": color if snr is not None else None,
            "snr_db": snr,
        }
        return wave.astype(np.float32), self.sample_rate, meta

    def speak(self, text: str, voice: str, rate: int = 175, pitch: int = 50) -> np.ndarray:
        """``text`` as clean espeak-ng speech ``(S,)`` float32 at ``sample_rate``: no augmentation,
        any voice (pools are not checked), the same samples for the same arguments."""
        if not text.strip():
            raise ValueError("text is empty: nothing to speak")
        with tempfile.TemporaryDirectory(prefix="vla-speech-") as tmp:
            out = Path(tmp) / "speech.wav"
            # text through stdin: an instruction starting with "-" is not read as an option
            cmd = [self.executable, "-v", voice, "-s", str(rate), "-p", str(pitch)]
            cmd += ["-w", str(out), "--stdin"]
            try:
                proc = subprocess.run(
                    cmd, input=text, capture_output=True, text=True, timeout=self.timeout_s
                )
            except subprocess.TimeoutExpired as e:
                raise RuntimeError(
                    f"espeak-ng took longer than timeout_s={self.timeout_s} for text={text!r}; "
                    "shorten the text or raise timeout_s"
                ) from e
            if proc.returncode != 0 or not out.is_file():
                raise RuntimeError(
                    f"espeak-ng failed (exit {proc.returncode}) for voice={voice!r}, text="
                    f"{text!r}: {proc.stderr.strip()}; list voices with `espeak-ng --voices=en`"
                )
            try:
                return load_wav(out, self.sample_rate)  # (S,)
            except ValueError as e:
                raise ValueError(
                    f"espeak-ng produced no usable speech for text={text!r} (voice={voice}): {e}"
                ) from e

    def _check_voices(self, voices: Sequence[str]) -> None:
        """espeak-ng silently ignores an unknown ``+variant``: check names against its data."""
        languages = self._run("--voices")
        known = set(re.findall(r"^\s*\d+\s+(\S+)", languages, flags=re.M))  # Language column
        known |= set(re.findall(r"\((\S+) \d+\)", languages))  # "Other Languages" aliases
        data = re.search(r"Data at:\s*(\S+)", self._run("--version"))
        variants_dir = Path(data.group(1)) / "voices" / "!v" if data else None
        for voice in voices:
            accent, _, variant = voice.partition("+")
            if accent not in known:
                raise ValueError(
                    f"voice {voice!r}: espeak-ng has no accent {accent!r}; pick one listed by "
                    "`espeak-ng --voices=en`"
                )
            if variant and variants_dir is not None and not (variants_dir / variant).is_file():
                raise ValueError(
                    f"voice {voice!r}: espeak-ng has no variant {variant!r} in {variants_dir}; "
                    "pick a file name from there (m1-m7, f1-f5 ...)"
                )

    def _run(self, *args: str) -> str:
        proc = subprocess.run(
            [self.executable, *args], capture_output=True, text=True, timeout=self.timeout_s
        )
        return proc.stdout


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise ``(n,)`` with power spectrum ~ 1 / f**k: white k=0, pink k=1, brown k=2.

    White Gaussian noise shaped in the frequency domain (amplitude ~ f**(-k/2)), DC removed."""
    if color not in _NOISE_EXPONENT:
        raise ValueError(f"color={color!r} must be one of {NOISE_COLORS}")
    white = rng.standard_normal(n)  # (n,)
    if color != "white" and n > 1:
        spectrum = np.fft.rfft(white)  # (n // 2 + 1,)
        freqs = np.fft.rfftfreq(n)  # (n // 2 + 1,) cycles per sample
        gain = np.zeros_like(freqs)  # (n // 2 + 1,) DC stays 0
        gain[1:] = freqs[1:] ** (-_NOISE_EXPONENT[color] / 2)
        white = np.fft.irfft(spectrum * gain, n)  # (n,)
    rms = float(np.sqrt(np.mean(white**2)))
    return white / rms if rms > 0 else white  # (n,)


class InstructionVoice:
    """Speaks an env's instruction for a speech-conditioned policy: ``voice(text) -> (N,)``.

    The operator of an evaluation: each new instruction is spoken by a voice drawn from
    ``split``'s pools (``test``: speakers never heard in training), seeded by the text, so the
    same instruction always sounds the same and two evaluations give the same numbers whatever
    order their episodes run in.

    Args:
        sample_rate: the policy's audio rate (its encoder's).
        split: which voice pools to draw from (``train`` or ``test``).
        seed: seed of the draws (with the text).
        synthesizer: a built ``SpeechSynthesizer`` (default: one with the standard pools).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        split: str = "train",
        seed: int = 0,
        synthesizer: SpeechSynthesizer | None = None,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split={split!r} must be 'train' or 'test'")
        self.synthesizer = synthesizer or SpeechSynthesizer(sample_rate=sample_rate)
        if self.synthesizer.sample_rate != sample_rate:
            raise ValueError(
                f"the synthesizer speaks at {self.synthesizer.sample_rate} Hz but the policy "
                f"listens at {sample_rate} Hz: build it with sample_rate={sample_rate}"
            )
        self.split, self.seed, self.sample_rate = split, seed, sample_rate
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, text: str) -> np.ndarray:
        if text not in self._cache:
            rng = np.random.default_rng([self.seed, zlib.crc32(text.encode())])
            self._cache[text] = self.synthesizer.synthesize(text, rng, self.split)[0]
        return self._cache[text]
