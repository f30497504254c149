"""Log-mel spectrogram front end in pure torch: waveform ``(B, N)`` -> ``(B, n_mels, frames)``.

Short-time power spectrum (Hann window, ``torch.stft``) projected onto a triangular mel filterbank
on the **Slaney** mel scale with Slaney area normalization -- librosa's default
(``librosa.filters.mel``), which Whisper's front end also uses: linear below 1 kHz, logarithmic
above, so low filters stay wider than an FFT bin at ``n_fft=400``. Frames are centered on
``t * hop_length`` with *zero* padding (not reflection), so a clip gives exactly the first frames
of the same clip followed by zeros: padded batches and single clips agree on the real frames
(``AudioEncoder`` relies on it). Frames: ``N // hop_length + 1``.
"""

import math

import torch
from torch import Tensor, nn

# Slaney mel scale (Auditory Toolbox; librosa htk=False): linear up to 1 kHz, log above
_F_SP = 200.0 / 3  # Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15 mel
_LOG_STEP = math.log(6.4) / 27.0  # log-region step: 27 mels per factor 6.4


def hz_to_mel(hz: Tensor) -> Tensor:
    """Slaney mel of frequencies in Hz (any shape)."""
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + torch.log(hz.clamp(min=_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return torch.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: Tensor) -> Tensor:
    """Inverse of ``hz_to_mel``."""
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * torch.exp(_LOG_STEP * (mel - _MIN_LOG_MEL))
    return torch.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float
) -> tuple[Tensor, Tensor]:
    """Triangular Slaney filters ``(n_mels, n_fft // 2 + 1)`` and their center frequencies (Hz).

    Each filter has unit area (Slaney norm ``2 / (f_hi - f_lo)``), as in librosa ``norm="slaney"``.
    """
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)  # (F,)
    mels = torch.linspace(
        hz_to_mel(torch.tensor(f_min, dtype=torch.float64)).item(),
        hz_to_mel(torch.tensor(f_max, dtype=torch.float64)).item(),
        n_mels + 2,
        dtype=torch.float64,
    )  # (M + 2,) filter edges, evenly spaced in mel
    edges = mel_to_hz(mels)  # (M + 2,) Hz
    lo, center, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1) each
    rising = (fft_freqs - lo) / (center - lo)  # (M, F)
    falling = (hi - fft_freqs) / (hi - center)  # (M, F)
    weights = torch.minimum(rising, falling).clamp(min=0)  # (M, F)
    weights = weights * (2.0 / (hi - lo))  # (M, F) unit-area triangles
    return weights.float(), edges[1:-1].float()


class LogMel(nn.Module):
    """Waveform ``(B, N)`` float in [-1, 1] -> natural-log mel power ``(B, n_mels, frames)``.

    Args:
        sample_rate: rate of the input waveform in Hz.
        n_fft: FFT size and Hann window length in samples (400 = 25 ms at 16 kHz).
        hop_length: samples between frames (160 = 10 ms at 16 kHz).
        n_mels: number of mel filters.
        f_min, f_max: filterbank range in Hz; ``f_max=None`` means ``sample_rate / 2``.
        eps: floor added before the log, so silence gives ``log(eps)`` instead of ``-inf``.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 400,
        hop_length: int = 160,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("sample_rate", sample_rate, 1),
            ("n_fft", n_fft, 2),
            ("hop_length", hop_length, 1),
            ("n_mels", n_mels, 1),
        ):
            if int(value) != value or value < low:
                raise ValueError(f"{name}={value} must be an integer >= {low}")
        nyquist = sample_rate / 2
        f_max = nyquist if f_max is None else float(f_max)
        if not 0 <= f_min < f_max:
            raise ValueError(f"f_min={f_min} must be >= 0 and < f_max={f_max}")
        if f_max > nyquist:
            raise ValueError(
                f"f_max={f_max} is above the Nyquist frequency sample_rate / 2 = {nyquist}: "
                "set f_max <= sample_rate / 2 (or null for exactly that)"
            )
        if eps <= 0:
            raise ValueError(f"eps={eps} must be > 0 (it keeps log() finite on silence)")
        weights, centers = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max)
        empty = (weights.sum(dim=1) == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(
                f"n_mels={n_mels} is too many for n_fft={n_fft} between {f_min} and {f_max} Hz: "
                f"mel filters {empty} cover no FFT bin; lower n_mels or raise n_fft"
            )
        self.sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), hop_length
        self.n_mels, self.f_min, self.f_max, self.eps = int(n_mels), float(f_min), f_max, eps
        # derived from the arguments, so not saved in checkpoints
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)  # (n_fft,)
        self.register_buffer("filterbank", weights, persistent=False)  # (M, n_fft // 2 + 1)
        self.register_buffer("center_freqs", centers, persistent=False)  # (M,) Hz

    def num_frames(self, num_samples: int | Tensor) -> int | Tensor:
        """Frames for a clip of ``num_samples`` samples (int or integer tensor)."""
        return num_samples // self.hop_length + 1

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.ndim != 2 or not waveform.is_floating_point():
            raise ValueError(
                f"waveform has shape {tuple(waveform.shape)} and dtype {waveform.dtype}; "
                "expected float (B, N): add a batch axis with waveform[None]"
            )
        # fp32 even under bf16 autocast: power spans decades, and the log of a bf16 mel sum
        # would quantize quiet bands (8-bit mantissa)
        with torch.autocast(waveform.device.type, enabled=False):
            return self._log_mel(waveform.float())  # (B, M, T)

    def _log_mel(self, waveform: Tensor) -> Tensor:
        spec = torch.stft(
            waveform,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",  # zeros, so padding a clip does not change its frames
            return_complex=True,
        )  # (B, n_fft // 2 + 1, T)
        power = spec.real.square() + spec.imag.square()  # (B, F, T)
        mel = torch.matmul(self.filterbank, power)  # (B, M, T)
        return torch.log(mel + self.eps)  # (B, M, T)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
            f"n_mels={self.n_mels}, f_min={self.f_min}, f_max={self.f_max}"
        )
