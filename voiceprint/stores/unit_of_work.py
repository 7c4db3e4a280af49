"""One unit of work: database rows, Milvus vectors and audio files, all or nothing.

The database is the source of truth and commits last::

    with UnitOfWork(rt.engine, rt.vectors, rt.blobs) as uow:
        uow.conn.execute(...)                                  # rows, in one transaction
        uow.put_file(key, data)                                # undone: file removed
        uow.upsert_vectors(coll, ids, vecs, owners, tenant=t)  # undone: vectors removed
        uow.delete_vectors(coll, ids, vecs, owners, tenant=t)  # undone: vectors put back
        uow.delete_file_after_commit(key)                      # only once the rows are gone

Vectors and files are written while the transaction is open. If anything
raises (the rows, Milvus, the disk, the commit itself) the transaction rolls
back and every vector/file step done so far is undone, newest first. Files
of deleted rows are removed only after the commit, so a failed delete never
loses audio.

A process killed mid-way (kill -9, power loss) cannot run the undo: it
leaves at most vectors and files without rows. ``voiceprint db check``
(:mod:`voiceprint.services.reconcile`) finds them and ``--repair`` removes
them; files get a grace period so that a live transaction's files are not
taken for leftovers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from sqlalchemy.engine import Connection, Engine

from voiceprint.stores.blobs import BlobStore
from voiceprint.stores.vectors import VectorStore

log = logging.getLogger(__name__)


@dataclass
class UnitOfWork:
    engine: Engine
    vectors: VectorStore
    blobs: BlobStore
    _undo: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    _after_commit: list[Callable[[], None]] = field(default_factory=list)
    _tx: Any = None
    conn: Connection = field(init=False)

    def __enter__(self) -> "UnitOfWork":
        self._tx = self.engine.begin()
        self.conn = self._tx.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        try:
            self._tx.__exit__(exc_type, exc, tb)  # commit, or roll back on error
        except BaseException:
            self._run_undo()
            raise
        if exc_type is not None:
            self._run_undo()
            return False
        for step in self._after_commit:
            try:
                step()
            except Exception:  # the rows are gone; a leftover file is found by `db check`
                log.exception("clean-up after commit failed; `voiceprint db check --repair` "
                              "removes what is left")
        return False

    def _run_undo(self) -> None:
        for what, step in reversed(self._undo):
            try:
                step()
            except Exception:
                log.exception("could not undo %s; run `voiceprint db check --repair`", what)
        self._undo.clear()

    # -- files -----------------------------------------------------------------------
    def put_file(self, key: str, data: bytes) -> None:
        """Write ``key`` now; removed again if the unit fails."""
        self._undo.append((f"file {key}", lambda: self.blobs.delete(key)))
        self.blobs.put(key, data)

    def delete_file_after_commit(self, key: str) -> None:
        self.after_commit(lambda: self.blobs.delete(key))

    def after_commit(self, step: Callable[[], None]) -> None:
        """Run ``step`` once the rows are committed (e.g. drop a collection no row names)."""
        self._after_commit.append(step)

    # -- vectors ---------------------------------------------------------------------
    def upsert_vectors(self, collection: str, ids: Sequence[int], vectors: np.ndarray,
                       owners: Sequence[int], *, tenant: int,
                       previous: tuple[np.ndarray, Sequence[int]] | None = None) -> None:
        """Write vectors; on failure they are deleted, or ``previous`` (vectors, owners
        of the same ids) is put back when the ids held vectors before."""
        ids = [int(i) for i in ids]

        def undo() -> None:
            if previous is None:
                self.vectors.delete(collection, ids)
            else:
                self.vectors.upsert(collection, ids, previous[0], previous[1], tenant=tenant)

        self._undo.append((f"vectors {ids[:5]} in {collection}", undo))
        self.vectors.upsert(collection, ids, vectors, owners, tenant=tenant)

    def delete_vectors(self, collection: str, ids: Sequence[int], vectors: np.ndarray,
                       owners: Sequence[int], *, tenant: int) -> None:
        """Delete vectors; on failure they are put back (``vectors``/``owners`` as stored)."""
        ids = [int(i) for i in ids]
        if not ids:
            return
        self._undo.append((f"deletion of vectors {ids[:5]} in {collection}",
                           lambda: self.vectors.upsert(collection, ids, vectors, owners,
                                                       tenant=tenant)))
        self.vectors.delete(collection, ids)
