"""Energy distance between two samples of vectors (Székely & Rizzo 2004).

    D^2 = 2 E||X - Y|| - E||X - X'|| - E||Y - Y'||

with the expectations taken over all pairs of the two samples (V-statistics, pairs of a point
with itself included). D^2 >= 0, and D^2 = 0 only for identical samples; for 1-D samples
sqrt(D^2) equals `scipy.stats.energy_distance`. It needs no density, no modes and no feature
network, so it scores any vector data: ganland uses it for toy distributions without a
closed-form metric (the swiss roll), next to precision/recall and density/coverage.

Distances are summed `chunk_size` rows at a time: memory O(chunk_size * N), never (N, M).
"""
from __future__ import annotations

import numpy as np

from .fid import _as_features, _same_dim

CHUNK_SIZE = 1024  # rows of a distance matrix computed at once


def _mean_distance(a: np.ndarray, b: np.ndarray, chunk_size: int) -> float:
    """Mean Euclidean distance over all pairs (a_i, b_j), in float64."""
    b_norms = np.einsum("ij,ij->i", b, b)
    total = 0.0
    for i in range(0, len(a), chunk_size):
        rows = a[i:i + chunk_size]
        sq = np.einsum("ij,ij->i", rows, rows)[:, None] + b_norms[None, :] - 2.0 * rows @ b.T
        total += float(np.sqrt(np.maximum(sq, 0.0)).sum())
    return total / (len(a) * len(b))


def energy_distance(real, fake, chunk_size: int = CHUNK_SIZE) -> float:
    """sqrt(D^2) of two samples (N, D) and (M, D) (see the module docstring)."""
    x, y = _as_features(real, "real"), _as_features(fake, "fake")
    _same_dim(x, y, "real", "fake")
    shift = x.mean(axis=0)  # distances do not change; smaller norms, less cancellation
    x, y = x - shift, y - shift
    d2 = 2.0 * _mean_distance(x, y, chunk_size) - _mean_distance(x, x, chunk_size) - _mean_distance(y, y, chunk_size)
    return float(np.sqrt(max(d2, 0.0)))
