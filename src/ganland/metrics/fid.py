"""Fréchet distance between feature distributions (FID; Heusel et al. 2017).

Pure functions in three stages, as torch-fidelity's `fid_features_to_statistics`:
features (N, F) -> `FeatureStats` (n, mean, covariance) -> a number. Statistics of a large
reference set can be computed in chunks with `StatsAccumulator` and saved with `to_npz`.
Everything is computed in float64, whatever the input dtype.

FID is biased upwards at small N and the bias depends on the model (Chong & Forsyth 2020):
compare scores only at equal N and protocol.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg

from ..errors import ConfigError

# Largest accepted ||X @ X - A||_F / ||A||_F of the matrix square root before retrying with eps*I.
_SQRTM_MAX_RESIDUAL = 1e-5
# Largest accepted max|Im X| / max|Re X| of the matrix square root; above it the result is wrong.
_SQRTM_MAX_IMAG = 1e-3


def _as_features(x, name: str, min_rows: int = 1) -> np.ndarray:
    """Check and convert features to a float64 array (N, F); shared by the metric modules."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{name}: expected a numeric array (N, F), got {type(x).__name__}") from err
    if arr.ndim != 2:
        raise ConfigError(f"{name}: expected a 2-D array (N, F), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ConfigError(f"{name}: features have dimension 0 (shape {arr.shape})")
    if arr.shape[0] < min_rows:
        raise ConfigError(f"{name}: needs at least {min_rows} samples, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ConfigError(f"{name}: {bad} of {arr.shape[0]} rows contain NaN or inf")
    return arr


def _same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ConfigError(
            f"features of different dimension: {name_a} has {a.shape[1]}, {name_b} has {b.shape[1]} "
            "(were they computed with the same feature network?)"
        )


@dataclass(frozen=True)
class FeatureStats:
    """Sample statistics of a feature set: n, mean (F,), unbiased covariance (F, F), float64."""

    n: int  # number of samples the statistics were computed from
    mean: np.ndarray  # (F,)
    cov: np.ndarray  # (F, F), ddof = 1

    def __post_init__(self):
        mean = np.asarray(self.mean, dtype=np.float64)
        cov = np.asarray(self.cov, dtype=np.float64)
        if mean.ndim != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
            raise ConfigError(f"FeatureStats: mean must be (F,) and cov (F, F), got {mean.shape} and {cov.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
            raise ConfigError("FeatureStats: mean or cov contains NaN or inf")
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", cov)

    @property
    def dim(self) -> int:
        """F, the feature dimension."""
        return self.mean.shape[0]

    def to_npz(self, path) -> None:
        """Write n, mean and cov as plain arrays to an .npz file (no pickles)."""
        np.savez(Path(path), n=np.int64(self.n), mean=self.mean, cov=self.cov)

    @classmethod
    def from_npz(cls, path) -> "FeatureStats":
        """Read statistics written by `to_npz` (allow_pickle=False)."""
        with np.load(Path(path), allow_pickle=False) as data:
            missing = {"n", "mean", "cov"} - set(data.files)
            if missing:
                raise ConfigError(f"{path}: not a FeatureStats file, missing {sorted(missing)}")
            return cls(n=int(data["n"]), mean=data["mean"], cov=data["cov"])


def feature_statistics(features) -> FeatureStats:
    """features (N, F), N >= 2 -> FeatureStats (mean (F,), unbiased covariance (F, F)), float64."""
    x = _as_features(features, "feature_statistics", min_rows=2)
    mean = x.mean(axis=0)  # (F,)
    xc = x - mean  # (N, F), centred first: two passes are exact where E[xx^T] - mm^T is not
    cov = xc.T @ xc / (x.shape[0] - 1)  # (F, F)
    return FeatureStats(n=x.shape[0], mean=mean, cov=cov)


class StatsAccumulator:
    """Streaming `feature_statistics`: add(batch (B, F)) any number of times, then result().

    Batches are merged with Chan et al.'s parallel update (per-batch mean and centred sum of
    outer products, combined through the difference of means), in float64, so the result does
    not depend on how the rows were split (to rounding), and no large uncentred sums are formed.
    """

    def __init__(self):
        self.n = 0
        self._mean: np.ndarray | None = None  # (F,)
        self._m2: np.ndarray | None = None  # (F, F), sum of outer products of deviations

    def add(self, batch) -> "StatsAccumulator":
        """Add a batch of features (B, F), B >= 1; returns self."""
        x = _as_features(batch, "StatsAccumulator.add", min_rows=1)
        if self._mean is not None and x.shape[1] != self._mean.shape[0]:
            raise ConfigError(
                f"StatsAccumulator.add: batch has dimension {x.shape[1]}, earlier batches {self._mean.shape[0]}"
            )
        nb = x.shape[0]
        mean_b = x.mean(axis=0)  # (F,)
        xc = x - mean_b
        m2_b = xc.T @ xc  # (F, F)
        if self._mean is None:
            self.n, self._mean, self._m2 = nb, mean_b, m2_b
            return self
        n_new = self.n + nb
        delta = mean_b - self._mean  # (F,)
        self._mean = self._mean + delta * (nb / n_new)
        self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (self.n * nb / n_new)
        self.n = n_new
        return self

    def result(self) -> FeatureStats:
        """FeatureStats of every row added so far (needs at least 2 rows)."""
        if self.n < 2:
            raise ConfigError(f"StatsAccumulator.result: needs at least 2 samples, got {self.n}")
        return FeatureStats(n=self.n, mean=self._mean.copy(), cov=self._m2 / (self.n - 1))


def _sqrtm_checked(a: np.ndarray):
    """scipy sqrtm of a (F, F) -> (X, problem), problem None when X is finite and accurate."""
    with warnings.catch_warnings():  # the checks below judge the result; scipy's warning adds nothing
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        x = scipy.linalg.sqrtm(a)
    if not np.isfinite(x).all():
        return x, "the matrix square root is not finite"
    residual = np.linalg.norm(x @ x - a) / max(np.linalg.norm(a), np.finfo(np.float64).tiny)
    if residual > _SQRTM_MAX_RESIDUAL:
        return x, f"the matrix square root is inaccurate (relative residual {residual:.2e})"
    if np.iscomplexobj(x):
        imag = np.abs(x.imag).max() / max(np.abs(x.real).max(), np.finfo(np.float64).tiny)
        if imag > _SQRTM_MAX_IMAG:
            return x, f"the matrix square root has a large imaginary part (relative {imag:.2e})"
    return x, None


def frechet_distance(stats1: FeatureStats, stats2: FeatureStats, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) between two FeatureStats of dimension F.

    sqrt(S1 S2) comes from `scipy.linalg.sqrtm`; tiny imaginary parts (rounding) are dropped.
    When the product is near-singular and the square root comes out non-finite, inaccurate or
    clearly complex, it is recomputed with eps * I added to both covariances (eps in squared
    feature units; 0 disables the retry).
    """
    if stats1.dim != stats2.dim:
        raise ConfigError(
            f"frechet_distance: statistics of different dimension ({stats1.dim} and {stats2.dim})"
        )
    diff = stats1.mean - stats2.mean  # (F,)
    s1, s2 = stats1.cov, stats2.cov  # (F, F)
    covmean, problem = _sqrtm_checked(s1 @ s2)
    if problem is not None and eps > 0:
        # Regularise both covariances, traces included, so equal statistics still give ~0.
        s1, s2 = s1 + eps * np.eye(stats1.dim), s2 + eps * np.eye(stats1.dim)
        covmean, problem = _sqrtm_checked(s1 @ s2)
    if problem is not None:
        raise ConfigError(
            f"frechet_distance: {problem}, even with eps={eps} added to the covariances; "
            "use more samples than feature dimensions or a larger eps"
        )
    tr_covmean = float(np.trace(covmean).real)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid(features1, features2, eps: float = 1e-6) -> float:
    """FID between features1 (N1, F) and features2 (N2, F), N1, N2 >= 2 (see frechet_distance)."""
    x1 = _as_features(features1, "fid features1", min_rows=2)
    x2 = _as_features(features2, "fid features2", min_rows=2)
    _same_dim(x1, x2, "features1", "features2")
    return frechet_distance(feature_statistics(x1), feature_statistics(x2), eps=eps)
