"""Who spoke when: the diarization pipeline (no HTTP, no database).

``Diarizer(segmentation, encoder, options).run(waveform_16k)`` does, in blocks
of chunks so that memory stays bounded for hour-long recordings:

1. **segmentation** - pyannote segmentation-3.0 on 10 s chunks every
   ``step_seconds``; per chunk and frame (16.875 ms) the activity of up to 3
   local speakers (2 at once);
2. **voice activity and overlap** - the chunks' probabilities of "someone
   speaks" and "two speak" averaged over overlapping chunks, binarised with
   onset/offset hysteresis and minimum durations; per frame this gives the
   number of active speakers (0, 1 or 2);
3. **embeddings** - every local speaker of every chunk is embedded by the
   speaker encoder from its clean (non-overlapped) speech;
4. **clustering** - agglomerative clustering of those embeddings with a
   cosine threshold (or a given number of speakers), constrained assignment
   of every local speaker to a cluster (:mod:`.clustering`);
5. **reconstruction** - per frame, the clusters with the highest summed
   activity, as many as step 2 counted; frames with two speakers carry both
   labels and ``overlap = True``.

Times are in seconds from the start of the waveform, rounded to milliseconds.
Each label's centroid is the L2-normalised mean of its members' embeddings
(encoder space; compare with cosine similarity in [-1, 1]).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from voiceprint.diarization.clustering import cluster_local_speakers
from voiceprint.diarization.frames import (fill_gaps, hysteresis, overlap_add, remove_short, runs,
                                           select_top)
from voiceprint.diarization.segmentation import SegmentationModel, chunk_starts, read_chunks
from voiceprint.encoders.base import Encoder
from voiceprint.errors import AudioError, VoiceprintError

ProgressFn = Callable[[float], None]
"""Called with the fraction of the work done, in [0, 1], non-decreasing."""


@dataclass(frozen=True)
class DiarizationOptions:
    """Tuning knobs; durations in seconds, probabilities in [0, 1].

    - ``step_seconds``: hop of the 10 s analysis window (smaller: more
      accurate, slower; both segmentation and embedding cost scale with 1/step);
    - ``speech_onset``/``speech_offset`` and ``overlap_*``: hysteresis
      thresholds on the averaged probability of speech / of two voices;
    - ``min_speech_seconds``, ``min_silence_seconds``, ``min_overlap_seconds``:
      shorter speech or overlap is dropped, shorter silences are bridged;
    - ``min_embed_seconds``: a local speaker with less speech in a chunk is
      not embedded (its frames go to the other speakers);
    - ``min_train_seconds``: clean speech of a local speaker needed for its
      embedding to shape the clusters (the others are only assigned);
    - ``min_cluster_seconds``: a speaker with less clean speech than this in
      the whole recording is folded into the most similar speaker (unless
      the number of speakers is given);
    - ``threshold``: cosine similarity (in [-1, 1]) above which two groups of
      local speakers are one speaker; depends on the encoder
      (:data:`DEFAULT_THRESHOLDS`);
    - ``max_speakers``: upper bound on the estimated number of speakers;
    - ``chunks_per_block``: chunks processed (and held in memory) at once.
    """

    step_seconds: float = 2.5
    speech_onset: float = 0.5
    speech_offset: float = 0.4
    overlap_onset: float = 0.5
    overlap_offset: float = 0.4
    min_speech_seconds: float = 0.1
    min_silence_seconds: float = 0.1
    min_overlap_seconds: float = 0.1
    min_embed_seconds: float = 0.1
    min_train_seconds: float = 2.0
    min_cluster_seconds: float = 2.0
    threshold: float | None = None
    max_speakers: int | None = None
    chunks_per_block: int = 32

    def __post_init__(self) -> None:
        if not 0.1 <= self.step_seconds <= 10.0:
            raise ValueError("step_seconds must be within [0.1, 10] s")
        if self.speech_offset > self.speech_onset or self.overlap_offset > self.overlap_onset:
            raise ValueError("an offset threshold must not exceed its onset threshold")
        if self.max_speakers is not None and self.max_speakers < 1:
            raise ValueError("max_speakers must be at least 1")


DEFAULT_THRESHOLDS: dict[str, float] = {"ge2e": 0.70, "campplus": 0.55}
"""Cosine merge thresholds per encoder: the lowest DER on the tuning calls of
``python -m eval.diarize --tune`` (seeds 1000+, FSDD and synthesized voices, step 2.5 s)."""
FALLBACK_THRESHOLD = 0.5


@dataclass(frozen=True)
class Segment:
    """``label`` speaks from ``start`` to ``end`` (seconds); ``overlap``: another label speaks too."""

    start: float
    end: float
    label: str
    overlap: bool = False


@dataclass
class LabelSummary:
    """``speech_seconds``: total time the label speaks (overlap included);
    ``centroid``: (dim,) L2-normalised float32 in the encoder's space."""

    speech_seconds: float
    centroid: np.ndarray


