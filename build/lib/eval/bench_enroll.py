"""Bulk enrollment throughput through the HTTP API.

    python -m eval.bench_enroll [--encoder ge2e] [--speakers 20] [--clips 10] [--per-request 10]

Enrolls ``--speakers`` x ``--clips`` real-speech clips (synthesized voices
from eval/cache/synth_voices, made on demand) over ``POST
/speakers/{id}/enrollments`` with ``--per-request`` clips per request, on a
fresh SQLite + Milvus Lite store, and prints clips/s and seconds of audio per
second. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from eval.synth_voices import synthesize_corpus

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoder", default="ge2e")
    p.add_argument("--model-dir", default=None)
    p.add_argument("--speakers", type=int, default=20)
    p.add_argument("--clips", type=int, default=10)
    p.add_argument("--per-request", type=int, default=10)
    p.add_argument("--corpus", default=str(HERE / "cache" / "synth_voices"))
    args = p.parse_args(argv)

    from voiceprint import create_app
    from voiceprint.audio import decode_file
    from voiceprint.stores import migrate

    corpus = synthesize_corpus(args.corpus, clips_per_speaker=max(args.clips, 20))
    chosen = sorted(corpus)[: args.speakers]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/vp.db"
        migrate.upgrade(url)
        app = create_app({"DATABASE_URL": url, "MILVUS_URI": f"{tmp}/milvus.db",
                          "AUDIO_DIR": f"{tmp}/audio", "SPEAKER_ENCODER": args.encoder,
                          "ECAPA_MODEL_DIR": args.model_dir or "", "PRELOAD_MODELS": False})
        rt = app.extensions["voiceprint"]
        rt.speaker_encoder()  # load outside the timing
        client = app.test_client()
        n = audio_s = 0.0
        t0 = time.perf_counter()
        for spk in chosen:
            sid = client.post("/speakers", json={"external_id": spk}).json["id"]
            paths = corpus[spk][: args.clips]
            for i in range(0, len(paths), args.per_request):
                batch = paths[i:i + args.per_request]
                r = client.post(f"/speakers/{sid}/enrollments", content_type="multipart/form-data",
                                data={"clips": [(io.BytesIO(p.read_bytes()), p.name) for p in batch]})
                assert r.status_code == 201, r.json
                n += len(r.json["accepted"])
                audio_s += sum(decode_file(p).duration_s for p in batch)
        dt = time.perf_counter() - t0
        print(f"| encoder | clips | clips/request | clips/s | audio s/s |\n|---|---|---|---|---|\n"
              f"| {args.encoder} | {int(n)} | {args.per_request} | {n / dt:.1f} | {audio_s / dt:.1f} |")
        rt.close()


if __name__ == "__main__":
    main()
