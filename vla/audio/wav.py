"""Read, check, resample and write WAV files with numpy and the standard library only.

``load_wav`` parses the RIFF container itself (Python 3.11's ``wave`` module reads neither float
samples nor ``WAVE_FORMAT_EXTENSIBLE`` headers, which 24-bit and multi-channel files often use):
integer PCM of 8 / 16 / 24 / 32 bits and IEEE float of 32 / 64 bits, any channel count (averaged
to mono). ``resample`` is a windowed-sinc (Kaiser) interpolator evaluated at every output time, so
any pair of rates works; downsampling lowers the cutoff to the new Nyquist frequency
(anti-aliasing), as resampy / torchaudio do.
"""

from __future__ import annotations

import math
import os
import struct
import wave as wavefile
from pathlib import Path

import numpy as np

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


def load_wav(
    path: str | Path,
    sample_rate: int,
    max_seconds: float | None = None,
    min_peak_db: float = -60.0,
) -> np.ndarray:
    """A WAV file as mono float32 ``(N,)`` in [-1, 1] at ``sample_rate`` Hz.

    Args:
        path: the ``.wav`` file.
        sample_rate: rate to return; the file is resampled when its own rate differs.
        max_seconds: longest clip accepted (the model's audio context); None: no limit.
        min_peak_db: a clip whose peak is below this level (dBFS) is rejected as silent.
    """
    path = Path(path)
    if sample_rate < 1:
        raise ValueError(f"sample_rate={sample_rate} must be >= 1 Hz")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such audio file; check the path (a .wav file)")
    samples, file_rate = _read_riff(path)  # (N, channels)
    mono = samples.mean(axis=1, dtype=np.float64).astype(np.float32)  # (N,)
    if mono.size == 0:
        raise ValueError(f"{path}: the WAV file holds no samples; record or export it again")
    seconds = mono.size / file_rate
    if max_seconds is not None and seconds > max_seconds:
        raise ValueError(
            f"{path}: the clip is {seconds:.2f} s long, longer than max_seconds={max_seconds} "
            f"(the model's audio context): trim it to at most {max_seconds} s, e.g. "
            f"`sox {path} trimmed.wav trim 0 {max_seconds}`"
        )
    peak = float(np.abs(mono).max())
    peak_db = 20 * np.log10(peak) if peak > 0 else -np.inf
    if peak_db < min_peak_db:
        raise ValueError(
            f"{path}: the clip is silent (peak {peak_db:.1f} dBFS, below min_peak_db="
            f"{min_peak_db}); check the microphone / recording level, or lower min_peak_db"
        )
    if file_rate != sample_rate:
        mono = resample(mono, file_rate, sample_rate)  # (N * sample_rate / file_rate,)
    return mono


