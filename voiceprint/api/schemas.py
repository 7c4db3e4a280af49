"""marshmallow schemas of the HTTP API. Scores are cosine similarity in [-1, 1]."""
from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import validate

#: pages beyond this are refused (offsets stay far inside 64 bits)
MAX_PAGE = 1_000_000

COSINE = "cosine similarity of L2-normalised embeddings, in [-1, 1] (higher = more alike)"
ASNORM = ("AS-norm score: the cosine similarity standardised against a cohort of impostors "
          "(about how many standard deviations above impostor scores; unbounded)")


def score_scale(obj: object) -> str:
    """The scale of ``score`` for a result judged at ``obj.operating_point``."""
    return ASNORM if obj.operating_point.normalization == "asnorm" else COSINE  # type: ignore[attr-defined]


def file_field(description: str, many: bool = False) -> ma.fields.Field:
    """A multipart file part (``type: string, format: binary`` in the document)."""
    if many:
        return ma.fields.List(Upload(), required=True, validate=validate.Length(min=1),
                              metadata={"description": description})
    return Upload(required=True, metadata={"description": description})


def page_fields() -> dict[str, ma.fields.Field]:
    return {"page": ma.fields.Integer(load_default=1, validate=validate.Range(1, MAX_PAGE)),
            "page_size": ma.fields.Integer(load_default=50, validate=validate.Range(1, 500))}


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


# -- speakers ---------------------------------------------------------------
class SpeakerCreateSchema(Strict):
    external_id = ma.fields.String(required=True, validate=validate.Length(1, 128),
                                   metadata={"description": "your id for this person (unique)"})
    name = ma.fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255))
    metadata = ma.fields.Dict(load_default=dict, keys=ma.fields.String())


class SpeakerUpdateSchema(Strict):
    external_id = ma.fields.String(validate=validate.Length(1, 128))
    name = ma.fields.String(allow_none=True, validate=validate.Length(max=255))
    metadata = ma.fields.Dict(keys=ma.fields.String())


class EnrollmentStatusSchema(ma.Schema):
    encoder = ma.fields.String()
    status = ma.fields.String(metadata={"description": "'enrolled' or 'enrolling'"})
    utterances = ma.fields.Integer()
    speech_seconds = ma.fields.Float(metadata={"description": "net speech enrolled, seconds"})
    required_speech_seconds = ma.fields.Float()
    remaining_speech_seconds = ma.fields.Float()


class SpeakerSchema(ma.Schema):
    id = ma.fields.Integer()
    external_id = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    metadata = ma.fields.Dict()
    created_at = ma.fields.DateTime(metadata={"description": "RFC 3339, UTC"})
    updated_at = ma.fields.DateTime(metadata={"description": "RFC 3339, UTC"})
    enrollment = ma.fields.Nested(EnrollmentStatusSchema)


class SpeakerListArgs(Strict):
    page = page_fields()["page"]
    page_size = page_fields()["page_size"]
    external_id = ma.fields.String(validate=validate.Length(1, 128), metadata={
        "description": "exactly this external id"})
    q = ma.fields.String(validate=validate.Length(1, 128), metadata={
        "description": "part of the external id (exact case) or of the name (any case)"})


class UtteranceSchema(ma.Schema):
    id = ma.fields.Integer()
    filename = ma.fields.String(allow_none=True)
    duration_s = ma.fields.Float(metadata={"description": "seconds"})
    speech_seconds = ma.fields.Float(metadata={"description": "net speech, seconds"})
    sample_rate = ma.fields.Integer(metadata={"description": "Hz, of the upload"})
    created_at = ma.fields.DateTime()


class UtterancePageSchema(ma.Schema):
    speaker_id = ma.fields.Integer()
    encoder = ma.fields.String()
    items = ma.fields.List(ma.fields.Nested(UtteranceSchema))
    total = ma.fields.Integer()


class SpeakerPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SpeakerSchema))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()


# -- enrollment ---------------------------------------------------------------
class EnrollForm(Strict):
    clips = file_field("one or more audio files (WAV, FLAC, OGG); repeat the field", many=True)
    replace = ma.fields.Boolean(load_default=False, metadata={
        "description": "start the voiceprint anew from these clips (needs the 'speakers' scope "
                       "as well as 'enroll'); otherwise clips of an enrolled speaker must match "
                       "the voiceprint"})


class ClipOutcomeSchema(ma.Schema):
    index = ma.fields.Integer()
    filename = ma.fields.String(allow_none=True)
    accepted = ma.fields.Boolean()
    utterance_id = ma.fields.Integer(allow_none=True)
    duration_s = ma.fields.Float(allow_none=True)
    speech_seconds = ma.fields.Float(allow_none=True)
    score = ma.fields.Float(allow_none=True, metadata={
        "description": "score against the enrolled voiceprint, on the operating point's scale"})
    reasons = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "why a clip was rejected: reason code (duplicate, voice_mismatch, "
                       "different_speaker, too_little_speech...), message, measured values"})
    warnings = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "accepted, but flagged: inconsistent_clip / clips_disagree (unlike the "
                       "enrollment's other clips: noise, a bad channel, or another speaker)"})


