"""marshmallow schemas of /sounds. Scores are cosine similarity in [-1, 1]."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from marshmallow import validate

from voiceprint.api.schemas import Strict, file_field, page_fields
from voiceprint.errors import VoiceprintError
from voiceprint.services.sounds import (COSINE, DEFAULT_LIBRARY, LIBRARY_NAME, MAX_TAGS, TOP_K_MAX,
                                        parse_tag_pairs)


def library_field() -> ma.fields.Field:
    return ma.fields.String(load_default=DEFAULT_LIBRARY, validate=validate.Regexp(
        LIBRARY_NAME, error="1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"),
        metadata={"description": "named library (isolated collection); created by the first insert"})


class TagPairs(ma.fields.List):
    """Repeated ``tag=key:value`` fields -> ``{key: value}``."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(ma.fields.String(), load_default=list, validate=validate.Length(max=MAX_TAGS),
                         **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        pairs = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_tag_pairs(pairs)
        except VoiceprintError as exc:
            raise ma.ValidationError(exc.message) from exc


# -- requests ------------------------------------------------------------------------
class SoundInsertForm(Strict):
    files = file_field("one or more audio files (WAV, FLAC, OGG, MP3...); repeat the field",
                       many=True)
    library = library_field()
    tag = TagPairs(metadata={"description": "key:value tag for every file; repeat for more"})
    name = ma.fields.String(load_default=None, validate=validate.Length(1, 255), metadata={
        "description": "display name (one file only; default: the file name without suffix)"})


class SearchForm(Strict):
    clip = file_field("the example sound to search by")
    library = library_field()
    top_k = ma.fields.Integer(load_default=10, validate=validate.Range(1, TOP_K_MAX),
                              metadata={"description": f"results wanted, 1..{TOP_K_MAX}"})
    tag = TagPairs(metadata={"description": "only sounds with this key:value tag (repeat = AND)"})


class LibraryArgs(Strict):
    library = library_field()


class SoundListArgs(Strict):
    library = library_field()
    page = page_fields()["page"]
    page_size = page_fields()["page_size"]
    tag = TagPairs()


class DropArgs(Strict):
    confirm = ma.fields.String(load_default=None, metadata={
        "description": "must repeat the library's name"})


class LoadsArgs(Strict):
    library = ma.fields.String(load_default=None, validate=validate.Regexp(LIBRARY_NAME))


# -- responses -----------------------------------------------------------------------
class SoundSchema(ma.Schema):
    id = ma.fields.Integer()
    library = ma.fields.String()
    name = ma.fields.String()
    filename = ma.fields.String(allow_none=True)
    content_sha256 = ma.fields.String()
    size_bytes = ma.fields.Integer()
    duration_s = ma.fields.Float(metadata={"description": "seconds"})
    sample_rate = ma.fields.Integer(metadata={"description": "Hz, of the stored original"})
    channels = ma.fields.Integer()
    format = ma.fields.String(metadata={"description": "libsndfile container name, e.g. WAV, FLAC"})
    content_type = ma.fields.String()
    encoder = ma.fields.String()
    tags = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    created_at = ma.fields.DateTime(metadata={"description": "RFC 3339, UTC"})
    audio_url = ma.fields.Method("_audio_url")

    def _audio_url(self, obj: dict) -> str:
        return url_for("sounds.SoundAudio", sound_id=obj["id"])


class SoundHitSchema(SoundSchema):
    score = ma.fields.Float(metadata={"description": COSINE})


class ItemOutcomeSchema(ma.Schema):
    index = ma.fields.Integer()
    filename = ma.fields.String(allow_none=True)
    status = ma.fields.String(metadata={"description": "'inserted', 'duplicate' or 'rejected'"})
    id = ma.fields.Integer(allow_none=True, metadata={
        "description": "the new sound, or for a duplicate the stored one"})
    name = ma.fields.String(allow_none=True)
    duplicate_of = ma.fields.Dict(allow_none=True)
    duration_s = ma.fields.Float(allow_none=True)
    reasons = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "why a file was rejected: reason code, message, measured values"})


class InsertResultSchema(ma.Schema):
    library = ma.fields.String()
    inserted = ma.fields.List(ma.fields.Nested(ItemOutcomeSchema))
    duplicates = ma.fields.List(ma.fields.Nested(ItemOutcomeSchema))
    rejected = ma.fields.List(ma.fields.Nested(ItemOutcomeSchema))


class SearchQuerySchema(ma.Schema):
    duration_s = ma.fields.Float()
    sample_rate = ma.fields.Integer()
    content_sha256 = ma.fields.String()
    duplicate_of = ma.fields.Integer(allow_none=True, metadata={
        "description": "id of a stored sound with exactly these bytes"})


class SearchResultSchema(ma.Schema):
    library = ma.fields.String()
    top_k = ma.fields.Integer()
    results = ma.fields.List(ma.fields.Nested(SoundHitSchema))
    score_scale = ma.fields.Constant(COSINE)
    query = ma.fields.Nested(SearchQuerySchema)
    filter = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    strategy = ma.fields.String(metadata={
        "description": "'ann' (HNSW), 'exact' (filtered, ranked from stored embeddings) "
                       "or 'ann+filter' (over-fetched HNSW, filtered in the database)"})


class SoundPageSchema(ma.Schema):
    library = ma.fields.String()
    items = ma.fields.List(ma.fields.Nested(SoundSchema))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()


class CountSchema(ma.Schema):
    library = ma.fields.String()
    sounds = ma.fields.Integer(metadata={"description": "rows in the database"})
    vectors = ma.fields.Integer(metadata={
        "description": "vectors in Milvus: equal to sounds when consistent; on a Milvus server "
                       "it can trail deletes and other clients' writes briefly (Session consistency)"})


class LibrarySchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    encoder = ma.fields.String()
    dim = ma.fields.Integer(metadata={"description": "embedding size"})
    sounds = ma.fields.Integer()
    created_at = ma.fields.DateTime()


class DropResultSchema(ma.Schema):
    library = ma.fields.String()
    dropped = ma.fields.Boolean()
    sounds = ma.fields.Integer(metadata={"description": "sounds deleted"})


class LoadSchema(ma.Schema):
    id = ma.fields.Integer()
    library = ma.fields.String()
    status = ma.fields.String(metadata={
        "description": "running, finished, finished_with_errors or interrupted"})
    total = ma.fields.Integer()
    processed = ma.fields.Integer()
    loaded = ma.fields.Integer()
    skipped = ma.fields.Integer()
    failed = ma.fields.Integer()
    percent = ma.fields.Float()
    started_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    finished_at = ma.fields.DateTime(allow_none=True)
