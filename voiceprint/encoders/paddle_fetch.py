"""Finding, unpacking and downloading PaddleSpeech checkpoints.

Shared by the ``ecapa_tdnn`` and ``panns_cnn14`` encoders. A model is looked
for, in this order:

1. the ``model_dir`` option (the application sets it from its
   ``ECAPA_MODEL_DIR`` / ``PANNS_MODEL_DIR`` setting): a directory holding the
   checkpoint files (directly or one or two levels down), or the PaddleSpeech
   ``.tar.gz`` archive itself, which is unpacked once into voiceprint's cache
   (``cache_dir``, keyed by the archive's md5);
2. PaddleSpeech's own cache, ``<paddlespeech_home>/models/<tag>/<version>/``
   (``paddlespeech_home`` defaults to ``~/.paddlespeech``), where
   ``paddlespeech`` itself downloads and unpacks the same archives;
3. a download of PaddleSpeech's archive (URL and md5 from PaddleSpeech
   1.5.0's ``resource/pretrained_models.py``) into that same directory, with
   a short timeout, unless ``offline``.

When all fail, :class:`~voiceprint.errors.EncoderUnavailable` says which file
to download, its md5 and where to put it. Nothing here imports paddle.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from voiceprint.errors import EncoderUnavailable

#: seconds allowed for connecting to / reading from the download server
DOWNLOAD_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PretrainedSpec:
    """One PaddleSpeech pretrained archive and the files a usable copy holds."""

    #: PaddleSpeech's model tag, e.g. ``ecapatdnn_voxceleb12-16k``
    tag: str
    version: str
    url: str
    md5: str
    #: paths relative to the model root, all of which must exist
    required: tuple[str, ...]
    #: the setting (environment variable of the application) naming a model directory or archive
    env_var: str
    #: human name used in messages
    title: str

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class FetchSettings:
    """Where to look and whether to download (from :class:`EncoderOptions`)."""

    cache_dir: Path
    paddlespeech_home: Path | None = None
    offline: bool = False

    @property
    def home(self) -> Path:
        return self.paddlespeech_home or Path.home() / ".paddlespeech"


def paddlespeech_model_dir(spec: PretrainedSpec, home: Path | None = None) -> Path:
    """Where PaddleSpeech 1.5.0 downloads ``spec``: ``<home>/models/<tag>/<version>``."""
    return (home or Path.home() / ".paddlespeech") / "models" / spec.tag / spec.version


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def find_model_root(directory: str | Path, required: tuple[str, ...],
                    max_depth: int = 2) -> Path | None:
    """The shallowest directory at most ``max_depth`` levels below ``directory``
    that holds every path in ``required``, or None."""
    level = [Path(directory)]
    for _ in range(max_depth + 1):
        nxt: list[Path] = []
        for d in level:
            if not d.is_dir():
                continue
            if all((d / r).is_file() for r in required):
                return d
            try:
                nxt.extend(sorted(p for p in d.iterdir() if p.is_dir()))
            except OSError:
                continue
        level = nxt
    return None


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith((".tar.gz", ".tgz", ".tar"))


def extract_archive(archive: Path, dest: Path) -> None:
    """Extract a tar archive into ``dest``, refusing members that leave it."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            target = (root / m.name).resolve()
            if target != root and root not in target.parents:
                raise EncoderUnavailable(f"archive {archive.name} has a member outside its root: {m.name}")
            if m.issym() or m.islnk():
                raise EncoderUnavailable(f"archive {archive.name} holds a link ({m.name}); refusing it")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(dest, members=members)


def unpack_to_cache(archive: Path, spec: PretrainedSpec, cache_dir: Path) -> Path:
    """Unpack ``archive`` once into ``<cache_dir>/paddlespeech/<name>-<md5>`` and
    return the model root inside it."""
    digest = file_md5(archive)
    stem = archive.name.split(".")[0]
    dest = cache_dir / "paddlespeech" / f"{stem}-{digest[:16]}"
    root = find_model_root(dest, spec.required)
    if root is not None:
        return root
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=dest.parent))
    try:
        extract_archive(archive, tmp)
        if find_model_root(tmp, spec.required) is None:
            raise EncoderUnavailable(
                f"{archive.name} does not hold {', '.join(spec.required)}",
                details={"required": list(spec.required)})
        if dest.exists() and find_model_root(dest, spec.required) is None:
            shutil.rmtree(dest, ignore_errors=True)  # an incomplete leftover
        try:
            os.rename(tmp, dest)
        except OSError:  # another process finished first
            if find_model_root(dest, spec.required) is None:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    root = find_model_root(dest, spec.required)
    assert root is not None
    return root


