"""/identify (1:N, open set) and /verify (1:1)."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from voiceprint.api import runtime, upload_from
from voiceprint.api.schemas import (IdentificationSchema, IdentifyArgs, QueryFileSchema,
                                    VerificationSchema, VerifyArgs)
from voiceprint.services.recognition import RecognitionService
from voiceprint.services.speakers import SpeakerService

blp = Blueprint("recognition", __name__, url_prefix="",
                description="Identify an unknown speaker; verify a claimed identity")


@blp.route("/identify")
class Identify(MethodView):
    @blp.arguments(IdentifyArgs, location="form")
    @blp.arguments(QueryFileSchema, location="files")
    @blp.response(200, IdentificationSchema)
    def post(self, args: dict[str, Any], files: dict[str, Any]) -> Any:
        """Who is speaking? Ranked candidates, or 'unknown' below the threshold."""
        return RecognitionService(runtime()).identify(upload_from(files["clip"]), **args)


@blp.route("/verify")
class Verify(MethodView):
    @blp.arguments(VerifyArgs, location="form")
    @blp.arguments(QueryFileSchema, location="files")
    @blp.response(200, VerificationSchema)
    def post(self, args: dict[str, Any], files: dict[str, Any]) -> Any:
        """Is this the claimed speaker? Accept/reject, score and the threshold used."""
        speaker_id = args["speaker_id"]
        if speaker_id is None:
            speaker_id = SpeakerService(runtime()).find(args["external_id"])["id"]
        return RecognitionService(runtime()).verify(
            speaker_id, upload_from(files["clip"]), operating_point=args["operating_point"])
