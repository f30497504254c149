"""Audio for spoken instructions: WAV I/O and resampling, a log-mel front end, and an encoder
that turns waveforms ``(B, N)`` into tokens ``(B, P, C)`` for the adapters."""

from vla.audio.audio_encoder import AudioEncoder
from vla.audio.log_mel import LogMel
from vla.audio.wav import load_wav, resample, save_wav

__all__ = ["AudioEncoder", "LogMel", "load_wav", "resample", "save_wav"]
