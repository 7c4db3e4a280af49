"""End-to-end identify latency with many enrolled utterances.

    python -m eval.bench_identify [--encoder ge2e] [--utterances 650000] [--per-speaker 10]
                                  [--milvus-server | --milvus URI] [--repeat 50]

Fills a fresh SQLite database and Milvus with ``--utterances`` synthetic
utterance embeddings (``--per-speaker`` per speaker, L2-normalised clusters
of the encoder's dimension, voiceprints = their means), enrolls one real
voice through the service, then times ``POST /identify`` with a 5 s clip
through the Flask test client: total, and its parts (embedding, search).
Prints a Markdown table; nothing is asserted.
"""
from __future__ import annotations

from eval.datasets import fsdd_dir

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf

from voiceprint.stores.records import speakers, to_blob, utcnow, utterances, voiceprints

FSDD = fsdd_dir()


def five_second_clip(sr: int = 8000) -> bytes:
    """About 5 s of real speech (FSDD digits of one speaker) or a voiced synthetic signal."""
    if FSDD.is_dir():
        parts, total = [], 0
        for p in sorted(FSDD.glob("*_jackson_*.wav")):
            x, sr = sf.read(p, dtype="float32")
            parts.append(x)
            total += len(x)
            if total >= 5 * sr:
                break
        x = np.concatenate(parts)[: 5 * sr]
    else:
        t = np.arange(5 * sr) / sr
        x = (0.3 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV")
    return buf.getvalue()


def populate(rt: Any, dim: int, n_utt: int, per_speaker: int, encoder: str, chunk: int = 20000) -> None:
    """Bulk rows + vectors: speakers, utterances, voiceprints (synthetic embeddings)."""
    rng = np.random.default_rng(0)
    n_spk = n_utt // per_speaker
    utt_coll, spk_coll = rt.collection(encoder, "utterances"), rt.collection(encoder, "speakers")
    rt.vectors.ensure_collection(utt_coll, dim)
    rt.vectors.ensure_collection(spk_coll, dim)
    now = utcnow()
    t0 = time.perf_counter()
    spk_per_chunk = max(1, chunk // per_speaker)
    for s0 in range(0, n_spk, spk_per_chunk):
        s1 = min(n_spk, s0 + spk_per_chunk)
        ids = np.arange(s0 + 1, s1 + 1)
        centres = rng.standard_normal((len(ids), dim)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        utt = np.repeat(centres, per_speaker, axis=0) + 0.9 * rng.standard_normal(
            (len(ids) * per_speaker, dim)).astype(np.float32) / np.sqrt(dim)
        utt /= np.linalg.norm(utt, axis=1, keepdims=True)
        owners = np.repeat(ids, per_speaker)
        utt_ids = np.arange(s0 * per_speaker + 1, s1 * per_speaker + 1)
        vps = utt.reshape(len(ids), per_speaker, dim).mean(axis=1)
        vps /= np.linalg.norm(vps, axis=1, keepdims=True)
        with rt.engine.begin() as conn:
            conn.execute(speakers.insert(), [
                {"id": int(i), "tenant_id": 1, "external_id": f"synthetic-{i}", "name": None, "meta": {},
                 "created_at": now, "updated_at": now} for i in ids])
            conn.execute(utterances.insert(), [
                {"id": int(u), "speaker_id": int(o), "encoder": encoder, "embedding": to_blob(v),
                 "filename": None, "content_sha256": "0" * 64, "audio_key": None, "duration_s": 3.0,
                 "speech_s": 3.0, "sample_rate": 16000, "created_at": now}
                for u, o, v in zip(utt_ids, owners, utt)])
            conn.execute(voiceprints.insert(), [
                {"speaker_id": int(i), "encoder": encoder, "embedding": to_blob(v),
                 "n_utterances": per_speaker, "speech_s": 30.0, "enrolled": True, "updated_at": now}
                for i, v in zip(ids, vps)])
        rt.vectors.insert(utt_coll, utt_ids.tolist(), utt, owners.tolist(), tenant=1)
        rt.vectors.insert(spk_coll, ids.tolist(), vps, ids.tolist(), tenant=1)
        print(f"  {s1 * per_speaker:,} utterances ({time.perf_counter() - t0:.0f} s)", flush=True)
    rt.vectors.flush(utt_coll)
    rt.vectors.flush(spk_coll)


@contextlib.contextmanager
def milvus_uri(args: argparse.Namespace, tmp: Path) -> Iterator[str]:
    if args.milvus_server:
        from voiceprint.stores.milvus_server import milvus_server
        with milvus_server(tmp / "milvus-server") as uri:
            yield uri
    else:
        yield args.milvus or str(tmp / "milvus.db")


def percentile_ms(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoder", default="ge2e")
    p.add_argument("--model-dir", default=None)
    p.add_argument("--utterances", type=int, default=650_000)
    p.add_argument("--per-speaker", type=int, default=10)
    p.add_argument("--milvus", default=None, help="Milvus URI (default: a Milvus Lite file)")
    p.add_argument("--milvus-server", action="store_true", help="start a local Milvus server")
    p.add_argument("--speaker-model", default="centroid", choices=["centroid", "best_utterance"])
    p.add_argument("--repeat", type=int, default=50)
    args = p.parse_args(argv)

    from voiceprint import create_app
    from voiceprint.services.intake import Upload
    from voiceprint.services.recognition import RecognitionService
    from voiceprint.stores import migrate

    with tempfile.TemporaryDirectory() as tmpdir, milvus_uri(args, Path(tmpdir)) as uri:
        tmp = Path(tmpdir)
        url = f"sqlite:///{tmp / 'vp.db'}"
        migrate.upgrade(url)
        app = create_app({"DATABASE_URL": url, "MILVUS_URI": uri, "AUDIO_DIR": str(tmp / "audio"),
                          "SPEAKER_ENCODER": args.encoder, "PRELOAD_MODELS": False,
                          "SPEAKER_MODEL": args.speaker_model,
                          "ECAPA_MODEL_DIR": args.model_dir or ""})
        rt = app.extensions["voiceprint"]
        encoder = rt.speaker_encoder()
        print(f"populating {args.utterances:,} utterances ({encoder.name}, {encoder.dim}-d) into {uri}")
        populate(rt, encoder.dim, args.utterances, args.per_speaker, encoder.name)

        clip = five_second_clip()
        client = app.test_client()
        svc = RecognitionService(rt, 1)
        wave = svc.embed_query(Upload(clip))  # warm-up, and the decoded query
        totals, embeds, searches = [], [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r = client.post("/identify", data={"clip": (io.BytesIO(clip), "q.wav")},
                            content_type="multipart/form-data")
            totals.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.json
            t0 = time.perf_counter()
            vec, _ = svc.embed_query(Upload(clip))
            embeds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            svc._search(encoder.name, vec, 5)
            searches.append(time.perf_counter() - t0)
        del wave
        kind = "Milvus server" if not uri.endswith(".db") else "Milvus Lite"
        print(f"\n| {args.utterances:,} utterances, {encoder.name}, {kind}, {args.speaker_model} "
              f"| p50 ms | p90 ms | p99 ms |\n|---|---|---|---|")
        for name, xs in (("identify end to end (HTTP)", totals), ("decode+VAD+embed 5 s", embeds),
                         ("vector search", searches)):
            print(f"| {name} | {percentile_ms(xs, 50):.1f} | {percentile_ms(xs, 90):.1f} | "
                  f"{percentile_ms(xs, 99):.1f} |")
        rt.close()


if __name__ == "__main__":
    main()
