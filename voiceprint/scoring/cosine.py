"""Cosine scoring of embeddings, as small pure numpy functions.

Every embedding in voiceprint is L2-normalised, so the cosine similarity of
two rows is their dot product, in [-1, 1]; Milvus' squared L2 distance ``d``
between unit vectors is ``2 - 2 * cosine``.
"""
from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation (float32); works on 1-D and 2-D arrays."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarities (len(a), len(b)) of L2-normalised rows, in [-1, 1]."""
    return np.asarray(a, np.float32) @ np.asarray(b, np.float32).T


def centroid(embeddings: np.ndarray) -> np.ndarray:
    """A speaker's voiceprint: the L2-normalised mean of its L2-normalised utterance rows."""
    return l2_normalize(np.asarray(embeddings, np.float32).mean(axis=0))


def cosine_from_sq_l2(distance: np.ndarray | float) -> np.ndarray | float:
    """Cosine similarity from the squared L2 distance of unit vectors (0..4)."""
    return 1.0 - np.asarray(distance) / 2.0 if isinstance(distance, np.ndarray) else 1.0 - distance / 2.0


def sq_l2_from_cosine(cosine: np.ndarray | float) -> np.ndarray | float:
    """Squared L2 distance of unit vectors from their cosine similarity."""
    return 2.0 - 2.0 * np.asarray(cosine) if isinstance(cosine, np.ndarray) else 2.0 - 2.0 * cosine
