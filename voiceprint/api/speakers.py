"""/speakers: CRUD and enrollment (scopes: ``speakers`` to manage, ``enroll`` to add)."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort

from voiceprint.api.context import principal, record, runtime, tenant_id, upload_from
from voiceprint.api.auth import requires
from voiceprint.api.blueprint import VoiceprintBlueprint
from voiceprint.api.schemas import (EnrollForm, EnrollmentSchema, SpeakerCreateSchema,
                                    SpeakerListArgs, SpeakerPageSchema, SpeakerSchema,
                                    SpeakerUpdateSchema, UtterancePageSchema)
from voiceprint.errors import Forbidden
from voiceprint.services.enrollment import EnrollmentService
from voiceprint.services.speakers import SpeakerService

blp = VoiceprintBlueprint("speakers", __name__, url_prefix="/speakers",
                          description="Speakers and their enrollment")


def _speakers() -> SpeakerService:
    return SpeakerService(runtime(), tenant_id())


@blp.route("")
class Speakers(MethodView):
    @requires("speakers")
    @blp.arguments(SpeakerListArgs, location="query")
    @blp.response(200, SpeakerPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List speakers, paged (optionally by external_id or a search text q)."""
        return _speakers().list(**args)

    @requires("enroll")
    @blp.arguments(SpeakerCreateSchema)
    @blp.response(201, SpeakerSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a speaker (no audio yet; enroll clips next)."""
        out = _speakers().create(**data)
        record("speaker_create", "ok", target_type="speaker", target_id=out["id"])
        return out


@blp.route("/<id:speaker_id>")
class Speaker(MethodView):
    @requires("speakers")
    @blp.response(200, SpeakerSchema)
    def get(self, speaker_id: int) -> Any:
        """A speaker with its enrollment status."""
        return _speakers().get(speaker_id)

    @requires("speakers")
    @blp.arguments(SpeakerUpdateSchema)
    @blp.response(200, SpeakerSchema)
    def patch(self, data: dict[str, Any], speaker_id: int) -> Any:
        """Change external_id, name or metadata."""
        out = _speakers().update(speaker_id, data)
        record("speaker_update", "ok", target_type="speaker", target_id=speaker_id,
               details={"fields": sorted(data)})
        return out

    @requires("speakers")
    @blp.response(204)
    def delete(self, speaker_id: int) -> None:
        """Erase the speaker: rows, vectors and every stored audio file."""
        _speakers().delete(speaker_id)
        record("speaker_delete", "ok", target_type="speaker", target_id=speaker_id)


@blp.route("/<id:speaker_id>/utterances")
class Utterances(MethodView):
    @requires("speakers")
    @blp.response(200, UtterancePageSchema)
    def get(self, speaker_id: int) -> Any:
        """The speaker's enrolled clips (file name, duration, speech; never the audio)."""
        return _speakers().utterances(speaker_id)


@blp.route("/<id:speaker_id>/enrollments")
class Enrollments(MethodView):
    @requires("enroll")
    @blp.arguments(EnrollForm, location="form_and_files")
    @blp.response(201, EnrollmentSchema)
    @blp.alt_response(422, description="no clip was accepted; per-clip reasons in errors.clips")
    def post(self, form: dict[str, Any], speaker_id: int) -> Any:
        """Add one or more clips to a speaker's voiceprint.

        Each clip is checked (readable, not silent, not clipped, enough net
        speech, not a recording already enrolled, and - once the speaker is
        enrolled - the same voice as the voiceprint); accepted clips are
        stored, rejected ones are listed with reasons. If none is accepted the
        answer is 422 and nothing is stored.
        """
        if form["replace"] and not principal().has("speakers"):
            raise Forbidden("replacing a voiceprint needs the 'speakers' scope as well",
                            reason="missing_scope", details={"required_scope": "speakers"})
        uploads = [upload_from(f) for f in form["clips"]]
        result = EnrollmentService(runtime(), tenant_id()).enroll(speaker_id, uploads,
                                                                  replace=form["replace"])
        body = EnrollmentSchema().dump(result)
        record("enroll", "ok" if result.accepted else "rejected", target_type="speaker",
               target_id=speaker_id,
               details={"accepted": len(result.accepted), "replace": form["replace"],
                        "rejected": sorted({r["reason"] for c in result.rejected
                                            for r in c.reasons})})
        if not result.accepted:
            abort(422, message="no clip was accepted; see errors.clips for the reasons",
                  errors={"reason": "no_clip_accepted", "clips": body["rejected"],
                          "enrollment": body["enrollment"]})
        return result
