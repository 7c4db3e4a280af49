"""/recordings: who spoke when in a call, and who they are (scope ``recognize``).

``POST /recordings`` stores the upload and answers 202 at once with the job;
``GET /recordings/{id}`` gives its status and progress and, once ``done``,
the segments (start, end, label, overlap) and per voice the identification
among the tenant's enrolled speakers (as ``/identify`` judges it) and, with a
claim, the verification against the claimed speaker. Jobs run in a worker
pool of the process (:mod:`voiceprint.services.recordings`).
"""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, url_for
from flask.views import MethodView

from voiceprint.api.auth import requires
from voiceprint.api.blueprint import VoiceprintBlueprint
from voiceprint.api.context import principal, record, runtime, tenant_id, upload_from
from voiceprint.api.recording_schemas import (RecordingForm, RecordingListArgs,
                                              RecordingPageSchema, RecordingSchema)
from voiceprint.services.recordings import RecordingJobs, RecordingService

blp = VoiceprintBlueprint("recordings", __name__, url_prefix="/recordings",
                          description="Diarize a recording: who spoke when, and who they are")


def init_recordings(app: Flask) -> RecordingJobs:
    """Create the app's job pool (marks jobs left behind by a dead process as failed)."""
    jobs = RecordingJobs(app.extensions["voiceprint"], start=False)
    app.extensions["voiceprint_recordings"] = jobs
    return jobs


def _service() -> RecordingService:
    return RecordingService(runtime(), tenant_id(), current_app.extensions["voiceprint_recordings"])


@blp.route("")
class Recordings(MethodView):
    @requires("recognize")
    @blp.arguments(RecordingListArgs, location="query")
    @blp.response(200, RecordingPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """The tenant's recordings, newest first (status and progress; no results)."""
        return _service().list(**args)

    @requires("recognize")
    @blp.arguments(RecordingForm, location="form_and_files")
    @blp.response(202, RecordingSchema)
    @blp.alt_response(413, description="the file is larger or longer than the limits")
    @blp.alt_response(429, description="too many recordings of this tenant are pending")
    def post(self, form: dict[str, Any]) -> Any:
        """Queue a recording for diarization; poll the returned job (``Location``)."""
        who = principal()
        out = _service().submit(upload_from(form["recording"]), num_speakers=form["num_speakers"],
                                claimed_speaker_id=form["claimed_speaker_id"],
                                claimed_external_id=form["claimed_external_id"],
                                key_id=who.key_id, actor=who.actor)
        record("diarize", "queued", target_type="recording", target_id=out["id"],
               details={"bytes": out["size_bytes"], "seconds": out["duration_seconds"]})
        return out, 202, {"Location": url_for("recordings.Recording", recording_id=out["id"])}


@blp.route("/<id:recording_id>")
class Recording(MethodView):
    @requires("recognize")
    @blp.response(200, RecordingSchema)
    def get(self, recording_id: int) -> Any:
        """Status, progress and, when done, the result."""
        return _service().get(recording_id)

    @requires("recognize")
    @blp.response(204)
    def delete(self, recording_id: int) -> None:
        """Delete the job and its result (a running job stops; the upload is removed)."""
        _service().delete(recording_id)
        record("diarize", "deleted", target_type="recording", target_id=recording_id)
