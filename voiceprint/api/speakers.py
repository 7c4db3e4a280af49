"""/speakers: CRUD and enrollment."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort

from voiceprint.api import runtime, upload_from
from voiceprint.api.schemas import (EnrollFilesSchema, EnrollmentSchema, SpeakerCreateSchema,
                                    SpeakerListArgs, SpeakerPageSchema, SpeakerSchema,
                                    SpeakerUpdateSchema)
from voiceprint.services.enrollment import EnrollmentService
from voiceprint.services.speakers import SpeakerService

blp = Blueprint("speakers", __name__, url_prefix="/speakers",
                description="Speakers and their enrollment")


@blp.route("")
class Speakers(MethodView):
    @blp.arguments(SpeakerListArgs, location="query")
    @blp.response(200, SpeakerPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List speakers, paged (optionally by external_id)."""
        return SpeakerService(runtime()).list(**args)

    @blp.arguments(SpeakerCreateSchema)
    @blp.response(201, SpeakerSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a speaker (no audio yet; enroll clips next)."""
        return SpeakerService(runtime()).create(**data)


@blp.route("/<int:speaker_id>")
class Speaker(MethodView):
    @blp.response(200, SpeakerSchema)
    def get(self, speaker_id: int) -> Any:
        """A speaker with its enrollment status."""
        return SpeakerService(runtime()).get(speaker_id)

    @blp.arguments(SpeakerUpdateSchema)
    @blp.response(200, SpeakerSchema)
    def patch(self, data: dict[str, Any], speaker_id: int) -> Any:
        """Change external_id, name or metadata."""
        return SpeakerService(runtime()).update(speaker_id, data)

    @blp.response(204)
    def delete(self, speaker_id: int) -> None:
        """Erase the speaker: rows, vectors and stored audio."""
        SpeakerService(runtime()).delete(speaker_id)


@blp.route("/<int:speaker_id>/enrollments")
class Enrollments(MethodView):
    @blp.arguments(EnrollFilesSchema, location="files")
    @blp.response(201, EnrollmentSchema)
    @blp.alt_response(422, description="no clip was accepted; per-clip reasons in errors.clips")
    def post(self, files: dict[str, Any], speaker_id: int) -> Any:
        """Add one or more clips to a speaker's voiceprint.

        Each clip is checked (readable, not silent, not clipped, enough net
        speech); accepted clips are stored, rejected ones are listed with
        reasons. If none is accepted the answer is 422 and nothing is stored.
        """
        uploads = [upload_from(f) for f in files["clips"]]
        result = EnrollmentService(runtime()).enroll(speaker_id, uploads)
        body = EnrollmentSchema().dump(result)
        if not result.accepted:
            abort(422, message="no clip was accepted; see errors.clips for the reasons",
                  errors={"reason": "no_clip_accepted", "clips": body["rejected"],
                          "enrollment": body["enrollment"]})
        return result
