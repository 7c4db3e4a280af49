"""The encoder registry: one EncoderSpec per encoder, options, and no environment reads."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from voiceprint.encoders import registry
from voiceprint.encoders.base import Encoder
from voiceprint.encoders.options import EncoderOptions
from voiceprint.encoders.registry import SPECS, EncoderSpec, load_encoder, register
from voiceprint.errors import EncoderUnavailable

ENCODERS_DIR = Path(registry.__file__).parent


def test_specs_describe_their_classes() -> None:
    assert {"ecapa_tdnn", "ge2e", "campplus", "panns_cnn14"} <= set(SPECS)
    for name, spec in SPECS.items():
        try:
            cls = spec.encoder_class()
        except EncoderUnavailable as exc:  # optional packages missing
            pytest.skip(f"{name}: {exc.message}")
        assert issubclass(cls, Encoder) and spec.name == name == cls.name
        assert (spec.kind, spec.dim, spec.sample_rate) == (cls.kind, cls.dim, cls.sample_rate)
        assert -1.0 <= spec.default_threshold <= 1.0
    assert SPECS["ecapa_tdnn"].default_threshold == 0.30
    # the measured ones (scoring/encoder_defaults.json) are the spec's values too
    from voiceprint.scoring.defaults import measured_default_thresholds
    for name, threshold in measured_default_thresholds().items():
        assert SPECS[name].default_threshold == pytest.approx(threshold, abs=1e-4)
    assert SPECS["ecapa_tdnn"].model_dir_setting == "ECAPA_MODEL_DIR"


def test_register_refuses_a_second_different_spec_and_bad_kinds() -> None:
    spec = SPECS["ge2e"]
    assert register(spec) is spec  # the same spec again is a no-op
    with pytest.raises(ValueError, match="already registered"):
        register(EncoderSpec(**{**spec.__dict__, "dim": 1}))
    with pytest.raises(ValueError, match="kind"):
        register(EncoderSpec(name="x", kind="image", dim=1, sample_rate=1, loader="m:C",
                             default_threshold=0.5))
    assert "x" not in SPECS


def test_unknown_encoder_and_options_are_refused() -> None:
    with pytest.raises(EncoderUnavailable, match="unknown encoder 'nope'") as err:
        load_encoder("nope")
    assert err.value.reason == "unknown_encoder" and err.value.status == 503
    with pytest.raises(EncoderUnavailable, match="unknown encoder runtime"):
        EncoderOptions(runtime="tensorflow")
    with pytest.raises(EncoderUnavailable, match="precision"):
        EncoderOptions(precision="fp8")
    with pytest.raises(EncoderUnavailable, match="unknown encoder option"):
        load_encoder("ge2e", device="cuda")
    broken = EncoderSpec(name="broken", kind="sound", dim=1, sample_rate=1,
                         loader="voiceprint.encoders.not_there:X", default_threshold=0.5)
    with pytest.raises(EncoderUnavailable, match="cannot be imported"):
        broken.encoder_class()


def test_options_merge_keyword_overrides() -> None:
    base = EncoderOptions(cache_dir="/c", runtime="native", num_threads=3)
    merged = EncoderOptions.of(**{**base.as_kwargs(), "num_threads": 1, "model_dir": None})
    assert (merged.cache_dir, merged.runtime, merged.num_threads, merged.model_dir) == ("/c", "native", 1, None)
    assert EncoderOptions(num_threads=0).threads is None
    assert EncoderOptions().cache_path.name == "voiceprint"


def test_nothing_in_encoders_reads_the_environment() -> None:
    """Settings arrive as EncoderOptions; the only environment access is
    paddle's C++ log level, set (not read) before paddle's first import."""
    allowed = {'os.environ.setdefault("GLOG_minloglevel", "2")'}
    offenders = []
    for path in sorted(ENCODERS_DIR.glob("*.py")):
        for no, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"os\.environ|os\.getenv|getenv\(", line) and line.strip() not in allowed:
                offenders.append(f"{path.name}:{no}: {line.strip()}")
    assert offenders == []

