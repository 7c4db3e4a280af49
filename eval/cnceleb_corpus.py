"""CN-Celeb on disk: the corpus layout, its trial lists, and cached embeddings of its files.

Used by :mod:`eval.cnceleb` (``--data``). A corpus is one or more roots with
CN-Celeb's layout (``data/<speaker>/...``, ``eval/enroll``, ``eval/test``,
``eval/lists``); embeddings are cached per encoder in ``.npz`` shards, so a
re-run embeds only what is new.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)
AUDIO_EXTENSIONS = (".flac", ".wav")


@dataclass
class Corpus:
    """Resolved CN-Celeb files: training utterances, enrollments, trials."""

    train: list[tuple[str, Path]]            # (speaker, file)
    enroll: dict[str, list[Path]]            # enroll id -> files
    trials: list[tuple[str, Path, int]]      # (enroll id, test file, 1 target / 0 non-target)
    notes: list[str] = field(default_factory=list)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)


def _corpus_roots(path: Path) -> list[Path]:
    """``path`` itself if it has ``data/`` or ``eval/``, else such subfolders."""
    if not path.is_dir():
        raise SystemExit(f"{path} is not a directory")
    if (path / "data").is_dir() or (path / "eval").is_dir():
        return [path]
    roots = sorted(p for p in path.iterdir() if p.is_dir()
                   and ((p / "data").is_dir() or (p / "eval").is_dir()))
    if not roots:
        raise SystemExit(f"{path}: no CN-Celeb layout (data/ or eval/) found")
    return roots


class _Resolver:
    """Finds list entries on disk: as written, under enroll/ or test/, or by stem."""

    def __init__(self, eval_dir: Path) -> None:
        self.eval_dir = eval_dir
        self.by_stem: dict[str, Path] = {}
        for sub in ("enroll", "test"):
            if (eval_dir / sub).is_dir():
                for p in _audio_files(eval_dir / sub):
                    self.by_stem.setdefault(p.stem, p)
        self.missing = 0

    def __call__(self, name: str) -> Path | None:
        for cand in (self.eval_dir / name, self.eval_dir / "enroll" / name,
                     self.eval_dir / "test" / name):
            if cand.is_file():
                return cand
        stem = Path(name).stem if Path(name).suffix.lower() in AUDIO_EXTENSIONS else Path(name).name
        hit = self.by_stem.get(stem)
        if hit is None:
            self.missing += 1
        return hit


def _label(token: str) -> int:
    t = token.lower()
    if t in ("1", "target", "tgt", "true"):
        return 1
    if t in ("0", "nontarget", "non-target", "imp", "false"):
        return 0
    raise ValueError(f"unknown trial label {token!r}")


def load_corpus(paths: Sequence[Path], *, limit_train: int | None = None) -> Corpus:
    """Read one or more CN-Celeb roots (see the module docstring for the layout)."""
    roots = [r for p in paths for r in _corpus_roots(Path(p))]
    enroll: dict[str, list[Path]] = {}
    trials: list[tuple[str, Path, int]] = []
    notes: list[str] = []
    for root in roots:
        eval_dir = root / "eval"
        if not eval_dir.is_dir():
            continue
        resolve = _Resolver(eval_dir)
        lists = eval_dir / "lists"
        for name in ("enroll.lst", "enroll.map"):
            f = lists / name
            if not f.is_file():
                continue
            notes.append(f"enrollments from {f}")
            for line in f.read_text().split("\n"):
                parts = line.split()
                if len(parts) < 2:
                    continue
                files = [p for p in (resolve(t) for t in parts[1:]) if p is not None]
                if files:
                    enroll.setdefault(parts[0], files)
            break
        else:
            if (eval_dir / "enroll").is_dir():
                notes.append(f"enrollments: every file in {eval_dir / 'enroll'} (id = stem)")
                for p in _audio_files(eval_dir / "enroll"):
                    enroll.setdefault(p.stem, [p])
        tf = lists / "trials.lst"
        if tf.is_file():
            for line in tf.read_text().split("\n"):
                parts = line.split()
                if len(parts) < 3:
                    continue
                test = resolve(parts[1])
                if test is not None:
                    trials.append((parts[0], test, _label(parts[2])))
        if resolve.missing:
            notes.append(f"{root}: {resolve.missing} listed files not found, skipped")
    eval_speakers = {e.split("-")[0] for e in enroll}
    train: list[tuple[str, Path]] = []
    for root in roots:
        data = root / "data"
        if not data.is_dir():
            continue
        dev_list = root / "dev" / "dev.lst"
        if dev_list.is_file():
            speakers = [s for s in dev_list.read_text().split() if (data / s).is_dir()]
            notes.append(f"{root}: training speakers from {dev_list} ({len(speakers)})")
        else:
            speakers = sorted(p.name for p in data.iterdir()
                              if p.is_dir() and p.name not in eval_speakers)
            notes.append(f"{root}: training speakers = data/* minus evaluation speakers "
                         f"({len(speakers)})")
        for spk in speakers:
            train.extend((spk, p) for p in _audio_files(data / spk))
    if limit_train is not None and len(train) > limit_train:
        pick = np.random.default_rng(0).choice(len(train), limit_train, replace=False)
        train = [train[i] for i in sorted(pick)]
        notes.append(f"training utterances limited to {limit_train} (random, seed 0)")
    missing_enroll = {e for e, _, _ in trials} - set(enroll)
    if missing_enroll:
        notes.append(f"{len(missing_enroll)} enrollment ids in trials have no audio; "
                     "their trials are skipped")
        trials = [t for t in trials if t[0] in enroll]
    return Corpus(train=train, enroll=enroll, trials=trials, notes=notes)


# --------------------------------------------------------------------------- embedding
class EmbeddingCache:
    """``<root>/<encoder>/shard-NNNNNN.npz`` files: keys (absolute paths), vectors, timings."""

    def __init__(self, root: Path, encoder_name: str) -> None:
        self.dir = Path(root) / encoder_name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.vectors: dict[str, np.ndarray] = {}
        self.timing: dict[str, tuple[float, float, float]] = {}  # audio s, decode s, embed s
        self._next = 0
        for shard in sorted(self.dir.glob("shard-*.npz")):
            with np.load(shard, allow_pickle=False) as z:
                for key, vec, t in zip(z["keys"], z["vectors"], z["timing"]):
                    self.vectors[str(key)] = vec
                    self.timing[str(key)] = tuple(float(v) for v in t)  # type: ignore[assignment]
            self._next = max(self._next, int(shard.stem.split("-")[1]) + 1)

    @staticmethod
    def key(path: Path) -> str:
        return str(Path(path).resolve())

    def save(self, keys: list[str], vectors: np.ndarray, timing: np.ndarray) -> None:
        if not keys:
            return
        name = self.dir / f"shard-{self._next:06d}.npz"
        tmp = name.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=vectors.astype(np.float32),
                 timing=timing.astype(np.float64))
        tmp.replace(name)
        self._next += 1
        for k, v, t in zip(keys, vectors, timing):
            self.vectors[k] = v
            self.timing[k] = tuple(float(x) for x in t)  # type: ignore[assignment]


def embed_files(encoder: Any, paths: Sequence[Path], cache: EmbeddingCache, *,
                batch_size: int = 16, shard_size: int = 2048, desc: str = "embed"
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings (n, dim) of ``paths`` (NaN rows for unreadable files) and timing stats.

    Timing per clip: decoding + resampling and feature extraction + model
    (``embed_batch``), each batch's wall time split evenly over its clips.
    """
    from tqdm import tqdm

    from voiceprint.audio.decode import decode_file
    from voiceprint.audio.resample import resample
    from voiceprint.errors import AudioError

    keys = [cache.key(p) for p in paths]
    todo = sorted({k for k in keys if k not in cache.vectors})
    failed: list[str] = []
    pending_keys: list[str] = []
    pending_vecs: list[np.ndarray] = []
    pending_time: list[tuple[float, float, float]] = []
    with tqdm(total=len(todo), desc=desc, unit="clip") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            t0 = time.perf_counter()
            waves, ok, seconds = [], [], []
            for k in batch:
                try:
                    audio = decode_file(k)
                except AudioError as exc:
                    log.warning("skipping %s: %s", k, exc.message)
                    failed.append(k)
                    continue
                waves.append(resample(audio.samples, audio.sample_rate, encoder.sample_rate))
                ok.append(k)
                seconds.append(audio.duration_s)
            t1 = time.perf_counter()
            vecs = encoder.embed_batch(waves) if waves else np.zeros((0, encoder.dim), np.float32)
            t2 = time.perf_counter()
            for k, v, s in zip(ok, vecs, seconds):
                pending_keys.append(k)
                pending_vecs.append(v)
                pending_time.append((s, (t1 - t0) / max(1, len(ok)), (t2 - t1) / max(1, len(ok))))
            if len(pending_keys) >= shard_size:
                cache.save(pending_keys, np.stack(pending_vecs), np.array(pending_time))
                pending_keys, pending_vecs, pending_time = [], [], []
            bar.update(len(batch))
    if pending_keys:
        cache.save(pending_keys, np.stack(pending_vecs), np.array(pending_time))
    dim = encoder.dim
    out = np.full((len(keys), dim), np.nan, dtype=np.float32)
    for i, k in enumerate(keys):
        v = cache.vectors.get(k)
        if v is not None:
            out[i] = v
    timing = np.array([cache.timing[k] for k in set(keys) if k in cache.timing]).reshape(-1, 3)
    stats = {
        "clips": len(set(keys)), "embedded_now": len(todo) - len(failed),
        "from_cache": len(set(keys)) - len(todo), "failed": len(failed),
        "audio_hours": float(timing[:, 0].sum() / 3600) if len(timing) else 0.0,
        "mean_clip_s": float(timing[:, 0].mean()) if len(timing) else None,
        "decode_ms_per_clip": float(1e3 * timing[:, 1].mean()) if len(timing) else None,
        "embed_ms_per_clip": float(1e3 * timing[:, 2].mean()) if len(timing) else None,
        "real_time_factor": float(timing[:, 1:].sum() / timing[:, 0].sum())
        if len(timing) and timing[:, 0].sum() > 0 else None,
    }
    return out, stats
