import shutil
from pathlib import Path

import numpy as np
import pytest

from policies.speech import TEST_VOICES, TRAIN_VOICES, SpeechSynthesizer, colored_noise

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make speech-deps)"
)
TEXT = "touch the red cube"


@pytest.fixture(scope="module")
def synth() -> SpeechSynthesizer:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (make speech-deps)")
    return SpeechSynthesizer()


@needs_espeak
@pytest.mark.parametrize("split", ["train", "test"])
def test_synthesize_gives_plausible_speech(synth: SpeechSynthesizer, split: str) -> None:
    wave, sr, meta = synth.synthesize(TEXT, np.random.default_rng(0), split)
    assert sr == 16000 and wave.dtype == np.float32 and wave.ndim == 1
    assert 0.6 < wave.size / sr < 3.5  # four words, plus at most 0.5 s of added silence
    assert 10 ** (-21 / 20) < np.abs(wave).max() <= 1.0  # speech at its drawn level, no clipping
    assert meta["voice"] in synth.pools[split]["voice"]
    assert meta["rate"] in synth.pools[split]["rate"]
    assert meta["pitch"] in synth.pools[split]["pitch"]
    # the speech sits between the silences: louder there than in the noise-only lead
    lead = round(meta["lead_s"] * sr)
    speech_rms = np.sqrt(np.mean(wave[lead:] ** 2))
    if lead > 160:
        assert speech_rms > 3 * np.sqrt(np.mean(wave[:lead] ** 2))


@needs_espeak
def test_noise_is_at_the_drawn_snr(synth: SpeechSynthesizer) -> None:
    s = SpeechSynthesizer(snr_db=(15.0, 15.0), noise_colors=["white"], silence_seconds=(0.5, 0.5))
    wave, sr, meta = s.synthesize(TEXT, np.random.default_rng(4), "train")
    clean = s.speak(TEXT, meta["voice"], meta["rate"], meta["pitch"])
    clean = clean * 10 ** (meta["level_dbfs"] / 20) / np.abs(clean).max()
    noise_power = np.mean(wave[: sr // 2] ** 2)  # the leading 0.5 s holds only noise
    snr = 10 * np.log10(np.mean(clean**2) / noise_power)
    assert snr == pytest.approx(15.0, abs=0.5)
    assert wave.size == clean.size + sr


def test_train_and_test_pools_are_disjoint() -> None:
    assert TRAIN_VOICES and TEST_VOICES and not set(TRAIN_VOICES) & set(TEST_VOICES)
    accents = [{v.split("+")[0] for v in pool} for pool in (TRAIN_VOICES, TEST_VOICES)]
    variants = [{v.split("+")[1] for v in pool} for pool in (TRAIN_VOICES, TEST_VOICES)]
    assert not accents[0] & accents[1] and not variants[0] & variants[1]


@needs_espeak
def test_pools_are_disjoint_and_checked(synth: SpeechSynthesizer) -> None:
    train, test = synth.pools["train"], synth.pools["test"]
    for kind in ("voice", "rate", "pitch"):
        assert not set(train[kind]) & set(test[kind]), kind
    with pytest.raises(ValueError, match="share"):
        SpeechSynthesizer(test_voices=["en-us+m1"])
    with pytest.raises(ValueError, match="no variant 'm99'"):  # espeak-ng would ignore it silently
        SpeechSynthesizer(train_voices=["en-us+m99"])
    with pytest.raises(ValueError, match="no accent"):
        SpeechSynthesizer(train_voices=["xx-yy+m1"])


@needs_espeak
def test_every_default_voice_speaks_differently(synth: SpeechSynthesizer) -> None:
    digests = {}
    for voice in TRAIN_VOICES + TEST_VOICES:
        wave = synth.speak("go", voice, 175, 50)
        assert np.abs(wave).max() > 0.05, voice
        digests[wave.tobytes()] = voice
    assert len(digests) == len(TRAIN_VOICES) + len(TEST_VOICES)  # no variant silently ignored


@needs_espeak
def test_same_seed_same_audio_different_seed_different(synth: SpeechSynthesizer) -> None:
    a, _, meta_a = synth.synthesize(TEXT, np.random.default_rng(7), "train")
    b, _, meta_b = synth.synthesize(TEXT, np.random.default_rng(7), "train")
    assert np.array_equal(a, b) and meta_a == meta_b
    c, _, meta_c = synth.synthesize(TEXT, np.random.default_rng(8), "train")
    assert meta_c != meta_a and not (a.shape == c.shape and np.array_equal(a, c))
    # espeak-ng itself is deterministic for the same arguments
    assert np.array_equal(synth.speak(TEXT, "en-us+m3", 160), synth.speak(TEXT, "en-us+m3", 160))


@needs_espeak
def test_max_seconds_shrinks_silence_or_rejects(synth: SpeechSynthesizer) -> None:
    speech = synth.speak(TEXT, "en-us+m1", 140, 35).size / 16000
    s = SpeechSynthesizer(max_seconds=speech + 0.1, silence_seconds=(1.0, 1.0))
    for seed in range(3):
        wave, sr, _ = s.synthesize(TEXT, np.random.default_rng(seed), "train")
        assert wave.size / sr <= speech + 0.1 + 1e-3
    with pytest.raises(ValueError, match=r"longer than max_seconds=0\.3.*shorten"):
        SpeechSynthesizer(max_seconds=0.3).synthesize(TEXT, np.random.default_rng(0))


@needs_espeak
def test_bad_split_and_text(synth: SpeechSynthesizer) -> None:
    with pytest.raises(ValueError, match="split='val'"):
        synth.synthesize(TEXT, np.random.default_rng(0), "val")
    with pytest.raises(ValueError, match="empty"):
        synth.synthesize("  ", np.random.default_rng(0))
    wave, _, _ = synth.synthesize("-left", np.random.default_rng(0))  # not read as an option
    assert wave.size > 8000


def test_missing_espeak_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    with pytest.raises(FileNotFoundError, match=r"espeak-ng not found.*apt-get install espeak-ng"):
        SpeechSynthesizer()


def test_colored_noise_spectra() -> None:
    n = 2**15
    low_share = {}
    for color in ("white", "pink", "brown"):
        x = colored_noise(n, color, np.random.default_rng(0))
        assert np.array_equal(x, colored_noise(n, color, np.random.default_rng(0)))
        assert np.sqrt(np.mean(x**2)) == pytest.approx(1.0)
        power = np.abs(np.fft.rfft(x)) ** 2
        low_share[color] = power[1 : n // 64].sum() / power[1:].sum()  # share below 1/64 band
    assert low_share["white"] == pytest.approx(1 / 32, rel=0.2)
    assert low_share["white"] < low_share["pink"] < low_share["brown"]
    with pytest.raises(ValueError, match="color"):
        colored_noise(10, "blue", np.random.default_rng(0))
