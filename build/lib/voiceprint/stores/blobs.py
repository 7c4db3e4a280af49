"""Audio blobs on the local filesystem, addressed by keys the service makes.

Keys look like ``utterances/<speaker>/<id>.flac``; they never come from
users, and :meth:`BlobStore.path` refuses anything that would leave the root,
so the HTTP layer cannot be made to serve arbitrary server paths. Writes go
to a temporary file (``.tmp-*``) in the target folder, are flushed to disk
and renamed into place, so a crash leaves either nothing, a complete file,
or a ``.tmp-*`` file that ``voiceprint db check --repair`` removes.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

TEMP_PREFIX = ".tmp-"


class BlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents:
            raise ValueError("blob key escapes the store")
        return p

    def put(self, key: str, data: bytes) -> None:
        """Write atomically (temp file, fsync, rename), creating folders."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "", *, include_temp: bool = False) -> list[str]:
        """Keys below ``prefix`` (a folder), sorted; ``.tmp-*`` files only with ``include_temp``."""
        base = self.path(prefix) if prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*")
                      if p.is_file() and (include_temp or not p.name.startswith(TEMP_PREFIX)))

    def age_seconds(self, key: str) -> float:
        """Seconds since the file was last modified (0 if it is gone)."""
        try:
            return max(0.0, time.time() - self.path(key).stat().st_mtime)
        except FileNotFoundError:
            return 0.0
