"""Inputs for the encoder benchmark: full-size random PaddleSpeech checkpoints,
speech-like test clips, and the seed pipelines voiceprint is compared with.

The seed pipelines are what the project ran before (and what PaddleSpeech's
executors do), on the same weights and clips:

* ``ecapa_tdnn``: ``VectorExecutor``'s preprocessing (peak normalisation,
  ``paddlespeech.audio.compliance.librosa.melspectrogram``, mean
  normalisation) + PaddleSpeech's ``EcapaTdnn`` forward in dygraph;
* ``panns_cnn14``: ``CLSExecutor``'s preprocessing (peak normalisation,
  ``paddle.audio.features.LogMelSpectrogram``) + ``CNN14`` in dygraph;
* ``ge2e``: resemblyzer's ``VoiceEncoder`` in torch (``embed_utterance``'s
  windows, batched), i.e. voiceprint's own code with ``runtime="native"``;
* ``campplus``: the CAM++ module in torch with the same fbank front end, as
  3D-Speaker runs it (``runtime="native"``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

RANDOM_DIR = Path(__file__).resolve().parent / "cache" / "random-weights"

#: PaddleSpeech recipe examples/voxceleb/sv0/conf/ecapa_tdnn.yaml (model part)
ECAPA_FULL_CONFIG: dict[str, Any] = {
    "sr": 16000, "n_mels": 80, "window_size": 400, "hop_size": 160, "num_speakers": 7205,
    "model": {"input_size": 80, "channels": [1024, 1024, 1024, 1024, 3072],
              "kernel_sizes": [5, 3, 3, 3, 1], "dilations": [1, 2, 3, 4, 1],
              "attention_channels": 128, "lin_neurons": 192},
}


def write_random_ecapa(directory: Path, seed: int = 0) -> Path:
    """Full-size random ECAPA-TDNN training checkpoint (``backbone.`` keys +
    classifier), laid out like PaddleSpeech's archive (kept once written)."""
    if (directory / "model" / "model.pdparams").is_file():
        return directory
    import paddle
    import yaml
    from paddlespeech.vector.models.ecapa_tdnn import EcapaTdnn
    from paddlespeech.vector.modules.sid_model import SpeakerIdetification

    paddle.seed(seed)
    model = SpeakerIdetification(backbone=EcapaTdnn(**ECAPA_FULL_CONFIG["model"]),
                                 num_class=ECAPA_FULL_CONFIG["num_speakers"])
    (directory / "conf").mkdir(parents=True, exist_ok=True)
    (directory / "model").mkdir(parents=True, exist_ok=True)
    (directory / "conf" / "model.yaml").write_text(yaml.safe_dump(ECAPA_FULL_CONFIG))
    paddle.save(model.state_dict(), str(directory / "model" / "model.pdparams"))
    return directory


def write_random_cnn14(directory: Path, seed: int = 0) -> Path:
    """Full-size random CNN14 checkpoint (``cnn14.pdparams`` + ``panns.yaml``; kept once written)."""
    if (directory / "cnn14.pdparams").is_file():
        return directory
    import paddle
    import yaml
    from paddlespeech.cls.models.panns import CNN14

    paddle.seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    feature = {"sample_rate": 32000, "n_fft": 1024, "hop_length": 320, "window": "hann",
               "window_length": 1024, "f_min": 50.0, "f_max": 14000.0, "n_mels": 64}
    (directory / "panns.yaml").write_text(yaml.safe_dump({"feature": feature}))
    paddle.save(CNN14(extract_embedding=True).state_dict(), str(directory / "cnn14.pdparams"))
    return directory


#: channel widths of the small CNN14 the tests and ``eval.bench_sounds --model small`` use
CNN14_SMALL = (4, 8, 8, 16, 16, 32)
#: PaddleSpeech panns_cnn14-32k's feature settings (``panns.yaml``)
PANNS_FEATURE = {"sample_rate": 32000, "n_fft": 1024, "hop_length": 320, "window": "hann",
                 "window_length": 1024, "f_min": 50.0, "f_max": 14000.0, "n_mels": 64}


def write_small_cnn14_checkpoint(root: Path, seed: int) -> Any:
    """A small random CNN14 (``CNN14_SMALL`` widths) in PaddleSpeech's layout under
    ``root`` (which must not exist); returns the paddle model (eval mode)."""
    import paddle
    import yaml

    from voiceprint.encoders import panns_cnn14 as panns_mod

    paddle.seed(seed)
    model = panns_mod.build_cnn14(CNN14_SMALL, 2048, 527, lazy=False)
    root.mkdir(parents=True)
    paddle.save(model.state_dict(), str(root / "cnn14.pdparams"))
    (root / "panns.yaml").write_text(yaml.safe_dump({"feature": PANNS_FEATURE}))
    model.eval()
    return model


RANDOM_WRITERS: dict[str, Callable[[Path], Path]] = {
    "ecapa_tdnn": write_random_ecapa, "panns_cnn14": write_random_cnn14}


def test_clip(sample_rate: int, seconds: float, seed: int) -> np.ndarray:
    """A speech-like clip: a gliding harmonic tone with syllable-rate
    amplitude modulation plus noise, peak about 0.5."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    f0 = 120.0 + 40.0 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t)) + 0.05 * rng.standard_normal(n)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def seed_pipeline(name: str, encoder: Any, options: dict[str, Any]) -> Callable[[np.ndarray], Any]:
    """The seed's embed-one-clip function for ``encoder`` (see the module docstring)."""
    if name == "ecapa_tdnn":
        def ecapa(x: np.ndarray) -> Any:
            return encoder.dygraph(encoder.features(x)[None])
        return ecapa
    if name == "panns_cnn14":
        import paddle
        from paddle.audio.features import LogMelSpectrogram

        from voiceprint.encoders.panns_cnn14 import prepare_waveform

        fc = encoder.feature_config
        mel = LogMelSpectrogram(sr=fc.sample_rate, n_fft=fc.n_fft, hop_length=fc.hop_length,
                                window=fc.window, win_length=fc.window_length, f_min=fc.f_min,
                                f_max=fc.f_max, n_mels=fc.n_mels)
        layer = encoder.layers()[0]

        def panns(x: np.ndarray) -> Any:
            with paddle.no_grad():
                m = mel(paddle.to_tensor(prepare_waveform(x, encoder.min_samples)[None]))
                return layer(paddle.transpose(m, [0, 2, 1]).unsqueeze(1)).numpy()
        return panns
    from voiceprint.encoders.registry import load_encoder

    native = load_encoder(name, **{**options, "runtime": "native", "precision": "fp32"})
    return native.embed
