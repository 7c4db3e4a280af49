"""End to end on real recordings (FSDD, 6 speakers, 8 kHz) with the ge2e and campplus encoders.

Each speaker is enrolled over HTTP from its 10 training clips (one per
digit, indices 5-14; FSDD's own split keeps 0-4 for testing) joined into 3 recordings of 3-4
digits (single 0.4 s digits are too short to agree with each other: the
enrollment consistency check rejects them); queries are 5 concatenated
held-out test clips (indices 0-4). Skipped when ../shared/data/fsdd is absent.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import concat_wav, fsdd_clips, multipart
from voiceprint.scoring.metrics import compute_eer

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


@pytest.fixture(params=["ge2e", "campplus"])
def encoder(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def app_config(app_config, encoder):
    # FSDD clips are single digits (~0.4 s): relax the per-clip gate, keep the total
    return {**app_config, "MIN_CLIP_SPEECH_SECONDS": 0.05, "MIN_QUERY_SPEECH_SECONDS": 0.5,
            "ENROLL_MIN_SPEECH_SECONDS": 1.0, "SPEAKER_ENCODER": encoder.name}


@pytest.fixture
def client(app, encoder):
    app.extensions["voiceprint"].models.put(encoder)
    return app.test_client()


def _queries(speaker: str) -> list[bytes]:
    """10 queries per speaker: test index i, digits 0-4 or 5-9 concatenated."""
    out = []
    for i in range(5):
        for digits in (range(0, 5), range(5, 10)):
            out.append(concat_wav(fsdd_clips(speaker, [i], digits)))
    return out


@pytest.mark.slow
def test_fsdd_identification_and_verification(client, encoder, fsdd, capsys):
    ids = {}
    for spk in SPEAKERS:
        ids[spk] = client.post("/speakers", json={"external_id": spk}).json["id"]
        train = [fsdd / f"{d}_{spk}_{5 + d}.wav" for d in range(10)]
        clips = [concat_wav(train[a:b]) for a, b in ((0, 4), (4, 7), (7, 10))]
        r = client.post(f"/speakers/{ids[spk]}/enrollments", data=multipart(clips=clips),
                        content_type="multipart/form-data")
        assert r.status_code == 201, r.json
        assert r.json["enrollment"]["status"] == "enrolled", r.json

    correct, total, scores, labels = 0, 0, [], []
    for spk in SPEAKERS:
        for q in _queries(spk):
            r = client.post("/identify", data=multipart(clip=q, top_k="6"),
                            content_type="multipart/form-data")
            assert r.status_code == 200, r.json
            cands = r.json["candidates"]
            assert len(cands) == 6
            total += 1
            correct += cands[0]["external_id"] == spk
            for c in cands:
                scores.append(c["score"])
                labels.append(int(c["external_id"] == spk))
    accuracy = correct / total
    scores_a, labels_a = np.array(scores), np.array(labels)
    eer, threshold = compute_eer(scores_a, labels_a)
    genuine, impostor = scores_a[labels_a == 1], scores_a[labels_a == 0]
    with capsys.disabled():
        print(f"\nFSDD {encoder.name}: top-1 {accuracy:.3f} on {total} queries; EER {eer:.3%} at cosine "
              f"{threshold:.3f}; genuine mean {genuine.mean():.3f}, impostor mean {impostor.mean():.3f}")
    assert accuracy >= 0.95
    assert genuine.mean() - impostor.mean() > 0.1
    assert eer < 0.05

    # /verify gives the same score as identify's candidate list, judged at a stated threshold
    q = _queries("theo")[0]
    r = client.post("/verify", data=multipart(clip=q, external_id="theo"),
                    content_type="multipart/form-data")
    assert r.status_code == 200
    assert r.json["threshold"] == r.json["operating_point"]["threshold"]
    assert r.json["accepted"] == (r.json["score"] >= r.json["threshold"])
    r2 = client.post("/verify", data=multipart(clip=q, external_id="george"),
                     content_type="multipart/form-data")
    assert r2.json["score"] < r.json["score"]
