"""Landmark fingerprints: pairs of spectral peaks, as in Wang's Shazam paper (ISMIR 2003).

A near-duplicate of a recording keeps most of its strongest time-frequency
peaks where they were, relative to each other, whatever else happened to it
(noise, a codec, band-limiting to 4 kHz, a cut or an excerpt). Pairs of peaks
("landmarks") hashed with their frequencies and time gap are looked up in an
inverted index; a stored sound that shares many hashes **at one consistent
time offset** contains the query. Speed changes move every peak, so this
complements (does not replace) the learned embedding.

Parameters (chosen for short sound effects): the clip is resampled to 8 kHz
and scaled to peak 1; STFT of 512 samples (64 ms, Hann), hop 128 (16 ms),
log magnitude in dB; a peak is the maximum of its 15-bin x 9-frame
neighbourhood, at most 60 dB below the clip's loudest bin and at least 6 dB
above its bin's median over time (so a steady noise floor yields none), at
most :data:`PEAKS_PER_SECOND` per second (strongest first, but at least
:data:`MIN_PEAKS`). Each peak is paired with up to :data:`FAN_OUT` later
peaks 1-63 frames (16 ms-1 s) later and within 63 bins (1 kHz); hash =
``f1 (8 bits) | f2 - f1 + 63 (7 bits) | dt (6 bits)``, 21 bits.

No well-kept PyPI package does this for short clips (chromaprint is built for
music and chroma; audfprint/dejavu are unmaintained), hence this small module.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

import numpy as np

SAMPLE_RATE = 8000
N_FFT = 512
HOP = 128
PEAK_FREQ_BINS = 15
PEAK_FRAMES = 9
DYNAMIC_RANGE_DB = 60.0
ABOVE_MEDIAN_DB = 6.0
PEAKS_PER_SECOND = 40
MIN_PEAKS = 12
FAN_OUT = 6
MAX_DT = 63
MAX_DF = 63
#: offsets within this many frames of the best one count as aligned (codec/resampling jitter)
OFFSET_SLACK = 1


@dataclass(frozen=True)
class Landmarks:
    """``hashes`` (uint32, 21 bits used) and the anchor ``frames`` (int32, 16 ms units)."""

    hashes: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return int(self.hashes.size)


def spectral_peaks(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames, bins) of the retained peaks of a mono clip, sorted by frame."""
    from scipy.ndimage import maximum_filter
    from scipy.signal import stft

    from voiceprint.audio.resample import resample

    x = resample(np.asarray(samples, dtype=np.float32).reshape(-1), int(sample_rate), SAMPLE_RATE)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0 or x.size < N_FFT:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    _, _, z = stft(x / peak, nperseg=N_FFT, noverlap=N_FFT - HOP, window="hann", boundary=None,
                   padded=False)
    db = 20 * np.log10(np.abs(z[1:-1]) + 1e-9).astype(np.float32)  # (bins, frames); no DC/Nyquist
    local = maximum_filter(db, size=(PEAK_FREQ_BINS, PEAK_FRAMES), mode="constant", cval=-np.inf)
    floor = np.median(db, axis=1, keepdims=True) + ABOVE_MEDIAN_DB
    mask = (db == local) & (db >= db.max() - DYNAMIC_RANGE_DB) & (db >= floor)
    bins, frames = np.nonzero(mask)
    if bins.size == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    budget = max(MIN_PEAKS, int(PEAKS_PER_SECOND * x.size / SAMPLE_RATE))
    if bins.size > budget:
        keep = np.argsort(-db[bins, frames], kind="stable")[:budget]
        bins, frames = bins[keep], frames[keep]
    order = np.lexsort((bins, frames))
    return frames[order].astype(np.int32), (bins[order] + 1).astype(np.int32)


def landmarks(samples: np.ndarray, sample_rate: int) -> Landmarks:
    """Hashed peak pairs of a mono clip (any rate; resampled to 8 kHz)."""
    frames, bins = spectral_peaks(samples, sample_rate)
    hashes, anchors = [], []
    n = frames.size
    for i in range(n):
        made = 0
        for j in range(i + 1, n):
            dt = int(frames[j] - frames[i])
            if dt > MAX_DT:
                break
            df = int(bins[j] - bins[i])
            if dt < 1 or abs(df) > MAX_DF:
                continue
            hashes.append((int(bins[i]) & 0xFF) << 13 | (df + MAX_DF) << 6 | dt)
            anchors.append(int(frames[i]))
            made += 1
            if made >= FAN_OUT:
                break
    return Landmarks(np.asarray(hashes, dtype=np.uint32), np.asarray(anchors, dtype=np.int32))


