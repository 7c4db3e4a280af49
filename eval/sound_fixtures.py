"""Generated sounds, their near-duplicate perturbations and a small CNN14 checkpoint.

Shared by the sound-search tests and ``eval.bench_sounds``. Everything is
made with numpy (plus FSDD speech when ``../shared/data/fsdd`` is present):

* families: harmonic tones with envelopes, linear/exponential chirps,
  band-limited noise bursts, click trains, FM/AM tones, short melodies and
  (optionally) spoken digit sequences; 1.5-4 s long, stored at assorted
  sample rates (16-48 kHz) in WAV, FLAC or OGG;
* perturbations of an item, as a re-upload would change it: gain -6 dB,
  white noise at 20 dB SNR, the first 0.5 s cut off, resampled to another
  rate (and re-encoded).

The checkpoint is PaddleSpeech's CNN14 layout (``cnn14.pdparams`` +
``panns.yaml``) with fewer channels and random weights, written by
:func:`eval.encoder_seeds.write_small_cnn14_checkpoint`. The pytest fixtures
built on these are in ``tests/sound_fixtures.py``.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import soundfile as sf

#: sample rates (Hz) the generated library is stored at, in rotation
RATES = (44100, 32000, 22050, 48000, 16000)
#: container formats, in rotation (libsndfile names)
FORMATS = ("WAV", "FLAC", "OGG", "WAV")
SUFFIX = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg"}
CONTENT_TYPE = {"WAV": "audio/wav", "FLAC": "audio/flac", "OGG": "audio/ogg"}


@dataclass
class Sound:
    """A generated clip: mono float32 ``samples`` in [-1, 1] at ``sample_rate`` Hz."""

    name: str
    family: str
    samples: np.ndarray
    sample_rate: int
    fmt: str = "WAV"
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return self.name + SUFFIX[self.fmt]

    def encode(self) -> bytes:
        return encode(self.samples, self.sample_rate, self.fmt)


def encode(samples: np.ndarray, sample_rate: int, fmt: str = "WAV") -> bytes:
    """Bytes of an audio file (WAV 16-bit, FLAC 16-bit or OGG/Vorbis)."""
    buf = io.BytesIO()
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}[fmt]
    sf.write(buf, np.clip(samples, -1, 1), sample_rate, format=fmt, subtype=subtype)
    return buf.getvalue()


# -- generators (each returns float32 samples with peak about 0.7) -------------
def _t(sr: int, seconds: float) -> np.ndarray:
    return np.arange(int(sr * seconds)) / sr


def _peak(x: np.ndarray, level: float = 0.7) -> np.ndarray:
    return (level * x / max(float(np.abs(x).max()), 1e-9)).astype(np.float32)


def _adsr(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    env = np.ones(n)
    a, r = max(1, int(attack * sr)), max(1, int(release * sr))
    env[:a] = np.linspace(0, 1, a)
    env[-r:] *= np.linspace(1, 0, r)
    return env


def tone(sr: int, seconds: float, f0: float, decay: float, attack: float) -> np.ndarray:
    t = _t(sr, seconds)
    x = sum(np.sin(2 * np.pi * k * f0 * t) * decay ** (k - 1) for k in range(1, 10) if k * f0 < sr / 2)
    return _peak(x * _adsr(t.size, sr, attack, 0.2))


def chirp(sr: int, seconds: float, f_start: float, f_end: float, log: bool) -> np.ndarray:
    t = _t(sr, seconds)
    if log:
        k = (f_end / f_start) ** (1 / seconds)
        phase = 2 * np.pi * f_start * (k ** t - 1) / np.log(k)
    else:
        phase = 2 * np.pi * (f_start * t + (f_end - f_start) * t ** 2 / (2 * seconds))
    return _peak(np.sin(phase) * _adsr(t.size, sr, 0.02, 0.05))


def noise_burst(sr: int, seconds: float, centre: float, bursts: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    n = int(sr * seconds)
    lo, hi = centre / 1.5, min(centre * 1.5, sr / 2 * 0.95)
    noise = sosfilt(butter(4, [lo, hi], btype="band", fs=sr, output="sos"), rng.standard_normal(n))
    gate = np.zeros(n)
    starts = np.sort(rng.choice(max(1, n - n // (2 * bursts)), bursts, replace=False))
    for s in starts:
        length = int(rng.uniform(0.3, 1.0) * n / (2 * bursts))
        gate[s:s + length] = np.hanning(len(gate[s:s + length]))
    return _peak(noise * gate)


def clicks(sr: int, seconds: float, rate_hz: float, ring_hz: float, rng: np.random.Generator) -> np.ndarray:
    n = int(sr * seconds)
    x = np.zeros(n)
    period = sr / rate_hz
    pos = np.arange(0, n - 1, period) + rng.uniform(-0.1, 0.1, int(np.ceil((n - 1) / period))) * period
    for p in np.clip(pos.astype(int), 0, n - 1):
        x[p] = rng.choice([-1.0, 1.0])
    ring = np.exp(-np.arange(int(0.01 * sr)) / (0.002 * sr)) * np.sin(
        2 * np.pi * ring_hz * np.arange(int(0.01 * sr)) / sr)
    return _peak(np.convolve(x, ring)[:n])


def fm_tone(sr: int, seconds: float, carrier: float, mod_hz: float, depth: float, am_hz: float) -> np.ndarray:
    t = _t(sr, seconds)
    x = np.sin(2 * np.pi * carrier * t + depth * np.sin(2 * np.pi * mod_hz * t))
    return _peak(x * (0.6 + 0.4 * np.sin(2 * np.pi * am_hz * t)) * _adsr(t.size, sr, 0.05, 0.1))


def melody(sr: int, notes: list[float], note_s: float) -> np.ndarray:
    parts = [tone(sr, note_s, f, 0.5, 0.01) for f in notes]
    return _peak(np.concatenate(parts))


def fsdd_speech(paths: list[Path], sr_out: int) -> np.ndarray:
    """Spoken digits (8 kHz originals) joined with 0.15 s gaps, resampled to ``sr_out``."""
    from voiceprint.audio.resample import resample

    parts = []
    for p in paths:
        x, sr = sf.read(p, dtype="float32")
        parts += [resample(x, sr, sr_out), np.zeros(int(0.15 * sr_out), np.float32)]
    return _peak(np.concatenate(parts))


def library(n: int = 60, seed: int = 0, fsdd: Path | None = None) -> list[Sound]:
    """``n`` distinct sounds cycling through the families (speech when ``fsdd`` is given)."""
    rng = np.random.default_rng(seed)
    makers: list[tuple[str, Callable[[int, int], np.ndarray]]] = [
        ("tone", lambda i, sr: tone(sr, rng.uniform(1.5, 3.5), float(rng.uniform(80, 1500)),
                                    float(rng.uniform(0.2, 0.9)), float(rng.uniform(0.005, 0.4)))),
        ("chirp", lambda i, sr: chirp(sr, rng.uniform(1.5, 3.5), float(rng.uniform(100, 2000)),
                                      float(rng.uniform(100, 7000)), bool(i % 2))),
        ("noise", lambda i, sr: noise_burst(sr, rng.uniform(1.5, 3.5), float(rng.uniform(200, 6000)),
                                            int(rng.integers(1, 6)), rng)),
        ("clicks", lambda i, sr: clicks(sr, rng.uniform(1.5, 3.5), float(rng.uniform(2, 40)),
                                        float(rng.uniform(500, 6000)), rng)),
        ("fm", lambda i, sr: fm_tone(sr, rng.uniform(1.5, 3.5), float(rng.uniform(150, 2500)),
                                     float(rng.uniform(1, 200)), float(rng.uniform(0.5, 8)),
                                     float(rng.uniform(0.5, 12)))),
        ("melody", lambda i, sr: melody(sr, [float(f) for f in 110 * 2 ** (rng.integers(0, 36, int(
            rng.integers(4, 9))) / 12)], float(rng.uniform(0.2, 0.45)))),
    ]
    speech = _speech_maker(fsdd, rng) if fsdd is not None else None
    if speech is not None:
        makers.append(("speech", speech))
    out = []
    for i in range(n):
        family, make = makers[i % len(makers)]
        sr = RATES[i % len(RATES)]
        fmt = FORMATS[(i // len(makers)) % len(FORMATS)]
        out.append(Sound(f"{family}_{i:03d}", family, make(i, sr), sr, fmt,
                         {"family": family, "batch": "a" if i % 2 == 0 else "b"}))
    return out


def _speech_maker(fsdd: Path, rng: np.random.Generator) -> Callable[[int, int], np.ndarray] | None:
    files = sorted(fsdd.glob("*.wav"))
    if not files:
        return None
    speakers = sorted({p.stem.split("_")[1] for p in files})

    def make(i: int, sr: int) -> np.ndarray:
        spk = speakers[i % len(speakers)]
        digits = rng.integers(0, 10, 5)
        idx = int(rng.integers(0, 50))
        paths = [fsdd / f"{d}_{spk}_{idx}.wav" for d in digits]
        return fsdd_speech([p for p in paths if p.exists()] or files[:4], min(sr, 16000))

    return make


# -- perturbations -------------------------------------------------------------
def gain(x: np.ndarray, db: float) -> np.ndarray:
    return (x * 10 ** (db / 20)).astype(np.float32)


def white_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Add white Gaussian noise at ``snr_db`` dB below the clip's mean power."""
    rng = np.random.default_rng(seed)
    power = float(np.mean(x.astype(np.float64) ** 2))
    noise = rng.standard_normal(x.size) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(x + noise, -1, 1).astype(np.float32)


