import math
import struct
from pathlib import Path

import numpy as np
import pytest

from vla.audio import load_wav, resample, save_wav


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(round(sr * seconds)) / sr)).astype(np.float32)


def dominant_freq(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[spectrum.argmax()])


def write_riff(
    path: Path, frames: np.ndarray, sr: int, bits: int, is_float: bool, extensible: bool = False
) -> Path:
    """A WAV written by hand (not by the code under test): frames (N, channels) in [-1, 1]."""
    n, ch = frames.shape
    if is_float:
        data = frames.astype("<f4" if bits == 32 else "<f8").tobytes()
    elif bits == 8:
        data = np.round(frames * 127 + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        ints = np.round(frames * (2**23 - 1)).astype("<i4").reshape(-1)
        data = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        data = np.round(frames * (2 ** (bits - 1) - 1)).astype(f"<i{bits // 8}").tobytes()
    tag = 3 if is_float else 1
    block = ch * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, ch, sr, sr * block, block, bits)
    if extensible:  # cbSize, valid bits, channel mask, SubFormat GUID (tag + fixed tail)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + bytes(14)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd chunk + pad byte to skip
    chunks += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    return path


def test_save_load_round_trip_is_atomic(tmp_path: Path) -> None:
    x = sine(440, 16000, 0.5)
    path = save_wav(tmp_path / "a.wav", x, 16000)
    save_wav(path, x, 16000)  # overwriting works too
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temp file left behind
    y = load_wav(path, 16000)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() <= 1 / 32767  # 16-bit quantization


def test_save_wav_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected float mono"):
        save_wav(tmp_path / "a.wav", np.zeros((10, 2), np.float32), 16000)
    with pytest.raises(ValueError, match="NaN"):
        save_wav(tmp_path / "a.wav", np.array([0.0, np.nan]), 16000)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("bits", "is_float", "extensible", "tol"),
    [
        (8, False, False, 1 / 100),
        (16, False, False, 1e-4),
        (24, False, True, 1e-6),
        (32, False, False, 1e-6),
        (32, True, False, 1e-7),
        (64, True, True, 1e-7),
    ],
)
def test_sample_formats_and_stereo_to_mono(
    tmp_path: Path, bits: int, is_float: bool, extensible: bool, tol: float
) -> None:
    left, right = sine(300, 8000, 0.25, amp=0.5), sine(300, 8000, 0.25, amp=-0.3)
    path = write_riff(
        tmp_path / "s.wav", np.stack([left, right], 1), 8000, bits, is_float, extensible
    )
    y = load_wav(path, 8000)
    assert y.dtype == np.float32 and y.shape == left.shape
    np.testing.assert_allclose(y, (left + right) / 2, atol=tol)  # channel mean


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (22050, 16000), (8000, 16000)])
def test_resample_keeps_frequency_and_duration(orig: int, new: int) -> None:
    x = sine(1000, orig, 1.0)
    y = resample(x, orig, new)
    assert y.dtype == np.float32
    assert y.size == math.ceil(x.size * new / orig)  # same duration
    assert dominant_freq(y, new) == pytest.approx(1000, abs=2)
    ref = sine(1000, new, 1.0)
    np.testing.assert_allclose(y[100:-100], ref[100:-100], atol=1e-3)  # amplitude and phase


def test_resample_removes_frequencies_above_the_new_nyquist() -> None:
    # a 7 kHz tone would alias to 1 kHz at 8 kHz without the low-pass
    y = resample(sine(7000, 44100, 1.0), 44100, 8000)
    assert np.sqrt(np.mean(y[200:-200] ** 2)) < 1e-3


def test_load_wav_resamples_to_the_requested_rate(tmp_path: Path) -> None:
    path = save_wav(tmp_path / "a.wav", sine(1000, 22050, 0.5), 22050)
    y = load_wav(path, 16000)
    assert y.size == 8000
    assert dominant_freq(y, 16000) == pytest.approx(1000, abs=4)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        load_wav(tmp_path / "nope.wav", 16000)


def test_not_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is text, not audio")
    with pytest.raises(ValueError, match=r"notes\.wav: not a WAV file.*convert"):
        load_wav(path, 16000)
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    with pytest.raises(ValueError, match=r"cut\.wav: unreadable WAV"):
        load_wav(truncated, 16000)


@pytest.mark.parametrize("amp", [0.0, 10 ** (-70 / 20)])  # digital silence, and -70 dBFS
def test_silent_clip(tmp_path: Path, amp: float) -> None:
    path = write_riff(tmp_path / "quiet.wav", sine(440, 16000, 0.2, amp)[:, None], 16000, 32, True)
    with pytest.raises(ValueError, match=r"quiet\.wav: the clip is silent.*min_peak_db"):
        load_wav(path, 16000)
    if amp > 0:  # a quiet but real clip passes when the threshold is lowered
        assert load_wav(path, 16000, min_peak_db=-80).size == 3200


def test_too_long_clip(tmp_path: Path) -> None:
    path = save_wav(tmp_path / "long.wav", sine(440, 16000, 5.0), 16000)
    with pytest.raises(ValueError, match=r"long\.wav: the clip is 5\.00 s.*max_seconds=4\.0.*trim"):
        load_wav(path, 16000, max_seconds=4.0)
    assert load_wav(path, 16000, max_seconds=5.0).size == 80000


def test_empty_wav(tmp_path: Path) -> None:
    path = save_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match="no samples"):
        load_wav(path, 16000)
