"""Encoder names -> loaders. Models load once per process (see the app factory)."""
from __future__ import annotations

from typing import Callable

from voiceprint.encoders.base import Encoder
from voiceprint.errors import EncoderUnavailable

Loader = Callable[..., Encoder]


def _ge2e(**options: object) -> Encoder:
    from voiceprint.encoders.ge2e import Ge2eEncoder
    return Ge2eEncoder.load(**options)  # type: ignore[arg-type]


def _ecapa(**options: object) -> Encoder:
    from voiceprint.encoders.ecapa_tdnn import EcapaTdnnEncoder
    return EcapaTdnnEncoder.load(**options)  # type: ignore[arg-type]


def _campplus(**options: object) -> Encoder:
    from voiceprint.encoders.campplus import CamPlusPlusEncoder
    return CamPlusPlusEncoder.load(**options)  # type: ignore[arg-type]


def _panns(**options: object) -> Encoder:
    from voiceprint.encoders.panns_cnn14 import PannsCnn14Encoder
    return PannsCnn14Encoder.load(**options)  # type: ignore[arg-type]


#: name -> (kind, loader). ``kind`` is "speaker" or "sound".
ENCODERS: dict[str, tuple[str, Loader]] = {
    "ecapa_tdnn": ("speaker", _ecapa),
    "ge2e": ("speaker", _ge2e),
    "campplus": ("speaker", _campplus),
    "panns_cnn14": ("sound", _panns),
}


def encoder_names(kind: str | None = None) -> list[str]:
    return [n for n, (k, _) in ENCODERS.items() if kind is None or k == kind]


def load_encoder(name: str, *, model_dir: str | None = None,
                 num_threads: int | None = None) -> Encoder:
    """Load encoder ``name``; raises :class:`EncoderUnavailable` with instructions."""
    try:
        _, loader = ENCODERS[name]
    except KeyError:
        raise EncoderUnavailable(
            f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}",
            reason="unknown_encoder") from None
    try:
        return loader(model_dir=model_dir, num_threads=num_threads)
    except ImportError as exc:
        raise EncoderUnavailable(f"encoder {name!r} cannot be imported: {exc}") from exc