def crop(x: np.ndarray, sr: int, seconds: float) -> np.ndarray:
    """Drop the first ``seconds`` (a re-upload that starts late)."""
    return x[int(seconds * sr):]


def perturbations(sound: Sound, seed: int = 0) -> dict[str, bytes]:
    """The four modified copies of ``sound`` as WAV bytes, by perturbation name."""
    from voiceprint.audio.resample import resample

    x, sr = sound.samples, sound.sample_rate
    new_sr = 22050 if sr != 22050 else 16000
    return {
        "gain_-6dB": encode(gain(x, -6), sr),
        "noise_20dB": encode(white_noise(x, 20, seed), sr),
        "crop_0.5s": encode(crop(x, sr, 0.5), sr),
        f"resample_{new_sr}": encode(resample(x, sr, new_sr), new_sr),
    }


# -- small CNN14 checkpoint --------------------------------------------------------
def write_small_cnn14(root: Path, seed: int = 2, calibrate: bool = True) -> Path:
    """A small random CNN14 in PaddleSpeech's layout under ``root`` (must not exist).

    ``calibrate``: set every batch-norm layer's running mean and variance to
    the statistics of its input on generated audio (other sounds than the
    tests use), layer by layer, as training leaves them. A fresh layer has
    mean 0 / variance 1, so the log-mel dB input (about -100..0) passes
    unnormalised and one common component dominates every embedding
    (cosine about 0.99 between any two sounds); calibrated statistics let
    the random filters tell sounds apart. The weights stay random.
    """
    from eval.encoder_seeds import write_small_cnn14_checkpoint

    model = write_small_cnn14_checkpoint(root, seed=seed)
    if calibrate:
        import paddle

        calibrate_batch_norm(model, calibration_features(library(48, seed=10_000 + seed)))
        paddle.save(model.state_dict(), str(root / "cnn14.pdparams"))
    return root


