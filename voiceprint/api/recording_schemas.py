"""marshmallow schemas of /recordings (diarization jobs). Times in seconds from the start."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from voiceprint.api.schemas import (CandidateSchema, OperatingPointSchema, Strict, file_field,
                                    page_fields)

STATUSES = ("queued", "running", "done", "failed")


class RecordingForm(Strict):
    recording = file_field("the recording (WAV, FLAC, OGG, MP3; seconds to an hour)")
    num_speakers = ma.fields.Integer(load_default=None, validate=validate.Range(1, 64), metadata={
        "description": "how many people speak, if known (else it is estimated)"})
    claimed_speaker_id = ma.fields.Integer(load_default=None,
                                           validate=validate.Range(1, 2**63 - 1), metadata={
        "description": "the speaker one voice should be (e.g. the caller): each voice is verified "
                       "against this enrolled speaker"})
    claimed_external_id = ma.fields.String(load_default=None, validate=validate.Length(1, 128),
                                           metadata={"description": "the claim by external id"})

    @ma.validates_schema
    def _one_claim(self, data: dict, **_: object) -> None:
        if data.get("claimed_speaker_id") is not None and data.get("claimed_external_id"):
            raise ma.ValidationError("give at most one of claimed_speaker_id or "
                                     "claimed_external_id")


class RecordingListArgs(Strict):
    page = page_fields()["page"]
    page_size = page_fields()["page_size"]
    status = ma.fields.String(validate=validate.OneOf(STATUSES))


class SegmentSchema(ma.Schema):
    start = ma.fields.Float(metadata={"description": "seconds from the start of the recording"})
    end = ma.fields.Float(metadata={"description": "seconds from the start of the recording"})
    label = ma.fields.String(metadata={"description": "the voice: SPEAKER_00, SPEAKER_01, ..."})
    speaker = ma.fields.String(allow_none=True, metadata={
        "description": "external_id of the enrolled speaker the voice was identified as, or null"})
    overlap = ma.fields.Boolean(metadata={"description": "another voice speaks at the same time"})


class LabelIdentificationSchema(ma.Schema):
    decision = ma.fields.String(metadata={"description": "'identified', 'unknown' or 'no_speakers'"})
    speaker = ma.fields.Nested(CandidateSchema, allow_none=True)
    candidates = ma.fields.List(ma.fields.Nested(CandidateSchema))
    margin = ma.fields.Float(allow_none=True, metadata={"description": "best score minus runner-up"})


class LabelVerificationSchema(ma.Schema):
    accepted = ma.fields.Boolean()
    score = ma.fields.Float(metadata={"description": "on the claim's score_scale"})
    threshold = ma.fields.Float()


class LabelSchema(ma.Schema):
    speech_seconds = ma.fields.Float(metadata={"description": "total time the voice speaks"})
    identification = ma.fields.Nested(LabelIdentificationSchema)
    verification = ma.fields.Nested(LabelVerificationSchema, allow_none=True)


class ClaimSchema(ma.Schema):
    speaker_id = ma.fields.Integer()
    external_id = ma.fields.String()
    operating_point = ma.fields.Nested(OperatingPointSchema)
    score_scale = ma.fields.String()
    accepted_labels = ma.fields.List(ma.fields.String(), metadata={
        "description": "voices accepted as the claimed speaker, best first"})
    best_label = ma.fields.String(allow_none=True)


class DiarizationResultSchema(ma.Schema):
    duration_seconds = ma.fields.Float()
    speech_seconds = ma.fields.Float()
    overlap_seconds = ma.fields.Float()
    num_speakers = ma.fields.Integer(metadata={"description": "voices found"})
    num_speakers_given = ma.fields.Integer(allow_none=True)
    segments = ma.fields.List(ma.fields.Nested(SegmentSchema))
    labels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(LabelSchema))
    operating_point = ma.fields.Nested(OperatingPointSchema, metadata={
        "description": "what identification judged by (as /identify reports it)"})
    score_scale = ma.fields.String()
    claim = ma.fields.Nested(ClaimSchema, allow_none=True)
    diarization = ma.fields.Dict(metadata={"description": "models and settings used"})


class RecordingErrorSchema(ma.Schema):
    reason = ma.fields.String()
    message = ma.fields.String()


class RecordingSummarySchema(ma.Schema):
    """A job as listed (no result)."""

    id = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "queued, running, done or failed"})
    progress = ma.fields.Float(metadata={"description": "fraction of the work done, 0 to 1"})
    filename = ma.fields.String(allow_none=True)
    content_sha256 = ma.fields.String()
    size_bytes = ma.fields.Integer()
    duration_seconds = ma.fields.Float(allow_none=True)
    encoder = ma.fields.String()
    options = ma.fields.Dict()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    finished_at = ma.fields.DateTime(allow_none=True)
    error = ma.fields.Nested(RecordingErrorSchema, allow_none=True)
    num_speakers = ma.fields.Integer(allow_none=True, metadata={
        "description": "voices found (done jobs)"})


class RecordingSchema(RecordingSummarySchema):
    """A job with its result (null until it is done)."""

    result = ma.fields.Nested(DiarizationResultSchema, allow_none=True)


class RecordingPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(RecordingSummarySchema))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()