def save_wav(path: str | Path, wave: np.ndarray, sample_rate: int) -> Path:
    """Write mono float ``(N,)`` in [-1, 1] as 16-bit PCM, atomically (temp file, then rename).

    Samples outside [-1, 1] are clipped."""
    path = Path(path)
    data = np.asarray(wave)
    if data.ndim != 1 or not np.issubdtype(data.dtype, np.floating):
        raise ValueError(
            f"wave has shape {data.shape} and dtype {data.dtype}; expected float mono (N,)"
        )
    if not np.isfinite(data).all():
        raise ValueError(f"wave for {path} holds NaN or inf samples; fix the signal first")
    if sample_rate < 1:
        raise ValueError(f"sample_rate={sample_rate} must be >= 1 Hz")
    pcm = np.round(np.clip(data, -1.0, 1.0) * 32767).astype("<i2")  # (N,)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with wavefile.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def resample(
    wave: np.ndarray,
    orig_sr: int,
    new_sr: int,
    zero_crossings: int = 16,
    rolloff: float = 0.9,
    beta: float = 8.6,
) -> np.ndarray:
    """Band-limited resampling of ``(N,)`` from ``orig_sr`` to ``new_sr``: ``ceil(N * new / orig)``.

    Every output sample at time ``t`` (in input samples) is ``sum_i x[i] h(t - i)`` with ``h`` a
    Kaiser-windowed sinc of ``zero_crossings`` lobes per side, cut off at
    ``rolloff * min(orig, new) / 2`` Hz, so frequencies above the new Nyquist frequency are removed
    before they can alias (close to resampy's ``kaiser_fast``: 16 zero crossings, beta 8.6; Smith, "Digital Audio Resampling",
    ccrma.stanford.edu/~jos/resample). Integer rates make the fractional part of ``t`` repeat
    every ``new_sr / gcd`` outputs, so the filter is tabulated once per phase (polyphase).
    """
    x = np.asarray(wave, dtype=np.float64)  # (N,)
    if x.ndim != 1:
        raise ValueError(f"resample takes mono (N,), got shape {x.shape}; average channels first")
    if int(orig_sr) != orig_sr or int(new_sr) != new_sr or orig_sr < 1 or new_sr < 1:
        raise ValueError(
            f"sample rates must be integers >= 1 Hz, got orig_sr={orig_sr}, new_sr={new_sr}"
        )
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr == new_sr or x.size == 0:
        return x.astype(np.float32)
    g = math.gcd(orig_sr, new_sr)
    up, down = new_sr // g, orig_sr // g  # output j sits at input time j * down / up
    scale = min(1.0, new_sr / orig_sr) * rolloff  # cutoff, as a fraction of the input Nyquist
    width = zero_crossings / scale  # window half-width in input samples
    half = math.ceil(width)
    offsets = np.arange(-half, half + 2)  # (K,) taps from floor(t) - half to floor(t) + half + 1
    frac = (np.arange(up) * down % up) / up  # (up,) fractional part of t for each phase
    d = frac[:, None] - offsets  # (up, K) distance from t to each tap, in input samples
    window = np.i0(beta * np.sqrt(np.clip(1 - (d / width) ** 2, 0.0, None))) / np.i0(beta)
    table = np.where(np.abs(d) <= width, scale * np.sinc(scale * d) * window, 0.0)  # (up, K)
    n_out = -(-x.size * up // down)  # ceil without float error
    padded = np.concatenate([np.zeros(half), x, np.zeros(half + 2)])  # zeros outside the clip
    out = np.empty(n_out, dtype=np.float64)  # (M,)
    block = max(1, 2**20 // offsets.size)  # outputs per block: bounds temporaries to ~8 MB
    for start in range(0, n_out, block):
        j = np.arange(start, min(start + block, n_out))  # (m,) output indices
        base = j * down // up  # (m,) floor(t)
        taps = padded[base[:, None] + offsets + half]  # (m, K)
        out[start : start + j.size] = (taps * table[j % up]).sum(axis=1)  # (m,)
    return out.astype(np.float32)


def _read_riff(path: Path) -> tuple[np.ndarray, int]:
    """Samples ``(N, channels)`` float32 in [-1, 1] and the sample rate of a RIFF/WAVE file."""
    data = path.read_bytes()
    not_wav = (
        f"{path}: not a WAV file (no RIFF/WAVE header); convert it, e.g. `ffmpeg -i IN OUT.wav`"
    )
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(not_wav)
    fmt: tuple[int, int, int, int] | None = None
    samples: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]  # a streamed file's data size may overrun: clip
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise ValueError(f"{path}: truncated WAV 'fmt ' chunk; the file is damaged")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]  # first 2 bytes of the SubFormat GUID
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            samples = body
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    if fmt is None or samples is None:
        raise ValueError(
            f"{path}: unreadable WAV (no 'fmt ' or 'data' chunk); the file is damaged or "
            "truncated: export it again"
        )
    tag, channels, rate, bits = fmt
    if channels < 1 or rate < 1:
        raise ValueError(f"{path}: WAV header says {channels} channels at {rate} Hz; damaged file")
    width = bits // 8
    if (tag, bits) not in {
        (_PCM, 8),
        (_PCM, 16),
        (_PCM, 24),
        (_PCM, 32),
        (_FLOAT, 32),
        (_FLOAT, 64),
    }:
        kind = {_PCM: "integer PCM", _FLOAT: "float"}.get(tag, f"format tag {tag:#06x}")
        raise ValueError(
            f"{path}: {bits}-bit {kind} WAV is not supported; convert it to 16-bit PCM, "
            f"e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`"
        )
    frame = width * channels
    raw = np.frombuffer(samples[: len(samples) // frame * frame], dtype=np.uint8)  # (N * frame,)
    if tag == _FLOAT:
        values = raw.view("<f4" if bits == 32 else "<f8").astype(np.float32)  # (N * ch,)
    elif bits == 8:  # unsigned, centered on 128
        values = (raw.astype(np.float32) - 128) / 128  # (N * ch,)
    elif bits == 24:  # three little-endian bytes: shift into the top of an int32
        b = raw.reshape(-1, 3).astype(np.int32)  # (N * ch, 3)
        ints = (b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 8  # (N * ch,) sign-extended
        values = ints.astype(np.float32) / 2**23  # (N * ch,)
    else:
        ints = raw.view("<i2" if bits == 16 else "<i4")  # (N * ch,)
        values = (ints / float(2 ** (bits - 1))).astype(np.float32)  # (N * ch,)
    values = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0)  # (N * ch,)
    return values.reshape(-1, channels), rate  # (N, ch)
