"""Cosine similarity of L2-normalised embeddings, as small pure numpy functions.

Every speaker and sound vector in voiceprint is L2-normalised, so the cosine
similarity of two rows is their dot product, a value in [-1, 1] (higher =
more alike). Milvus reports the **squared** L2 distance ``d`` between such
rows; the two are tied by ``cosine = 1 - d / 2`` (and the plain L2 distance
``l`` by ``cosine = 1 - l**2 / 2``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["l2_normalize", "cosine_matrix", "cosine_to_squared_l2", "squared_l2_to_cosine",
           "cosine_to_l2", "l2_to_cosine", "centroid"]


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` (any shape ``(..., d)``) scaled to unit L2 norm; float32.

    All-zero rows stay zero (their norm is floored at ``eps``).
    """
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarities ``(len(a), len(b))`` of two sets of L2-normalised rows.

    ``a`` (m, d) and ``b`` (n, d) must already be L2-normalised (encoders
    return them so); 1-D inputs are taken as one row. Values in [-1, 1],
    float32. Nothing is renormalised here: a row that is not unit length
    gives a scaled (wrong) cosine, which :func:`l2_normalize` prevents.
    """
    a2 = np.atleast_2d(np.asarray(a, dtype=np.float32))
    b2 = np.atleast_2d(np.asarray(b, dtype=np.float32))
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(f"embedding sizes differ: {a2.shape[1]} vs {b2.shape[1]}")
    return a2 @ b2.T


def squared_l2_to_cosine(d: np.ndarray | float) -> np.ndarray | float:
    """Cosine similarity from the squared L2 distance of unit vectors (Milvus ``L2``)."""
    return 1.0 - np.asarray(d) / 2.0 if isinstance(d, np.ndarray) else 1.0 - float(d) / 2.0


def cosine_to_squared_l2(c: np.ndarray | float) -> np.ndarray | float:
    """Squared L2 distance of unit vectors from their cosine similarity, in [0, 4]."""
    return 2.0 - 2.0 * np.asarray(c) if isinstance(c, np.ndarray) else 2.0 - 2.0 * float(c)


def l2_to_cosine(l2: np.ndarray | float) -> np.ndarray | float:
    """Cosine similarity from the (plain, not squared) L2 distance of unit vectors."""
    return squared_l2_to_cosine(np.asarray(l2) ** 2 if isinstance(l2, np.ndarray) else float(l2) ** 2)


def cosine_to_l2(c: np.ndarray | float) -> np.ndarray | float:
    """Plain L2 distance of unit vectors from their cosine similarity, in [0, 2]."""
    sq = cosine_to_squared_l2(c)
    return np.sqrt(np.maximum(sq, 0.0)) if isinstance(sq, np.ndarray) else float(np.sqrt(max(sq, 0.0)))


def centroid(embeddings: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of L2-normalised utterance embeddings ``(n, d)`` -> ``(d,)``.

    This is a speaker's voiceprint (the service's ``centroid`` speaker model).
    """
    e = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
    if e.shape[0] == 0:
        raise ValueError("centroid of no embeddings")
    return l2_normalize(l2_normalize(e).mean(axis=0))
