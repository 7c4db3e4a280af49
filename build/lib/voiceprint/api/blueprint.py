"""flask-smorest pieces every voiceprint blueprint shares.

* :class:`VoiceprintBlueprint` understands ``location="form_and_files"``: a
  ``multipart/form-data`` body whose schema holds the file fields *and* the
  text fields, so the OpenAPI document has one request body listing all of
  them (generated clients and ``/docs`` can send ``top_k``,
  ``operating_point``...). Parsing uses webargs, like every location.
* JSON bodies are parsed strictly: ``NaN``/``Infinity`` and absurd nesting are
  a 400, not a stored value or a 500.
* :class:`IdConverter` (``<id:speaker_id>``): ids are 1..2**63-1, anything
  else is a 404 before any query runs.
"""
from __future__ import annotations

import json
import typing

import flask
import marshmallow as ma
from flask_smorest import Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.datastructures import CombinedMultiDict
from werkzeug.routing import IntegerConverter

from voiceprint.stores.types import MAX_ID

#: deepest JSON nesting a request may carry (metadata has its own, smaller limit)
MAX_JSON_DEPTH = 64


def _no_constant(name: str) -> typing.NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def strict_json_loads(data: str | bytes) -> typing.Any:
    """``json.loads`` that refuses NaN/Infinity and nesting deeper than :data:`MAX_JSON_DEPTH`."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:  # a cheap pre-scan: the stdlib decoder recurses per level
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif ch in "]}":
            depth -= 1
    return json.loads(text, parse_constant=_no_constant)


class VoiceprintParser(FlaskParser):
    __location_map__ = dict(form_and_files="load_form_and_files", **FlaskParser.__location_map__)

    def load_form_and_files(self, req: flask.Request, schema: ma.Schema) -> typing.Any:
        """Text fields and files of a multipart body, as one multi-dict."""
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)

    def _raw_load_json(self, req: flask.Request) -> typing.Any:
        if not is_json_request(req):
            return core.missing
        try:
            return strict_json_loads(req.get_data(cache=True))
        except (ValueError, UnicodeDecodeError) as exc:
            flask.abort(400, description=f"the JSON body is invalid: {exc}")


class VoiceprintBlueprint(Blueprint):
    ARGUMENTS_PARSER = VoiceprintParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "form_and_files": "multipart/form-data",
    }


class IdConverter(IntegerConverter):
    """A record id in a URL: an integer in 1..2**63-1 (Milvus INT64, SQL BIGINT)."""

    def __init__(self, url_map: typing.Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)