def calibration_features(sounds: list[Sound], seconds: float = 1.5) -> np.ndarray:
    """Log-mel input ``(n, 1, frames, 64)`` of the first ``seconds`` of each sound at 32 kHz."""
    import paddle
    from paddle.audio.features import LogMelSpectrogram

    from voiceprint.audio.resample import resample
    from voiceprint.encoders.panns_cnn14 import FeatureConfig, prepare_waveform

    fc = FeatureConfig()
    mel = LogMelSpectrogram(sr=fc.sample_rate, n_fft=fc.n_fft, hop_length=fc.hop_length,
                            window=fc.window, win_length=fc.window_length, f_min=fc.f_min,
                            f_max=fc.f_max, n_mels=fc.n_mels)
    n = int(seconds * fc.sample_rate)
    waves = []
    for s in sounds:
        x = resample(s.samples, s.sample_rate, fc.sample_rate)
        waves.append(prepare_waveform(np.resize(x, n), n))
    with paddle.no_grad():
        m = mel(paddle.to_tensor(np.stack(waves))).numpy()  # [n, 64, T]
    return np.ascontiguousarray(m.transpose(0, 2, 1)[:, None])


def calibrate_batch_norm(model: Any, feats: np.ndarray) -> None:
    """Data-dependent batch-norm statistics, one layer at a time (eval mode throughout)."""
    import paddle

    bns = [layer for layer in model.sublayers() if isinstance(layer, paddle.nn.BatchNorm2D)]
    x = paddle.to_tensor(feats)
    for bn in bns:
        seen: dict[str, np.ndarray] = {}

        def grab(layer: Any, inputs: Any) -> None:
            a = inputs[0].numpy().astype(np.float64)
            seen["mean"] = a.mean(axis=(0, 2, 3))
            seen["var"] = a.var(axis=(0, 2, 3))

        handle = bn.register_forward_pre_hook(grab)
        with paddle.no_grad():
            model(x)
        handle.remove()
        bn._mean.set_value(seen["mean"].astype("float32"))
        bn._variance.set_value(np.maximum(seen["var"], 1e-5).astype("float32"))


def load_small_cnn14(root: Path, num_threads: int | None = 2, cache_dir: Path | None = None) -> Any:
    from voiceprint.encoders.panns_cnn14 import PannsCnn14Encoder

    return PannsCnn14Encoder.load(model_dir=str(root), num_threads=num_threads,
                                  cache_dir=str(cache_dir) if cache_dir else None)


def eventually(read: Callable[[], Any], want: Any, timeout_s: float = 15.0) -> Any:
    """``read()`` once it returns ``want`` (or the last value after ``timeout_s``).

    Reads of a Milvus *server* are only eventually consistent after deletes and
    after writes by another client (the vector store uses Session consistency),
    so counts are polled; Milvus Lite answers at once.
    """
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        got = read()
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.25)


def write_tree(base: Path, sounds: list[Sound]) -> Iterator[Path]:
    """Write ``sounds`` into nested folders below ``base``; yields the paths."""
    for i, s in enumerate(sounds):
        p = base / s.family / f"set{i % 3}" / s.filename
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(s.encode())
        yield p
