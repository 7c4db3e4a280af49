"""Settings every encoder loader accepts, as one frozen value.

Encoders never read the environment: the application builds an
:class:`EncoderOptions` from its ``Config`` and passes it to
:func:`voiceprint.encoders.registry.load_encoder`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from voiceprint.errors import EncoderUnavailable

#: ``runtime`` values. "auto": the exported ONNX graph when it verifies against
#: the original model, else the original (logged); "onnx": the ONNX graph or an
#: error; "native": the original framework (torch / paddle dygraph). The paddle
#: encoders also take "inference" / "onednn" (a paddle.inference export,
#: without / with oneDNN) and "dygraph" (= "native").
RUNTIMES = ("auto", "onnx", "native", "inference", "onednn", "dygraph")
#: ``precision`` values. "auto": the encoder's default, which is reduced only
#: where it was measured to keep accuracy; "int8": dynamic int8 quantisation
#: of the ONNX graph, used only if it matches fp32 within cosine 0.99 per probe.
PRECISIONS = ("auto", "fp32", "int8")


def default_cache_dir() -> Path:
    """``~/.cache/voiceprint``: used when ``cache_dir`` is not set."""
    return Path.home() / ".cache" / "voiceprint"


@dataclass(frozen=True)
class EncoderOptions:
    """How to load an encoder. All fields optional."""

    #: where the weights are (file, directory or archive; meaning per encoder)
    model_dir: str | None = None
    #: intra-op CPU threads per model call (None: all usable cores)
    num_threads: int | None = None
    #: exports and unpacked archives (None: ``~/.cache/voiceprint``)
    cache_dir: str | None = None
    #: never try to download weights
    offline: bool = False
    runtime: str = "auto"
    precision: str = "auto"
    #: let ONNX Runtime's idle threads spin (faster alone, wasteful when shared)
    ort_spin: bool = False
    #: PaddleSpeech's home (its model cache is ``<home>/models``; None: ``~/.paddlespeech``)
    paddlespeech_home: str | None = None

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise EncoderUnavailable(f"unknown encoder runtime {self.runtime!r}; choose one of "
                                     f"{', '.join(RUNTIMES)}", reason="bad_encoder_option")
        if self.precision not in PRECISIONS:
            raise EncoderUnavailable(f"unknown encoder precision {self.precision!r}; choose one of "
                                     f"{', '.join(PRECISIONS)}", reason="bad_encoder_option")
        if self.num_threads is not None and int(self.num_threads) < 0:
            raise EncoderUnavailable("num_threads must be >= 0", reason="bad_encoder_option")

    @classmethod
    def of(cls, **values: Any) -> "EncoderOptions":
        """From keyword arguments; ``None`` values mean "default", and an
        unknown name raises :class:`EncoderUnavailable`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise EncoderUnavailable(f"unknown encoder option(s): {', '.join(unknown)}",
                                     reason="bad_encoder_option")
        return cls(**{k: v for k, v in values.items() if v is not None})

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()

    @property
    def threads(self) -> int | None:
        """``num_threads`` with 0 meaning "default" (None)."""
        return int(self.num_threads) if self.num_threads else None