@dataclass
class DiarizationResult:
    """Segments sorted by start; labels ``SPEAKER_00``... in order of first speech."""

    segments: list[Segment]
    labels: dict[str, LabelSummary]
    duration_seconds: float
    speech_seconds: float
    overlap_seconds: float
    stats: dict[str, Any] = field(default_factory=dict)

    def centroids(self) -> dict[str, np.ndarray]:
        return {lab: s.centroid for lab, s in self.labels.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: segments and per-label speech time (centroids left out)."""
        return {"duration_seconds": self.duration_seconds, "speech_seconds": self.speech_seconds,
                "overlap_seconds": self.overlap_seconds,
                "segments": [asdict(s) for s in self.segments],
                "labels": {k: {"speech_seconds": v.speech_seconds} for k, v in self.labels.items()}}


@dataclass
class _Embedded:
    """Embedded local speakers so far (grows block by block)."""

    chunk: list[int] = field(default_factory=list)
    speaker: list[int] = field(default_factory=list)
    clean_seconds: list[float] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)


@dataclass
class LocalAnalysis:
    """What :meth:`Diarizer.analyse` found before clustering (frame grid of the model).

    ``speech``/``overlap``: (frames,) probabilities averaged over chunks;
    ``soft``: (chunks, frames_per_chunk, 3) float16 local speaker probabilities;
    ``cpu_seconds``: process CPU time per step.
    """

    num_samples: int
    step_seconds: float
    start_frames: np.ndarray
    speech: np.ndarray
    overlap: np.ndarray
    soft: np.ndarray
    embedded: _Embedded
    cpu_seconds: dict[str, float]


class Diarizer:
    """Diarization with a loaded segmentation model and speaker encoder (reusable, not thread-safe)."""

    sample_rate = 16_000

    def __init__(self, segmentation: SegmentationModel, encoder: Encoder,
                 options: DiarizationOptions | None = None) -> None:
        if encoder.kind != "speaker":
            raise ValueError(f"encoder {encoder.name!r} is not a speaker encoder")
        self.segmentation = segmentation
        self.encoder = encoder
        self.options = options or DiarizationOptions()
        self.threshold = (self.options.threshold if self.options.threshold is not None
                          else DEFAULT_THRESHOLDS.get(encoder.name, FALLBACK_THRESHOLD))

    # -- public ---------------------------------------------------------------
    def run(self, waveform: np.ndarray, *, num_speakers: int | None = None,
            min_speakers: int = 1, max_speakers: int | None = None,
            progress: ProgressFn | None = None) -> DiarizationResult:
        """Diarize a mono 16 kHz float waveform (samples in [-1, 1]).

        ``waveform`` may be a ``np.memmap``: it is read chunk by chunk.
        ``num_speakers`` fixes the number of speakers; otherwise it is
        estimated within [``min_speakers``, ``max_speakers``]. Raises
        :class:`AudioError` for empty, multi-channel or non-finite input.
        """
        analysis = self.analyse(waveform, progress=progress)
        result = self.cluster(analysis, num_speakers=num_speakers, min_speakers=min_speakers,
                              max_speakers=max_speakers)
        if progress:
            progress(1.0)
        return result

    def analyse(self, waveform: np.ndarray, *, progress: ProgressFn | None = None) -> "LocalAnalysis":
        """Steps 1-3: segmentation, voice activity/overlap and local speaker embeddings.

        Reports progress up to 0.9. The result can be clustered several times
        (:meth:`cluster`), e.g. with different speaker counts or thresholds.
        """
        opts = self.options
        seg = self.segmentation
        n = self._check(waveform)
        report = progress or (lambda f: None)
        fstep = int(round(seg.frame_step * self.sample_rate))  # 270 samples
        step = max(1, int(round(opts.step_seconds * self.sample_rate / fstep))) * fstep
        starts = chunk_starts(n, seg.chunk_samples, step)
        starts = [int(math.ceil(s / fstep)) * fstep for s in starts]
        start_frames = np.array([s // fstep for s in starts])
        total_frames = int(math.ceil(n / fstep))
        speech_sum = np.zeros(total_frames, np.float32)
        overlap_sum = np.zeros(total_frames, np.float32)
        cover = np.zeros(total_frames, np.float32)
        cover2 = np.zeros(total_frames, np.float32)
        soft = np.zeros((len(starts), seg.frames_per_chunk, seg.num_local_speakers), np.float16)
        embedded = _Embedded()
        cpu = {"segmentation": 0.0, "embedding": 0.0}
        block = max(1, opts.chunks_per_block)
        for b0 in range(0, len(starts), block):
            ids = list(range(b0, min(b0 + block, len(starts))))
            t0 = time.process_time()
            chunks = read_chunks(waveform, [starts[i] for i in ids], seg.chunk_samples)
            out = seg.segment(chunks)
            overlap_add(speech_sum, cover, out.speech, start_frames[ids])
            overlap_add(overlap_sum, cover2, out.overlap, start_frames[ids])
            soft[ids] = out.soft.astype(np.float16)
            t1 = time.process_time()
            self._embed_block(chunks, ids, out.hard, embedded)
            cpu["segmentation"] += t1 - t0
            cpu["embedding"] += time.process_time() - t1
            report(0.9 * (ids[-1] + 1) / len(starts))
        return LocalAnalysis(n, step / self.sample_rate, start_frames,
                             speech_sum / np.maximum(cover, 1), overlap_sum / np.maximum(cover, 1),
                             soft, embedded, cpu)

    def cluster(self, analysis: "LocalAnalysis", *, num_speakers: int | None = None,
                min_speakers: int = 1, max_speakers: int | None = None,
                threshold: float | None = None) -> DiarizationResult:
        """Steps 4-5: cluster the local speakers and build the segments.

        ``threshold`` overrides the diarizer's cosine merge threshold.
        """
        if num_speakers is not None and num_speakers < 1:
            raise VoiceprintError("num_speakers must be at least 1", reason="bad_num_speakers")
        max_speakers = max_speakers if max_speakers is not None else self.options.max_speakers
        t0 = time.process_time()
        thr = self.threshold if threshold is None else threshold
        result = self._finish(analysis, num_speakers, min_speakers, max_speakers, thr)
        a = analysis
        result.stats.update(chunks=len(a.start_frames), step_seconds=a.step_seconds,
                            embeddings=len(a.embedded.vectors), threshold=thr,
                            cpu_seconds={**{k: round(v, 3) for k, v in a.cpu_seconds.items()},
                                         "clustering": round(time.process_time() - t0, 3)})
        return result

    # -- steps ----------------------------------------------------------------
    def _check(self, waveform: np.ndarray) -> int:
        if getattr(waveform, "ndim", 1) != 1:
            raise AudioError("diarization needs a mono waveform (1-D samples)", reason="bad_audio")
        n = len(waveform)
        if n == 0:
            raise AudioError("the recording is empty", reason="empty_audio")
        for s in range(0, n, 16_000 * 600):  # bounded copies for memory-mapped input
            if not np.isfinite(np.asarray(waveform[s:s + 16_000 * 600], dtype=np.float32)).all():
                raise AudioError("the recording contains NaN or infinite samples", reason="bad_audio")
        return n

    def _embed_block(self, chunks: np.ndarray, ids: list[int], hard: np.ndarray,
                     embedded: _Embedded) -> None:
        """Embed each local speaker of these chunks from its clean speech (else all its speech)."""
        seg, opts = self.segmentation, self.options
        fstep = int(round(seg.frame_step * self.sample_rate))
        half = int(round((seg.frame_duration - seg.frame_step) * self.sample_rate / 2))
        pieces, meta = [], []
        for row, chunk_id in enumerate(ids):
            active = hard[row].astype(bool)              # (frames, speakers)
            single = active.sum(axis=1) == 1
            for s in range(active.shape[1]):
                clean = active[:, s] & single
                clean_s = clean.sum() * seg.frame_step
                use = clean if clean_s >= opts.min_embed_seconds else active[:, s]
                if use.sum() * seg.frame_step < opts.min_embed_seconds:
                    continue
                audio = np.concatenate([chunks[row, half + a * fstep: half + b * fstep]
                                        for a, b in runs(use)])
                pieces.append(audio)
                meta.append((chunk_id, s, float(clean_s)))
        if not pieces:
            return
        if self.encoder.sample_rate != self.sample_rate:
            from voiceprint.audio.resample import resample
            pieces = [resample(p, self.sample_rate, self.encoder.sample_rate) for p in pieces]
        vectors = self.encoder.embed_batch(pieces)
        for (chunk_id, s, clean_s), v in zip(meta, vectors):
            embedded.chunk.append(chunk_id)
            embedded.speaker.append(s)
            embedded.clean_seconds.append(clean_s)
            embedded.vectors.append(np.asarray(v, dtype=np.float32))

    def _finish(self, a: "LocalAnalysis", num_speakers: int | None, min_speakers: int,
                max_speakers: int | None, threshold: float) -> DiarizationResult:
        seg, opts = self.segmentation, self.options
        n, start_frames, speech, overlap = a.num_samples, a.start_frames, a.speech, a.overlap
        soft, embedded = a.soft, a.embedded
        fs = seg.frame_step
        frames = lambda seconds: int(round(seconds / fs))  # noqa: E731
        speech_mask = hysteresis(speech, opts.speech_onset, opts.speech_offset)
        speech_mask = fill_gaps(remove_short(speech_mask, frames(opts.min_speech_seconds)),
                                frames(opts.min_silence_seconds))
        overlap_mask = hysteresis(overlap, opts.overlap_onset, opts.overlap_offset) & speech_mask
        overlap_mask = remove_short(overlap_mask, frames(opts.min_overlap_seconds))
        count = speech_mask.astype(np.int64) + overlap_mask.astype(np.int64)
        duration = n / self.sample_rate
        if not embedded.vectors:
            return DiarizationResult([], {}, round(duration, 3), 0.0, 0.0)
        clustering = cluster_local_speakers(
            np.stack(embedded.vectors), np.array(embedded.chunk), np.array(embedded.clean_seconds),
            threshold=threshold, min_train_seconds=opts.min_train_seconds,
            # every second of speech is seen by about chunk/step chunks
            min_cluster_seconds=opts.min_cluster_seconds * seg.chunk_seconds / a.step_seconds,
            num_speakers=num_speakers,
            min_speakers=min_speakers, max_speakers=max_speakers)
        k = len(clustering.centroids)
        activation = np.zeros((len(speech), k), np.float32)
        for chunk_id, s, cluster in zip(embedded.chunk, embedded.speaker, clustering.assignment):
            a = int(start_frames[chunk_id])
            b = min(len(activation), a + soft.shape[1])
            activation[a:b, cluster] += soft[chunk_id, :b - a, s].astype(np.float32)
        # never more speakers than clusters with activity (none where no local speaker explains the speech)
        count = np.minimum(count, (activation > 1e-3).sum(axis=1))
        active = select_top(activation, count)
        gap = frames(opts.min_silence_seconds)
        active = np.stack([fill_gaps(active[:, c], gap) & speech_mask for c in range(k)], axis=1)
        return self._to_result(active, clustering.centroids, duration)

    def _to_result(self, active: np.ndarray, centroids: np.ndarray, duration: float
                   ) -> DiarizationResult:
        seg = self.segmentation
        offset = (seg.frame_duration - seg.frame_step) / 2

        def t(frame: int) -> float:
            return round(min(duration, offset + frame * seg.frame_step), 3)

        firsts = [(int(np.argmax(active[:, c])), c) for c in range(active.shape[1]) if active[:, c].any()]
        names = {c: f"SPEAKER_{i:02d}" for i, (_, c) in enumerate(sorted(firsts))}
        multi = active.sum(axis=1) >= 2
        segments = []
        for c, name in names.items():
            for flag in (False, True):
                for a, b in runs(active[:, c] & (multi if flag else ~multi)):
                    if t(b) > t(a):
                        segments.append(Segment(t(a), t(b), name, flag))
        segments.sort(key=lambda s: (s.start, s.label))
        labels = {name: LabelSummary(round(float(active[:, c].sum()) * seg.frame_step, 3),
                                     centroids[c]) for c, name in sorted(names.items(), key=lambda x: x[1])}
        any_speech = active.any(axis=1)
        return DiarizationResult(segments, labels, round(duration, 3),
                                 round(float(any_speech.sum()) * seg.frame_step, 3),
                                 round(float(multi.sum()) * seg.frame_step, 3))
