"""Linking local speakers across chunks: clustering of their embeddings.

Follows pyannote's speaker-diarization-3.x recipe. Every (chunk, local
speaker) with enough clean (non-overlapped) speech has an embedding; the
embeddings with the most speech ("training" embeddings) are clustered by
agglomerative clustering (average linkage on cosine distance, scikit-learn).
The number of clusters is either given or found by cutting the dendrogram
at a cosine-similarity threshold. Clusters with too little speech are folded
into the most similar large cluster, and a few k-means passes move members
that were merged early into the wrong cluster. Then *every* embedded local speaker is
assigned to a cluster centroid, with the constraint that two local speakers
of one chunk never go to the same cluster (Hungarian assignment per chunk).

Similarities are cosine similarities of L2-normalised embeddings, in [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

MAX_TRAIN_EMBEDDINGS = 2000
"""Embeddings that shape the clusters at most (the others are only assigned)."""


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def agglomerative(embeddings: np.ndarray, *, threshold: float, num_clusters: int | None = None,
                  min_clusters: int = 1, max_clusters: int | None = None) -> np.ndarray:
    """Cluster rows of ``embeddings``; returns labels 0..k-1 (ints).

    Without ``num_clusters``, merging stops when the average cosine similarity
    between two clusters falls below ``threshold``; the resulting count is then
    clipped to [``min_clusters``, ``max_clusters``] (re-cut at that count).
    """
    from sklearn.cluster import AgglomerativeClustering

    x = _normalise(embeddings)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    upper = n if max_clusters is None else max(1, min(max_clusters, n))
    if num_clusters is not None:
        k = max(1, min(int(num_clusters), n))
    else:
        ahc = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                      distance_threshold=1.0 - threshold)
        k = int(ahc.fit(x).n_clusters_)
        k = min(max(k, min(min_clusters, n)), upper)
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    return AgglomerativeClustering(n_clusters=k, metric="cosine",
                                   linkage="average").fit_predict(x).astype(np.int64)


def centroids_of(embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
                 ) -> np.ndarray:
    """(k, dim) L2-normalised weighted means of the normalised rows of each label 0..k-1."""
    x = _normalise(embeddings)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    k = int(labels.max()) + 1 if len(labels) else 0
    out = np.zeros((k, x.shape[1]))
    for c in range(k):
        sel = labels == c
        out[c] = (x[sel] * w[sel, None]).sum(axis=0)
    return _normalise(out).astype(np.float32)


def fold_small_clusters(embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                        min_weight: float) -> np.ndarray:
    """Relabel clusters whose total ``weights`` are below ``min_weight`` into the nearest large one.

    Nearest = highest cosine similarity between the small cluster's members
    and the large clusters' centroids (mean over members). If no cluster is
    large enough, the labels are returned unchanged. Labels are renumbered
    0..k-1 in order of first appearance.
    """
    labels = np.asarray(labels).copy()
    k = int(labels.max()) + 1 if len(labels) else 0
    mass = np.array([weights[labels == c].sum() for c in range(k)])
    large = np.flatnonzero(mass >= min_weight)
    if len(large) and len(large) < k:
        cents = centroids_of(embeddings, labels, weights)[large]
        x = _normalise(embeddings)
        for c in np.flatnonzero(mass < min_weight):
            sel = labels == c
            labels[sel] = large[int(np.argmax((x[sel] @ cents.T).mean(axis=0)))]
    _, first = np.unique(labels, return_index=True)
    order = labels[np.sort(first)]
    remap = {int(old): new for new, old in enumerate(order)}
    return np.array([remap[int(v)] for v in labels], dtype=np.int64)


def refine(embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray,
           max_iterations: int = 20) -> np.ndarray:
    """Weighted spherical k-means started from ``labels``: move each row to its nearest centroid.

    Agglomerative clustering never revisits a merge; a few of these passes
    fix rows that were merged early into the wrong group. The number of
    clusters never grows; a cluster that loses all rows disappears and the
    labels are renumbered 0..k-1.
    """
    x = _normalise(embeddings)
    labels = np.asarray(labels).copy()
    w = np.asarray(weights, dtype=np.float64)
    for _ in range(max_iterations):
        present = np.unique(labels)
        cents = _normalise(np.stack([(x[labels == c] * w[labels == c, None]).sum(axis=0)
                                     for c in present]))
        new = present[np.argmax(x @ cents.T, axis=1)]
        if (new == labels).all():
            break
        labels = new
    _, dense = np.unique(labels, return_inverse=True)
    return dense.astype(np.int64)


def constrained_assignment(similarity: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
    """Assign each row (a local speaker) to a column (a cluster), maximising similarity.

    Rows that share a ``chunk_ids`` value are matched one-to-one to distinct
    clusters (scipy's Hungarian solver); when a chunk has more local
    speakers than there are clusters, the leftovers take their best cluster.
    Returns one cluster index per row.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    out = np.argmax(sim, axis=1) if sim.size else np.zeros(len(sim), dtype=np.int64)
    for chunk in np.unique(chunk_ids):
        rows = np.flatnonzero(chunk_ids == chunk)
        if len(rows) < 2:
            continue
        r, c = linear_sum_assignment(sim[rows], maximize=True)
        out[rows[r]] = c
    return out.astype(np.int64)


@dataclass
class Clustering:
    """Result of :func:`cluster_local_speakers`.

    ``assignment``: cluster per embedded local speaker (row of the input);
    ``centroids``: (k, dim) L2-normalised; ``threshold``: the cosine threshold used.
    """

    assignment: np.ndarray
    centroids: np.ndarray
    threshold: float


def cluster_local_speakers(embeddings: np.ndarray, chunk_ids: np.ndarray, clean_seconds: np.ndarray,
                           *, threshold: float, min_train_seconds: float,
                           min_cluster_seconds: float, num_speakers: int | None = None,
                           min_speakers: int = 1, max_speakers: int | None = None,
                           max_train: int = MAX_TRAIN_EMBEDDINGS) -> Clustering:
    """Cluster embedded local speakers and assign each one to a cluster.

    ``clean_seconds``: seconds of non-overlapped speech behind each embedding
    (its weight). Embeddings with at least ``min_train_seconds`` form the
    clusters (all of them if none has that much; at most ``max_train`` of
    them, evenly spread over the recording, since the linkage needs memory
    quadratic in their number: 2,000 take about 16 MB). Clusters whose training
    speech totals less than ``min_cluster_seconds`` (or 5 % of all training
    speech, if less) are folded into their nearest large cluster unless
    ``num_speakers`` fixes the count. The partition is then refined by
    weighted spherical k-means (:func:`refine`).
    """
    emb = _normalise(embeddings)
    secs = np.asarray(clean_seconds, dtype=np.float64)
    if len(emb) == 0:
        return Clustering(np.zeros(0, dtype=np.int64), np.zeros((0, embeddings.shape[1]), np.float32),
                          threshold)
    train = secs >= min_train_seconds
    if not train.any():
        train = secs >= secs.max() * 0.5
    if train.sum() > max_train:  # memory of the linkage is quadratic: keep an even spread in time
        keep = np.flatnonzero(train)[np.linspace(0, train.sum() - 1, max_train).astype(int)]
        train = np.zeros(len(secs), dtype=bool)
        train[keep] = True
    labels = agglomerative(emb[train], threshold=threshold, num_clusters=num_speakers,
                           min_clusters=min_speakers, max_clusters=max_speakers)
    if num_speakers is None:
        floor = min(min_cluster_seconds, 0.05 * secs[train].sum())
        labels = fold_small_clusters(emb[train], labels, secs[train], floor)
        k = int(labels.max()) + 1
        if k < min_speakers <= int(train.sum()):
            labels = agglomerative(emb[train], threshold=threshold, num_clusters=min_speakers)
    refined = refine(emb[train], labels, secs[train])
    if refined.max() == labels.max():  # keep the count asked for or estimated
        labels = refined
    cents = centroids_of(emb[train], labels, secs[train])
    assignment = constrained_assignment(emb @ cents.T.astype(np.float64), np.asarray(chunk_ids))
    # centroids over every member (training or not), weighted by clean speech
    final = cents.copy()
    for c in range(len(cents)):
        sel = assignment == c
        if sel.any():
            final[c] = centroids_of(emb[sel], np.zeros(int(sel.sum()), dtype=np.int64), secs[sel])[0]
    return Clustering(assignment, final, threshold)
