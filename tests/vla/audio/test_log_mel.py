import math

import pytest
import torch

from vla.audio import LogMel
from vla.audio.log_mel import hz_to_mel, mel_to_hz

SR = 16000


@pytest.mark.parametrize("n", [1, 159, 160, 4000, 12345])
def test_shapes_follow_the_hop(n: int) -> None:
    lm = LogMel(SR, n_fft=400, hop_length=160, n_mels=40)
    out = lm(torch.randn(3, n) * 0.1)
    assert out.shape == (3, 40, n // 160 + 1) == (3, 40, lm.num_frames(n))
    assert torch.isfinite(out).all()


def test_deterministic_and_buffers_are_not_saved() -> None:
    x = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    a, b = LogMel(), LogMel()
    assert torch.equal(a(x), a(x))
    assert torch.equal(a(x), b(x))
    assert a.state_dict() == {}  # window / filterbank are rebuilt from the arguments


def test_silence_is_log_eps() -> None:
    out = LogMel(eps=1e-6)(torch.zeros(1, 1600))
    assert torch.allclose(out, torch.full_like(out, math.log(1e-6)))


def test_slaney_scale_anchor_points() -> None:
    hz = torch.tensor([0.0, 500.0, 1000.0, 6400.0], dtype=torch.float64)
    assert torch.allclose(hz_to_mel(hz), torch.tensor([0.0, 7.5, 15.0, 42.0], dtype=torch.float64))
    assert torch.allclose(mel_to_hz(hz_to_mel(hz)), hz)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3100.0, 6000.0])
def test_pure_tone_peaks_in_the_mel_bin_containing_it(freq: float) -> None:
    lm = LogMel(SR, n_mels=64)
    t = torch.arange(SR) / SR
    out = lm(torch.sin(2 * math.pi * freq * t)[None])  # (1, M, T)
    k = int(out[0, :, 5:-5].mean(dim=1).argmax())  # away from the zero-padded edge frames
    centers = lm.center_freqs
    low = centers[k - 1] if k > 0 else 0.0
    high = centers[k + 1] if k + 1 < len(centers) else SR / 2
    assert low < freq < high, (k, centers[k].item())
    assert abs(centers[k].item() - freq) < 0.1 * freq


def test_f_max_limits_the_filterbank() -> None:
    lm = LogMel(SR, n_mels=32, f_min=100.0, f_max=4000.0)
    assert lm.center_freqs.min() > 100 and lm.center_freqs.max() < 4000
    freqs = torch.linspace(0, SR / 2, 201)
    assert (lm.filterbank[:, freqs > 4000] == 0).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"f_max": 9000.0}, "Nyquist"),
        ({"n_fft": 0}, "n_fft"),
        ({"hop_length": 0}, "hop_length"),
        ({"n_mels": 0}, "n_mels"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"f_min": 5000.0, "f_max": 4000.0}, "f_min"),
        ({"f_min": -1.0}, "f_min"),
        ({"eps": 0.0}, "eps"),
        ({"n_fft": 32, "n_mels": 64}, "cover no FFT bin"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LogMel(**kwargs)


def test_bad_input_shape_or_dtype() -> None:
    lm = LogMel()
    with pytest.raises(ValueError, match=r"expected float \(B, N\)"):
        lm(torch.zeros(1600))
    with pytest.raises(ValueError, match="dtype"):
        lm(torch.zeros(1, 1600, dtype=torch.int16))


def test_log_mel_stays_fp32_under_bf16_autocast():
    mel = LogMel(16000, n_fft=400, hop_length=160, n_mels=40)
    wave = torch.randn(2, 8000) * 0.1  # (B, N)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = mel(wave)  # (B, M, T)
    assert feats.dtype == torch.float32
    torch.testing.assert_close(feats, mel(wave))
