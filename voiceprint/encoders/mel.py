"""Log-mel front ends of the PaddleSpeech models, in numpy (no paddle import).

The same arithmetic as PaddleSpeech 1.5.0's
``paddlespeech.audio.compliance.librosa`` (``melspectrogram``: centred
frames with reflect padding, periodic Hann window, power spectrum, Slaney
mel filterbank, ``10 log10(max(1e-10, power))``) and paddle's
``paddle.audio.features.LogMelSpectrogram``, which use the same window,
filterbank and dB scale. ``tests/test_encoders_paddle.py`` compares both
against PaddleSpeech's own code. Both follow librosa (ISC licence).
Units: Hz, samples; output in dB (reference power 1).
"""
from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache
from typing import Any

import numpy as np


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep,
                    f / f_sp)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=8)
def slaney_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised triangular mel filters ``(n_mels, n_fft // 2 + 1)``, float32."""
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=8)
def hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window, zero-padded to ``n_fft`` around the centre."""
    n = np.arange(win_length)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * n / win_length)
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left)).astype(np.float64)


def power_spectrogram(x: np.ndarray, n_fft: int, hop: int, win_length: int,
                      pad_mode: str = "reflect") -> np.ndarray:
    """``|STFT|^2`` of centred frames (``pad_mode``: "reflect" as PaddleSpeech,
    "constant" = zeros as librosa >= 0.10): ``(frames, n_fft // 2 + 1)`` float32."""
    import scipy.fft

    xp = np.pad(np.asarray(x, dtype=np.float32), n_fft // 2, mode=pad_mode)  # type: ignore[call-overload]
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop]
    spec = scipy.fft.rfft(frames * hann_window(win_length, n_fft), axis=1, workers=1)
    return (spec.real * spec.real + spec.imag * spec.imag).astype(np.float32)


def log_mel(x: np.ndarray, *, sr: int, n_fft: int, hop: int, n_mels: int, fmin: float,
            fmax: float, win_length: int | None = None) -> np.ndarray:
    """Log-mel power spectrogram ``(frames, n_mels)`` in dB, float32."""
    power = power_spectrogram(x, n_fft, hop, win_length or n_fft)
    mel = power @ slaney_filterbank(sr, n_fft, n_mels, float(fmin), float(fmax)).T
    return (10.0 * np.log10(np.maximum(mel, 1e-10))).astype(np.float32)


def mel_power(x: np.ndarray, *, sr: int, n_fft: int, hop: int, n_mels: int, fmin: float,
              fmax: float, pad_mode: str = "reflect") -> np.ndarray:
    """Mel power spectrogram ``(frames, n_mels)`` float32 (no log), as
    ``librosa.feature.melspectrogram`` computes it."""
    power = power_spectrogram(x, n_fft, hop, n_fft, pad_mode)
    return (power @ slaney_filterbank(sr, n_fft, n_mels, float(fmin), float(fmax)).T).astype(np.float32)


def peak_normalize(x: np.ndarray) -> np.ndarray:
    """PaddleSpeech's ``normalize(x, "linear")``: divide by ``max|x| + 1e-8``."""
    return (x / (np.max(np.abs(x)) + 1e-8)).astype(np.float32)


_BLAS_CONTROLLER: Any = None


def single_threaded_blas() -> Any:
    """Context limiting numpy's BLAS to one thread (via threadpoolctl, when
    installed). The front ends' small matrix products run several times
    faster that way: threading them costs more than it saves, and idle BLAS
    threads spin on the cores the model needs."""
    global _BLAS_CONTROLLER
    try:
        if _BLAS_CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _BLAS_CONTROLLER = ThreadpoolController()
        return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")
    except Exception:  # threadpoolctl missing or failing: run as is
        return nullcontext()