class EnrollmentSchema(ma.Schema):
    speaker_id = ma.fields.Integer()
    replaced = ma.fields.Boolean(metadata={"description": "the voiceprint was started anew"})
    accepted = ma.fields.List(ma.fields.Nested(ClipOutcomeSchema))
    rejected = ma.fields.List(ma.fields.Nested(ClipOutcomeSchema))
    enrollment = ma.fields.Nested(EnrollmentStatusSchema)


# -- recognition --------------------------------------------------------------
class IdentifyForm(Strict):
    clip = file_field("the audio to recognise (WAV, FLAC, OGG)")
    top_k = ma.fields.Integer(load_default=None, validate=validate.Range(1, 100))
    operating_point = ma.fields.String(load_default=None, metadata={
        "description": "named operating point, e.g. far_1pct, far_0.1pct, eer"})


class VerifyForm(Strict):
    clip = file_field("the audio to check (WAV, FLAC, OGG)")
    speaker_id = ma.fields.Integer(load_default=None, validate=validate.Range(1, 2**63 - 1))
    external_id = ma.fields.String(load_default=None, validate=validate.Length(1, 128))
    operating_point = ma.fields.String(load_default=None, validate=validate.Length(1, 64))

    @ma.validates_schema
    def _one_speaker(self, data: dict, **_: object) -> None:
        if (data.get("speaker_id") is None) == (data.get("external_id") is None):
            raise ma.ValidationError("give exactly one of speaker_id or external_id")


class OperatingPointSchema(ma.Schema):
    name = ma.fields.String()
    threshold = ma.fields.Float(metadata={"description": "accept when score >= threshold"})
    calibrated = ma.fields.Boolean(metadata={"description": "false: a built-in default, not measured"})
    normalization = ma.fields.String()
    expected_far = ma.fields.Float(allow_none=True, metadata={
        "description": "false-accept rate at the threshold (point estimate, a fraction; never a "
                       "bare 0 - see far_upper_95)"})
    expected_frr = ma.fields.Float(allow_none=True, metadata={
        "description": "false-reject rate at the threshold (point estimate, a fraction)"})
    far_upper_95 = ma.fields.Float(allow_none=True, metadata={
        "description": "upper end of the exact 95% interval of the false-accept rate"})
    frr_upper_95 = ma.fields.Float(allow_none=True, metadata={
        "description": "upper end of the exact 95% interval of the false-reject rate"})
    resolvable = ma.fields.Boolean(allow_none=True, metadata={
        "description": "false: too few impostor trials for this FAR (fewer than 3/FAR); the "
                       "threshold is extrapolated and the bound is what to rely on"})
    target_far = ma.fields.Float(allow_none=True)
    trials = ma.fields.Dict(allow_none=True, metadata={
        "description": "genuine/impostor trial counts behind the rates"})
    requested = ma.fields.String(allow_none=True, metadata={
        "description": "the point name asked for, when another one answered (uncalibrated)"})
    open_set = ma.fields.Dict(allow_none=True, metadata={
        "description": "identify: the target false-identification rate and the number of "
                       "enrolled speakers the threshold was sized to"})
    source = ma.fields.String()


class CandidateSchema(ma.Schema):
    speaker_id = ma.fields.Integer()
    external_id = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    score = ma.fields.Float(metadata={"description": "on the scale given by score_scale"})
    cosine = ma.fields.Float(metadata={"description": COSINE})


class QueryInfoSchema(ma.Schema):
    duration_s = ma.fields.Float()
    speech_seconds = ma.fields.Float()
    sample_rate = ma.fields.Integer()


class IdentificationSchema(ma.Schema):
    decision = ma.fields.String(metadata={"description": "'identified', 'unknown' or 'no_speakers'"})
    speaker = ma.fields.Nested(CandidateSchema, allow_none=True)
    candidates = ma.fields.List(ma.fields.Nested(CandidateSchema))
    margin = ma.fields.Float(allow_none=True, metadata={"description": "best score minus runner-up"})
    operating_point = ma.fields.Method("_point")
    score_scale = ma.fields.Function(score_scale)
    query = ma.fields.Nested(QueryInfoSchema)

    def _point(self, obj: object) -> dict:
        return OperatingPointSchema().dump(obj.operating_point)  # type: ignore[attr-defined]


class VerificationSchema(ma.Schema):
    accepted = ma.fields.Boolean()
    score = ma.fields.Float(metadata={"description": "on the scale given by score_scale"})
    threshold = ma.fields.Method("_threshold")
    speaker = ma.fields.Nested(CandidateSchema)
    operating_point = ma.fields.Method("_point")
    score_scale = ma.fields.Function(score_scale)
    query = ma.fields.Nested(QueryInfoSchema)

    def _threshold(self, obj: object) -> float:
        return obj.operating_point.threshold  # type: ignore[attr-defined]

    def _point(self, obj: object) -> dict:
        return OperatingPointSchema().dump(obj.operating_point)  # type: ignore[attr-defined]


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "'ok' or 'degraded'"})
    database = ma.fields.String()
    vectors = ma.fields.String()
    encoders = ma.fields.Dict(metadata={"description": "per configured encoder: ok or the problem"})
    speaker_encoder = ma.fields.String()
    sound_encoder = ma.fields.String()
    auth = ma.fields.String(metadata={"description": "'required' (API keys) or 'open' "
                                                     "(no key configured: loopback install)"})
