"""Sound libraries of one tenant: look up, create, list, drop; bulk-load progress.

Each named library is a row in ``sound_libraries`` (names are unique within
a tenant) and its own Milvus collection ``<prefix>_<encoder>_sounds_<id>``:
searches never cross libraries (or tenants), dropping one is a collection
drop, and a library keeps the encoder it was created with (changing
``VOICEPRINT_SOUND_ENCODER`` affects new libraries only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from voiceprint.errors import NotFound, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.services.sounds.formats import DEFAULT_LIBRARY, check_library_name
from voiceprint.stores.records import sound_libraries, sound_loads, sound_tags, sounds, utcnow
from voiceprint.stores.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Library:
    id: int
    tenant_id: int
    name: str
    encoder: str
    dim: int
    created_at: Any
    collection: str


def collection_name(rt: Runtime, encoder: str, library_id: int) -> str:
    return rt.collection(encoder, f"sounds_{int(library_id)}")


def library_of(rt: Runtime, row: Any) -> Library:
    return Library(int(row.id), int(row.tenant_id), row.name, row.encoder, int(row.dim),
                   row.created_at, collection_name(rt, row.encoder, row.id))


class LibraryCatalog:
    def __init__(self, rt: Runtime, tenant_id: int) -> None:
        self.rt = rt
        self.tenant_id = tenant_id

    def ready(self, lib: Library) -> Library:
        """Make sure the library's collection exists and is loaded (Milvus Lite leaves it
        released after an unclean shutdown); cheap after the first call."""
        self.rt.vectors.ensure_collection(lib.collection, lib.dim)
        return lib

    def _row(self, name: str) -> Any:
        with self.rt.engine.connect() as conn:
            return conn.execute(sa.select(sound_libraries).where(
                sound_libraries.c.tenant_id == self.tenant_id,
                sound_libraries.c.name == name)).first()

    def library(self, name: str = DEFAULT_LIBRARY, *, create: bool = False) -> Library:
        """The library ``name``; created (with the configured sound encoder) when ``create``."""
        check_library_name(name)
        row = self._row(name)
        if row is not None:
            return library_of(self.rt, row)
        if not create:
            raise NotFound(f"sound library {name!r} does not exist (the first insert creates it)",
                           reason="library_not_found")
        encoder = self.rt.sound_encoder()
        try:
            with self.rt.engine.begin() as conn:
                conn.execute(sound_libraries.insert().values(
                    tenant_id=self.tenant_id, name=name, encoder=encoder.name, dim=encoder.dim,
                    created_at=utcnow()))
        except sa.exc.IntegrityError:  # created meanwhile by another request
            pass
        return self.ready(library_of(self.rt, self._row(name)))

    def libraries(self) -> list[dict[str, Any]]:
        with self.rt.engine.connect() as conn:
            rows = conn.execute(sa.select(sound_libraries).where(
                sound_libraries.c.tenant_id == self.tenant_id).order_by(sound_libraries.c.id)).all()
            counts = dict(conn.execute(
                sa.select(sounds.c.library_id, sa.func.count())
                .where(sounds.c.library_id.in_([r.id for r in rows] or [-1]))
                .group_by(sounds.c.library_id)).all())
        return [{"id": r.id, "name": r.name, "encoder": r.encoder, "dim": r.dim,
                 "created_at": r.created_at, "sounds": int(counts.get(r.id, 0))} for r in rows]

    def drop(self, library: str, confirm: str | None) -> dict[str, Any]:
        """Delete a whole library: rows, its collection and its audio files.

        ``confirm`` must repeat the library's name. The rows go in one
        transaction; the collection and the files go after the commit (if that
        fails, `voiceprint db check --repair` removes what is left: no row
        points at them any more).
        """
        lib = self.library(library)
        if confirm != lib.name:
            raise VoiceprintError(
                f"dropping library {lib.name!r} deletes all its sounds: repeat its name as "
                f"confirm={lib.name}", reason="confirmation_required", status=400)
        rt = self.rt
        with UnitOfWork(rt.engine, rt.vectors, rt.blobs) as uow:
            conn = uow.conn
            n = int(conn.execute(sa.select(sa.func.count()).select_from(sounds)
                                 .where(sounds.c.library_id == lib.id)).scalar_one())
            # explicit deletes: MySQL/SQLite cascades work too, but this is dialect-proof
            conn.execute(sound_tags.delete().where(sound_tags.c.sound_id.in_(
                sa.select(sounds.c.id).where(sounds.c.library_id == lib.id))))
            conn.execute(sounds.delete().where(sounds.c.library_id == lib.id))
            conn.execute(sound_loads.delete().where(sound_loads.c.library_id == lib.id))
            conn.execute(sound_libraries.delete().where(sound_libraries.c.id == lib.id))
            uow.after_commit(lambda: rt.vectors.drop(lib.collection))
            for key in rt.blobs.keys(f"sounds/{lib.id}/", include_temp=True):
                uow.delete_file_after_commit(key)
        return {"library": lib.name, "dropped": True, "sounds": n}

    def loads(self, library: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Progress of recent bulk loads, newest first."""
        q = (sa.select(sound_loads, sound_libraries.c.name.label("library"))
             .join(sound_libraries, sound_libraries.c.id == sound_loads.c.library_id)
             .where(sound_libraries.c.tenant_id == self.tenant_id)
             .order_by(sound_loads.c.id.desc()).limit(limit))
        if library is not None:
            q = q.where(sound_libraries.c.name == check_library_name(library))
        with self.rt.engine.connect() as conn:
            rows = conn.execute(q).all()
        out = []
        for r in rows:
            d = {k: getattr(r, k) for k in ("id", "library", "status", "total", "processed",
                                            "loaded", "skipped", "failed", "started_at",
                                            "updated_at", "finished_at")}
            d["percent"] = round(100.0 * r.processed / r.total, 1) if r.total else 100.0
            out.append(d)
        return out