def aligned_matches(query: Landmarks, stored_hashes: np.ndarray, stored_frames: np.ndarray) -> int:
    """How many of ``query``'s landmarks recur in one stored sound at one time offset
    (within :data:`OFFSET_SLACK` frames): the evidence that it contains the query."""
    if len(query) == 0 or stored_hashes.size == 0:
        return 0
    by_hash: dict[int, list[int]] = defaultdict(list)
    for h, t in zip(stored_hashes.tolist(), stored_frames.tolist()):
        by_hash[h].append(t)
    offsets = [t - q for h, q in zip(query.hashes.tolist(), query.frames.tolist())
               for t in by_hash.get(h, ())]
    return best_offset_count(np.asarray(offsets, dtype=np.int64))


def best_offset_count(offsets: np.ndarray) -> int:
    """Largest number of ``offsets`` within ``OFFSET_SLACK`` of one value."""
    if offsets.size == 0:
        return 0
    values, counts = np.unique(offsets, return_counts=True)
    lo = np.searchsorted(values, values - OFFSET_SLACK, side="left")
    hi = np.searchsorted(values, values + OFFSET_SLACK, side="right")
    csum = np.concatenate([[0], np.cumsum(counts)])
    return int((csum[hi] - csum[lo]).max())


def match_postings(query: Landmarks, postings: Iterable[tuple[int, int, int]]) -> dict[int, int]:
    """Aligned landmark count per stored sound from ``(sound, hash, frame)`` postings of the
    query's hashes (as an inverted index or a database lookup returns them). Vectorised:
    every (posting, query landmark) pair with the same hash gives an offset; a sound's
    count is its most populated offset +- ``OFFSET_SLACK``."""
    post = np.asarray(list(postings), dtype=np.int64).reshape(-1, 3)
    if post.size == 0 or len(query) == 0:
        return {}
    order = np.argsort(query.hashes, kind="stable")
    q_hash = query.hashes[order].astype(np.int64)
    q_frame = query.frames[order].astype(np.int64)
    lo = np.searchsorted(q_hash, post[:, 1], side="left")
    n = np.searchsorted(q_hash, post[:, 1], side="right") - lo
    keep = n > 0
    post, lo, n = post[keep], lo[keep], n[keep]
    if post.size == 0:
        return {}
    rows = np.repeat(np.arange(len(post)), n)
    within = np.arange(rows.size) - np.repeat(np.cumsum(n) - n, n)
    sound = post[rows, 0]
    offset = post[rows, 2] - q_frame[lo[rows] + within]
    span = 1 << 20  # offsets are frame differences, far below 2**19 in magnitude
    keys, counts = np.unique(sound * span + (offset + span // 2), return_counts=True)
    csum = np.concatenate([[0], np.cumsum(counts)])
    left = np.searchsorted(keys, keys - OFFSET_SLACK, side="left")
    right = np.searchsorted(keys, keys + OFFSET_SLACK, side="right")
    aligned = csum[right] - csum[left]  # keys of one sound stay together: +-1 never crosses
    sounds_of = keys // span
    starts = np.flatnonzero(np.concatenate([[True], sounds_of[1:] != sounds_of[:-1]]))
    best = np.maximum.reduceat(aligned, starts)
    return {int(sid): int(c) for sid, c in zip(sounds_of[starts], best)}


class LandmarkIndex:
    """In-memory inverted index ``hash -> [(sound, frame)]`` (evaluation, small libraries)."""

    def __init__(self) -> None:
        self._postings: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.sizes: dict[int, int] = {}

    def add(self, sound: int, marks: Landmarks) -> None:
        for h, t in zip(marks.hashes.tolist(), marks.frames.tolist()):
            self._postings[h].append((sound, t))
        self.sizes[sound] = len(marks)

    def match(self, query: Landmarks) -> dict[int, int]:
        """Stored sound -> aligned landmark count, for sounds sharing at least one hash."""
        hashes = set(query.hashes.tolist())
        return match_postings(query, ((s, h, t) for h in hashes for s, t in self._postings.get(h, ())))
