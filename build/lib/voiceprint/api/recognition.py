"""/identify (1:N, open set) and /verify (1:1); scope ``recognize``."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView

from voiceprint.api.context import record, runtime, tenant_id, upload_from, verify_lockout
from voiceprint.api.auth import requires
from voiceprint.api.blueprint import VoiceprintBlueprint
from voiceprint.api.schemas import (IdentificationSchema, IdentifyForm, VerificationSchema,
                                    VerifyForm)
from voiceprint.services.recognition import RecognitionService
from voiceprint.services.speakers import SpeakerService

blp = VoiceprintBlueprint("recognition", __name__, url_prefix="",
                          description="Identify an unknown speaker; verify a claimed identity")


@blp.route("/identify")
class Identify(MethodView):
    @requires("recognize")
    @blp.arguments(IdentifyForm, location="form_and_files")
    @blp.response(200, IdentificationSchema)
    def post(self, form: dict[str, Any]) -> Any:
        """Who is speaking? Ranked candidates, or 'unknown' below the threshold."""
        result = RecognitionService(runtime(), tenant_id()).identify(
            upload_from(form["clip"]), top_k=form["top_k"],
            operating_point=form["operating_point"])
        best = result.candidates[0] if result.candidates else None
        record("identify", result.decision, target_type="speaker",
               target_id=result.speaker.speaker_id if result.speaker else None,
               score=best.score if best else None,
               details={"operating_point": result.operating_point.name,
                        "threshold": result.operating_point.threshold})
        return result


@blp.route("/verify")
class Verify(MethodView):
    @requires("recognize")
    @blp.arguments(VerifyForm, location="form_and_files")
    @blp.response(200, VerificationSchema)
    @blp.alt_response(429, description="the claimed speaker is locked after repeated rejects")
    def post(self, form: dict[str, Any]) -> Any:
        """Is this the claimed speaker? Accept/reject, score and the threshold used.

        Repeated rejects of one claimed speaker lock that claim for a while
        (429 with Retry-After), so voices cannot be tried one after another.
        """
        tenant = tenant_id()
        speaker_id = form["speaker_id"]
        if speaker_id is None:
            speaker_id = SpeakerService(runtime(), tenant).find(form["external_id"])["id"]
        lockout = verify_lockout()
        try:
            lockout.check(tenant, speaker_id)
        except Exception:
            record("verify_locked", "rate_limited", target_type="speaker", target_id=speaker_id)
            raise
        result = RecognitionService(runtime(), tenant).verify(
            speaker_id, upload_from(form["clip"]), operating_point=form["operating_point"])
        if not result.accepted:
            lockout.rejected(tenant, speaker_id)
        record("verify", "accepted" if result.accepted else "rejected", target_type="speaker",
               target_id=speaker_id, score=result.score,
               details={"operating_point": result.operating_point.name,
                        "threshold": result.operating_point.threshold})
        return result
