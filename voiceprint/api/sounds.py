"""/sounds: a tenant's libraries of arbitrary audio searched by example.

Scopes: ``sounds:read`` (search, list, play), ``sounds:write`` (insert,
delete), ``admin`` (drop a whole library). Uploads only: the HTTP API never
reads server paths (bulk loads from a directory are the CLI's ``voiceprint
sounds load``; their progress is at ``/sounds/loads``).
"""
from __future__ import annotations

from typing import Any

from flask import send_file
from flask.views import MethodView
from flask_smorest import abort

from voiceprint.api.context import record, runtime, tenant_id, upload_from
from voiceprint.api.auth import requires
from voiceprint.api.blueprint import VoiceprintBlueprint
from voiceprint.api.sound_schemas import (CountSchema, DropArgs, DropResultSchema,
                                          InsertResultSchema, LibraryArgs, LibrarySchema,
                                          LoadSchema, LoadsArgs, SearchForm, SearchResultSchema,
                                          SoundInsertForm, SoundListArgs, SoundPageSchema,
                                          SoundSchema)
from voiceprint.services.sounds import LibraryCatalog, SoundService

blp = VoiceprintBlueprint("sounds", __name__, url_prefix="/sounds",
                          description="Similar-sound search: insert sounds, search by example, "
                                      "manage libraries")


def _sounds() -> SoundService:
    return SoundService(runtime(), tenant_id())


def _catalog() -> LibraryCatalog:
    return LibraryCatalog(runtime(), tenant_id())


@blp.route("")
class Sounds(MethodView):
    @requires("sounds:read")
    @blp.arguments(SoundListArgs, location="query")
    @blp.response(200, SoundPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List a library's sounds, paged (optionally only those with tags)."""
        return _sounds().list(args["library"], args["page"], args["page_size"], args["tag"])

    @requires("sounds:write")
    @blp.arguments(SoundInsertForm, location="form_and_files")
    @blp.response(201, InsertResultSchema)
    @blp.alt_response(200, schema=InsertResultSchema,
                      description="nothing new: every file was already in the library")
    @blp.alt_response(422, description="no file was usable; per-file reasons in errors.files")
    def post(self, form: dict[str, Any]) -> Any:
        """Insert one or more sounds (multipart field ``files``, repeatable).

        Each file is decoded and checked; a file whose bytes are already in
        the library is reported under ``duplicates`` with the stored id and
        not stored again. Nothing is stored if every file is rejected (422).
        """
        uploads = [upload_from(f) for f in form["files"]]
        if form["name"] is not None and len(uploads) != 1:
            abort(422, message="'name' can only be given with a single file",
                  errors={"reason": "bad_names"})
        names = [form["name"]] if form["name"] is not None else None
        result = _sounds().insert(uploads, form["library"], form["tag"], names)
        body = InsertResultSchema().dump(result)
        record("sound_insert", "ok" if result.inserted else "rejected", target_type="library",
               details={"library": result.library, "inserted": [i.id for i in result.inserted],
                        "duplicates": len(result.duplicates), "rejected": len(result.rejected)})
        if not result.inserted and not result.duplicates:
            abort(422, message="no file was usable; see errors.files for the reasons",
                  errors={"reason": "no_file_accepted", "files": body["rejected"]})
        return result, 201 if result.inserted else 200


@blp.route("/search")
class Search(MethodView):
    @requires("sounds:read")
    @blp.arguments(SearchForm, location="form_and_files")
    @blp.response(200, SearchResultSchema)
    def post(self, form: dict[str, Any]) -> Any:
        """Sounds most like the uploaded clip, best first.

        ``score`` is the cosine similarity of the library encoder's embeddings
        in [-1, 1]; an identical file scores 1.0 and ``query.duplicate_of``
        names it. ``tag=key:value`` (repeatable) keeps only sounds carrying
        every given tag.
        """
        return _sounds().search(upload_from(form["clip"]), form["library"], form["top_k"],
                                form["tag"])


@blp.route("/<id:sound_id>")
class Sound(MethodView):
    @requires("sounds:read")
    @blp.response(200, SoundSchema)
    def get(self, sound_id: int) -> Any:
        """A sound's record."""
        return _sounds().get(sound_id)

    @requires("sounds:write")
    @blp.response(204)
    def delete(self, sound_id: int) -> None:
        """Delete a sound: its row, vector and stored audio together."""
        _sounds().delete(sound_id)
        record("sound_delete", "ok", target_type="sound", target_id=sound_id)


@blp.route("/<id:sound_id>/audio")
class SoundAudio(MethodView):
    @requires("sounds:read")
    @blp.response(200, content_type="audio/*", description="the stored original file")
    @blp.alt_response(206, description="a byte range (Range requests are honoured)")
    def get(self, sound_id: int) -> Any:
        """Stream the original file back (Content-Type from its format; Range supported)."""
        path, mimetype, name = _sounds().audio(sound_id)
        return send_file(path, mimetype=mimetype, download_name=name, conditional=True,
                         max_age=0)


@blp.route("/count")
class Count(MethodView):
    @requires("sounds:read")
    @blp.arguments(LibraryArgs, location="query")
    @blp.response(200, CountSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """How many sounds a library holds (database rows and Milvus vectors)."""
        return _sounds().count(args["library"])


@blp.route("/libraries")
class Libraries(MethodView):
    @requires("sounds:read")
    @blp.response(200, LibrarySchema(many=True))
    def get(self) -> Any:
        """The tenant's libraries with their sound counts."""
        return _catalog().libraries()


@blp.route("/libraries/<string:library>")
class LibraryView(MethodView):
    @requires("admin")
    @blp.arguments(DropArgs, location="query")
    @blp.response(200, DropResultSchema)
    @blp.alt_response(400, description="confirm is missing or does not repeat the name")
    def delete(self, args: dict[str, Any], library: str) -> Any:
        """Drop a whole library (sounds, vectors, audio). Requires ``?confirm=<library name>``."""
        out = _catalog().drop(library, args["confirm"])
        record("library_drop", "ok", target_type="library",
               details={"library": library, "sounds": out["sounds"]})
        return out


@blp.route("/loads")
class Loads(MethodView):
    @requires("sounds:read")
    @blp.arguments(LoadsArgs, location="query")
    @blp.response(200, LoadSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """Progress of bulk loads run with ``voiceprint sounds load`` (newest first)."""
        return _catalog().loads(args["library"])
