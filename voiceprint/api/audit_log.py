"""/audit: the tenant's audit log, for ``admin`` keys (paged, filtered, newest first)."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from voiceprint.api.context import runtime, tenant_id
from voiceprint.api.auth import requires
from voiceprint.api.blueprint import VoiceprintBlueprint
from voiceprint.api.schemas import Strict, page_fields
from voiceprint.services import audit

blp = VoiceprintBlueprint("audit", __name__, url_prefix="/audit",
                          description="Who did what to which speaker or sound (admin)")


class AuditArgs(Strict):
    page = page_fields()["page"]
    page_size = page_fields()["page_size"]
    action = ma.fields.String(validate=validate.OneOf(audit.ACTIONS))
    target_type = ma.fields.String(validate=validate.OneOf(("speaker", "sound", "library",
                                                            "recording", "key")))
    target_id = ma.fields.Integer(validate=validate.Range(1, 2**63 - 1))
    since = ma.fields.AwareDateTime(metadata={"description": "RFC 3339 with a timezone"})
    until = ma.fields.AwareDateTime()


class AuditRecordSchema(ma.Schema):
    id = ma.fields.Integer()
    created_at = ma.fields.DateTime(metadata={"description": "RFC 3339, UTC"})
    key_id = ma.fields.Integer(allow_none=True)
    actor = ma.fields.String(metadata={"description": "key:<id>, cli or open"})
    action = ma.fields.String()
    target_type = ma.fields.String(allow_none=True)
    target_id = ma.fields.Integer(allow_none=True)
    outcome = ma.fields.String()
    score = ma.fields.Float(allow_none=True, metadata={
        "description": "identify/verify score on the operating point's scale"})
    request_id = ma.fields.String(allow_none=True)
    details = ma.fields.Dict(allow_none=True)


class AuditPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AuditRecordSchema))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()


@blp.route("")
class AuditLog(MethodView):
    @requires("admin")
    @blp.arguments(AuditArgs, location="query")
    @blp.response(200, AuditPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """The tenant's audit records (never audio or keys)."""
        return audit.query(runtime().engine, tenant_id=tenant_id(), **args)
