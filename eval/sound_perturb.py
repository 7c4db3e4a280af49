"""Near-duplicate perturbations of a sound, as a re-upload would change it.

Each perturbation takes mono float32 samples at their original rate and
returns the **bytes of the file a user would upload** (WAV 16-bit unless the
perturbation is a codec), or ``None`` when it does not apply to the clip
(too short for a cut, or an excerpt that would be silence). The evaluation
decodes those bytes as the service does, so codecs and 16-bit quantisation
really happen.

| name | what |
|---|---|
| gain_-12dB | level down 12 dB |
| noise_20dB / noise_10dB | white Gaussian noise 20 / 10 dB below the clip's mean power |
| resample_8k | down to 8 kHz and back to the original rate (soxr HQ) |
| mp3_64k | MP3 through libsndfile/LAME, constant bit rate (64 kbps for 44.1 kHz mono) |
| ogg_q | Ogg Vorbis through libsndfile, about 64 kbps |
| speed_0.9 / speed_1.1 | played 0.9x / 1.1x as fast (tape style: pitch follows) |
| cut_0.5s | the first 0.5 s removed (clips of 1 s or more) |
| excerpt_0.5s | a 0.5 s excerpt at a random offset (clips of 1 s or more) |
| keep_70% / keep_30% | a 70% / 30% excerpt at a random offset (the 30% one at least 0.2 s long) |

Random choices (noise, offsets) come from the ``rng`` passed in, so a run is
reproducible from its seed. An excerpt must reach 5% of the clip's peak;
up to 20 offsets are tried before the clip is skipped.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
import soundfile as sf

from voiceprint.audio.resample import resample

Perturbation = Callable[[np.ndarray, int, np.random.Generator], "bytes | None"]

#: libsndfile MP3 compression level giving 64 kbps CBR for 44.1 kHz mono (measured)
MP3_LEVEL = 0.875
#: libsndfile Vorbis compression level giving about 64 kbps for 44.1 kHz mono (measured)
OGG_LEVEL = 0.9


def wav_bytes(x: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), int(sr), format="WAV", subtype="PCM_16")
    return buf.getvalue()


#: sample rates an MPEG-1/2/2.5 layer III stream can have (Hz)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def codec_bytes(x: np.ndarray, sr: int, fmt: str) -> bytes:
    """MP3 or Ogg Vorbis bytes; MP3 goes to the nearest rate MPEG allows first (as encoders do)."""
    buf = io.BytesIO()
    y = np.clip(x, -1.0, 1.0)
    if fmt == "MP3":
        rate = min(MP3_RATES, key=lambda r: (abs(r - sr), -r))
        if rate != sr:
            y, sr = np.clip(resample(y, sr, rate), -1.0, 1.0), rate
        sf.write(buf, y, int(sr), format="MP3", bitrate_mode="CONSTANT", compression_level=MP3_LEVEL)
    else:
        sf.write(buf, y, int(sr), format="OGG", subtype="VORBIS", compression_level=OGG_LEVEL)
    return buf.getvalue()


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise ``snr_db`` dB below the clip's mean power."""
    power = float(np.mean(np.asarray(x, dtype=np.float64) ** 2))
    noise = rng.standard_normal(x.size) * np.sqrt(power / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


def change_speed(x: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Play ``factor`` times as fast: ``len / factor`` samples, pitch scaled by ``factor``."""
    return resample(x, int(round(sr * factor)), sr)


def excerpt(x: np.ndarray, n: int, rng: np.random.Generator, tries: int = 20) -> np.ndarray | None:
    """``n`` consecutive samples at a random offset that are not near-silent, or None."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if n >= x.size or peak <= 0:
        return None
    for _ in range(tries):
        start = int(rng.integers(0, x.size - n + 1))
        part = x[start:start + n]
        if float(np.max(np.abs(part))) >= 0.05 * peak:
            return part
    return None


def _cut(seconds: float) -> Perturbation:
    def run(x: np.ndarray, sr: int, rng: np.random.Generator) -> bytes | None:
        if x.size < 2 * seconds * sr:
            return None
        return wav_bytes(x[int(seconds * sr):], sr)
    return run


def _excerpt_seconds(seconds: float) -> Perturbation:
    def run(x: np.ndarray, sr: int, rng: np.random.Generator) -> bytes | None:
        if x.size < 2 * seconds * sr:
            return None
        part = excerpt(x, int(seconds * sr), rng)
        return None if part is None else wav_bytes(part, sr)
    return run


def _excerpt_share(share: float, min_seconds: float = 0.2) -> Perturbation:
    def run(x: np.ndarray, sr: int, rng: np.random.Generator) -> bytes | None:
        n = int(share * x.size)
        if n < min_seconds * sr:
            return None
        part = excerpt(x, n, rng)
        return None if part is None else wav_bytes(part, sr)
    return run


PERTURBATIONS: dict[str, Perturbation] = {
    "gain_-12dB": lambda x, sr, rng: wav_bytes(x * 10 ** (-12 / 20), sr),
    "noise_20dB": lambda x, sr, rng: wav_bytes(add_noise(x, 20, rng), sr),
    "noise_10dB": lambda x, sr, rng: wav_bytes(add_noise(x, 10, rng), sr),
    "resample_8k": lambda x, sr, rng: wav_bytes(resample(resample(x, sr, 8000), 8000, sr), sr),
    "mp3_64k": lambda x, sr, rng: codec_bytes(x, sr, "MP3"),
    "ogg_q": lambda x, sr, rng: codec_bytes(x, sr, "OGG"),
    "speed_0.9": lambda x, sr, rng: wav_bytes(change_speed(x, sr, 0.9), sr),
    "speed_1.1": lambda x, sr, rng: wav_bytes(change_speed(x, sr, 1.1), sr),
    "cut_0.5s": _cut(0.5),
    "excerpt_0.5s": _excerpt_seconds(0.5),
    "keep_70%": _excerpt_share(0.7),
    "keep_30%": _excerpt_share(0.3),
}

#: the issue's targets: perturbation -> minimum share of queries with the original in the top 3
TARGETS_TOP3: dict[str, float] = {
    "gain_-12dB": 0.98, "resample_8k": 0.98, "mp3_64k": 0.98, "ogg_q": 0.98,
    "speed_0.9": 0.98, "speed_1.1": 0.98, "noise_20dB": 0.95, "cut_0.5s": 0.95,
    "excerpt_0.5s": 0.95, "noise_10dB": 0.85, "keep_30%": 0.85,
}
