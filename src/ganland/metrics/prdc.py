"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

All four compare k-nearest-neighbour balls. The k-NN radius of a point is the distance to its
k-th nearest neighbour in its own set, the point itself excluded (duplicates count as
neighbours at distance 0). Balls are closed (distance <= radius).

  precision = share of fake samples inside at least one real k-NN ball      (k = 3)
  recall    = share of real samples inside at least one fake k-NN ball      (k = 3)
  density   = (1 / (k M)) * sum over fake j of #real balls containing j     (k = 5)
  coverage  = share of real samples whose k-NN ball contains a fake sample  (k = 5)

For two samples of the same distribution, density ~ 1 and coverage ~ 0.97 (Naeem et al.).

Distances are never held as a full (N, M) matrix: rows of one set are taken `chunk_size` at a
time against the whole other set, as squared distances ||a||^2 + ||b||^2 - 2 a.b clipped at 0,
in float64 (the speed of a float32 product is not worth the cancellation error in
||a||^2 + ||b||^2 - 2 a.b, which would move samples across ball boundaries). Both sets are first
shifted by the real mean (distances do not change) to keep the norms, and so that error, small.
Memory is O(chunk_size * max(N, M)); squared distances are compared with squared radii.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .fid import _as_features, _same_dim

CHUNK_SIZE = 1024  # rows of the distance matrix computed at once; memory ~ CHUNK_SIZE * N * 8 bytes


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)  # (N,)


def _sq_dists(a: np.ndarray, a_norms: np.ndarray, b: np.ndarray, b_norms: np.ndarray) -> np.ndarray:
    """Squared distances (len(a), len(b)) from row blocks and their squared norms, clipped at 0."""
    d2 = a @ b.T  # (c, M)
    d2 *= -2.0
    d2 += a_norms[:, None]
    d2 += b_norms[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def _knn_radii2(x: np.ndarray, norms: np.ndarray, ks: list[int], chunk_size: int) -> dict[int, np.ndarray]:
    """Squared k-NN radii within x (N, F), self excluded, for each k in ks -> {k: (N,)}."""
    n = x.shape[0]
    kth = sorted(set(k - 1 for k in ks))
    radii = {k: np.empty(n) for k in ks}
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        d2 = _sq_dists(x[start:stop], norms[start:stop], x, norms)  # (c, N)
        rows = np.arange(stop - start)
        d2[rows, start + rows] = np.inf  # a point is not its own neighbour
        part = np.partition(d2, kth, axis=1)
        for k in ks:
            radii[k][start:stop] = part[:, k - 1]
    return radii


def _check_k(k, name: str, sizes: dict[str, int]) -> int:
    if int(k) != k or k < 1:
        raise ConfigError(f"{name} must be a positive integer, got {k!r}")
    for set_name, n in sizes.items():
        if n < k + 1:
            raise ConfigError(
                f"{name}={k} needs at least {k + 1} {set_name} samples (k neighbours besides the "
                f"point itself), got {n}"
            )
    return int(k)


def _prdc(real, fake, k_pr: int | None, k_dc: int | None, chunk_size: int) -> dict:
    """Shared pass: one real-vs-fake sweep serves all four metrics; k None skips a pair."""
    x = _as_features(real, "real features", min_rows=2)
    y = _as_features(fake, "fake features", min_rows=1)
    _same_dim(x, y, "real", "fake")
    if int(chunk_size) < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    chunk_size = int(chunk_size)
    if k_pr is not None:
        k_pr = _check_k(k_pr, "k (precision/recall)", {"real": x.shape[0], "fake": y.shape[0]})
    if k_dc is not None:
        k_dc = _check_k(k_dc, "k (density/coverage)", {"real": x.shape[0]})

    # Shift both sets by the real mean: distances are unchanged, norms (and rounding) smaller.
    centre = x.mean(axis=0)
    x, y = x - centre, y - centre
    x_norms, y_norms = _sq_norms(x), _sq_norms(y)
    real_radii = _knn_radii2(x, x_norms, [k for k in (k_pr, k_dc) if k is not None], chunk_size)
    fake_radii = _knn_radii2(y, y_norms, [k_pr], chunk_size)[k_pr] if k_pr is not None else None

    n, m = x.shape[0], y.shape[0]
    fake_in_real = np.zeros(m, dtype=bool)  # precision: fake j inside some real k_pr-ball
    real_in_fake = np.zeros(n, dtype=bool)  # recall: real i inside some fake k_pr-ball
    covered = np.zeros(n, dtype=bool)  # coverage: real k_dc-ball i holds some fake sample
    density_count = 0  # sum over (i, j) of [fake j inside real k_dc-ball i]
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        d2 = _sq_dists(x[start:stop], x_norms[start:stop], y, y_norms)  # (c, M) real rows vs fake
        if k_pr is not None:
            fake_in_real |= (d2 <= real_radii[k_pr][start:stop, None]).any(axis=0)
            real_in_fake[start:stop] = (d2 <= fake_radii[None, :]).any(axis=1)
        if k_dc is not None:
            inside = d2 <= real_radii[k_dc][start:stop, None]  # (c, M)
            density_count += int(inside.sum())
            covered[start:stop] = inside.any(axis=1)

    out = {}
    if k_pr is not None:
        out["precision"] = float(fake_in_real.mean())
        out["recall"] = float(real_in_fake.mean())
    if k_dc is not None:
        out["density"] = density_count / (k_dc * m)
        out["coverage"] = float(covered.mean())
    return out


def precision_recall(real, fake, k: int = 3, chunk_size: int = CHUNK_SIZE) -> tuple[float, float]:
    """Improved precision and recall of fake (M, F) against real (N, F) -> (precision, recall).

    k-NN radii with k = 3 as in Kynkäänniemi et al. 2019; needs N, M >= k + 1.
    """
    out = _prdc(real, fake, k_pr=k, k_dc=None, chunk_size=chunk_size)
    return out["precision"], out["recall"]


def density_coverage(real, fake, k: int = 5, chunk_size: int = CHUNK_SIZE) -> tuple[float, float]:
    """Density and coverage of fake (M, F) against real (N, F) -> (density, coverage).

    Real k-NN balls with k = 5 as in Naeem et al. 2020; needs N >= k + 1, M >= 1. Density is not
    bounded by 1 (fakes packed where real balls overlap score above 1).
    """
    out = _prdc(real, fake, k_pr=None, k_dc=k, chunk_size=chunk_size)
    return out["density"], out["coverage"]


def prdc(real, fake, k_pr: int = 3, k_dc: int = 5, chunk_size: int = CHUNK_SIZE) -> dict:
    """All four at once (one distance sweep): real (N, F), fake (M, F) ->
    {precision, recall, density, coverage}."""
    return _prdc(real, fake, k_pr=k_pr, k_dc=k_dc, chunk_size=chunk_size)