def download_file(url: str, dest: Path, md5: str, *, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` (atomically) and check its md5; raises OSError/ValueError."""
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.md5()
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as out:
            for block in iter(lambda: resp.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
    if digest.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise ValueError(f"md5 mismatch for {url}: got {digest.hexdigest()}, expected {md5}")
    os.replace(part, dest)
    return dest


def _unpack_like_paddlespeech(archive: Path, spec: PretrainedSpec) -> Path | None:
    """Unpack an archive lying in PaddleSpeech's cache next to itself, as
    PaddleSpeech's downloader does, and return the model root."""
    extract_archive(archive, archive.parent)
    return find_model_root(archive.parent, spec.required)


def _no_weights_error(spec: PretrainedSpec, cache: Path, tried: list[str]) -> EncoderUnavailable:
    message = (
        f"{spec.title} weights not found. Download {spec.url} (md5 {spec.md5}) and either "
        f"set {spec.env_var} (the encoder's model_dir) to that archive or to the "
        f"directory it unpacks to, or put the archive in {cache}/ (PaddleSpeech's cache, "
        f"$PPSPEECH_HOME/models/{spec.tag}/{spec.version}). Tried: " + "; ".join(tried))
    return EncoderUnavailable(message, reason="weights_missing", details={
        "url": spec.url, "md5": spec.md5, "env_var": spec.env_var, "tried": tried})


def _explicit_root(spec: PretrainedSpec, path: Path, settings: FetchSettings) -> Path:
    if path.is_dir():
        root = find_model_root(path, spec.required)
        if root is None:
            raise EncoderUnavailable(
                f"{spec.env_var} does not hold {', '.join(spec.required)} (the {spec.title} "
                f"checkpoint; download {spec.url}, md5 {spec.md5})",
                reason="weights_missing", details={"url": spec.url, "md5": spec.md5})
        return root
    if is_archive(path):
        try:
            return unpack_to_cache(path, spec, settings.cache_dir)
        except (OSError, tarfile.TarError) as exc:
            raise EncoderUnavailable(
                f"cannot unpack the {spec.title} archive into the cache directory "
                f"({type(exc).__name__}); set the cache directory to a writable place or "
                "unpack the archive yourself", reason="weights_unreadable") from exc
    raise EncoderUnavailable(
        f"{spec.env_var} is neither a directory nor a .tar.gz archive; download "
        f"{spec.url} (md5 {spec.md5})", reason="weights_missing",
        details={"url": spec.url, "md5": spec.md5})


def resolve_model_root(spec: PretrainedSpec, model_dir: str | os.PathLike[str] | None,
                       settings: FetchSettings, *,
                       downloader: Callable[..., Path] | None = None,
                       timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Directory holding ``spec.required``, found as the module docstring says.

    An explicit ``model_dir`` that does not hold the model raises at once
    rather than falling through to other places.
    """
    if model_dir:
        return _explicit_root(spec, Path(model_dir).expanduser(), settings)

    tried: list[str] = []
    cache = paddlespeech_model_dir(spec, settings.home)
    root = find_model_root(cache, spec.required)
    if root is not None:
        return root
    archive = cache / spec.archive_name
    if archive.is_file():
        if file_md5(archive) == spec.md5:
            try:
                root = _unpack_like_paddlespeech(archive, spec)
            except (OSError, tarfile.TarError) as exc:
                tried.append(f"{archive.name} in PaddleSpeech's cache (cannot unpack: {type(exc).__name__})")
            else:
                if root is not None:
                    return root
                tried.append(f"{archive.name} in PaddleSpeech's cache (does not hold {', '.join(spec.required)})")
        else:
            tried.append(f"{archive.name} in PaddleSpeech's cache (md5 is not {spec.md5})")
    else:
        tried.append("PaddleSpeech's cache (no model files)")

    if settings.offline:
        tried.append("no download attempted (offline)")
        raise _no_weights_error(spec, cache, tried)
    fetch = downloader or download_file
    started = time.monotonic()
    try:
        fetch(spec.url, archive, spec.md5, timeout=timeout)
        root = _unpack_like_paddlespeech(archive, spec)
    except (OSError, ValueError, tarfile.TarError, EncoderUnavailable) as exc:
        tried.append(f"download from {spec.url} failed after "
                     f"{time.monotonic() - started:.1f} s: {exc}")
        raise _no_weights_error(spec, cache, tried) from exc
    if root is None:
        tried.append(f"downloaded {archive.name} but it does not hold {', '.join(spec.required)}")
        raise _no_weights_error(spec, cache, tried)
    return root
