"""/sounds: a library of arbitrary audio searched by example (near-duplicates, look-alikes).

Uploads only: the HTTP API never reads server paths (bulk loads from a
directory are the CLI's ``voiceprint sounds load``; their progress is at
``/sounds/loads``).
"""
from __future__ import annotations

from typing import Any

from flask import send_file
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from voiceprint.api import runtime, upload_from
from voiceprint.api.sound_schemas import (CountSchema, DropArgs, DropResultSchema,
                                          InsertResultSchema, LibraryArgs, LibrarySchema,
                                          LoadSchema, LoadsArgs, SearchFileSchema, SearchForm,
                                          SearchResultSchema, SoundFilesSchema, SoundInsertForm,
                                          SoundListArgs, SoundPageSchema, SoundSchema)
from voiceprint.services.sounds import SoundService

blp = Blueprint("sounds", __name__, url_prefix="/sounds",
                description="Similar-sound search: insert sounds, search by example, manage libraries")


@blp.route("")
class Sounds(MethodView):
    @blp.arguments(SoundListArgs, location="query")
    @blp.response(200, SoundPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List a library's sounds, paged (optionally only those with tags)."""
        return SoundService(runtime()).list(args["library"], args["page"], args["page_size"],
                                            args["tag"])

    @blp.arguments(SoundInsertForm, location="form")
    @blp.arguments(SoundFilesSchema, location="files")
    @blp.response(201, InsertResultSchema)
    @blp.alt_response(200, schema=InsertResultSchema,
                      description="nothing new: every file was already in the library")
    @blp.alt_response(422, description="no file was usable; per-file reasons in errors.files")
    def post(self, form: dict[str, Any], files: dict[str, Any]) -> Any:
        """Insert one or more sounds (multipart field ``files``, repeatable).

        Each file is decoded and checked; a file whose bytes are already in
        the library is reported under ``duplicates`` with the stored id and
        not stored again. Nothing is stored if every file is rejected (422).
        """
        uploads = [upload_from(f) for f in files["files"]]
        if form["name"] is not None and len(uploads) != 1:
            abort(422, message="'name' can only be given with a single file",
                  errors={"reason": "bad_names"})
        names = [form["name"]] if form["name"] is not None else None
        result = SoundService(runtime()).insert(uploads, form["library"], form["tag"], names)
        body = InsertResultSchema().dump(result)
        if not result.inserted and not result.duplicates:
            abort(422, message="no file was usable; see errors.files for the reasons",
                  errors={"reason": "no_file_accepted", "files": body["rejected"]})
        return result, 201 if result.inserted else 200


@blp.route("/search")
class Search(MethodView):
    @blp.arguments(SearchForm, location="form")
    @blp.arguments(SearchFileSchema, location="files")
    @blp.response(200, SearchResultSchema)
    def post(self, form: dict[str, Any], files: dict[str, Any]) -> Any:
        """Sounds most like the uploaded clip, best first.

        ``score`` is the cosine similarity of the CNN14 embeddings in
        [-1, 1]; an identical file scores 1.0 and ``query.duplicate_of``
        names it. ``tag=key:value`` (repeatable) keeps only sounds carrying
        every given tag.
        """
        return SoundService(runtime()).search(upload_from(files["clip"]), form["library"],
                                              form["top_k"], form["tag"])


@blp.route("/<int:sound_id>")
class Sound(MethodView):
    @blp.response(200, SoundSchema)
    def get(self, sound_id: int) -> Any:
        """A sound's record."""
        return SoundService(runtime()).get(sound_id)

    @blp.response(204)
    def delete(self, sound_id: int) -> None:
        """Delete a sound: its row, vector and stored audio together."""
        SoundService(runtime()).delete(sound_id)


@blp.route("/<int:sound_id>/audio")
class SoundAudio(MethodView):
    @blp.response(200, content_type="audio/*", description="the stored original file")
    @blp.alt_response(206, description="a byte range (Range requests are honoured)")
    def get(self, sound_id: int) -> Any:
        """Stream the original file back (Content-Type from its format; Range supported)."""
        path, mimetype, name = SoundService(runtime()).audio(sound_id)
        return send_file(path, mimetype=mimetype, download_name=name, conditional=True,
                         max_age=3600)


@blp.route("/count")
class Count(MethodView):
    @blp.arguments(LibraryArgs, location="query")
    @blp.response(200, CountSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """How many sounds a library holds (database rows and Milvus vectors)."""
        return SoundService(runtime()).count(args["library"])


@blp.route("/libraries")
class Libraries(MethodView):
    @blp.response(200, LibrarySchema(many=True))
    def get(self) -> Any:
        """All libraries with their sound counts."""
        return SoundService(runtime()).libraries()


@blp.route("/libraries/<string:library>")
class LibraryView(MethodView):
    @blp.arguments(DropArgs, location="query")
    @blp.response(200, DropResultSchema)
    @blp.alt_response(400, description="confirm is missing or does not repeat the name")
    def delete(self, args: dict[str, Any], library: str) -> Any:
        """Drop a whole library (sounds, vectors, audio). Requires ``?confirm=<library name>``."""
        return SoundService(runtime()).drop(library, args["confirm"])


@blp.route("/loads")
class Loads(MethodView):
    @blp.arguments(LoadsArgs, location="query")
    @blp.response(200, LoadSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """Progress of bulk loads run with ``voiceprint sounds load`` (newest first)."""
        return SoundService(runtime()).loads(args["library"])
