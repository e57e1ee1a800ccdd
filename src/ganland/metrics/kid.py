"""Kernel Inception Distance (KID; Binkowski et al. 2018), on any features.

KID is the unbiased estimate of the squared MMD with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets. Being unbiased, it is ~0 (and can be
slightly negative) for two samples of the same distribution, at any sample size.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .fid import _as_features, _same_dim


def _kernel_sum(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """sum and trace of the kernel matrix k(a_i, b_j) = (a_i.b_j / d + 1)^3, a (m, d), b (m, d)."""
    g = a @ b.T  # (m, m)
    g /= a.shape[1]
    g += 1.0
    k = g * g
    k *= g
    return float(k.sum()), float(np.trace(k))


def mmd2_unbiased(x, y) -> float:
    """Unbiased MMD^2 with kernel (x.y / d + 1)^3 between x (m, d) and y (n, d), m, n >= 2."""
    x = _as_features(x, "mmd2_unbiased x", min_rows=2)
    y = _as_features(y, "mmd2_unbiased y", min_rows=2)
    _same_dim(x, y, "x", "y")
    return _mmd2(x, y)


def _mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """mmd2_unbiased on already checked float64 arrays."""
    m, n = x.shape[0], y.shape[0]
    sxx, txx = _kernel_sum(x, x)
    syy, tyy = _kernel_sum(y, y)
    sxy, _ = _kernel_sum(x, y)
    # The diagonal k(x_i, x_i) is left out of the within-set means: that is what removes the bias.
    return (sxx - txx) / (m * (m - 1)) + (syy - tyy) / (n * (n - 1)) - 2.0 * sxy / (m * n)


def kid(features1, features2, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID between features1 (N1, F) and features2 (N2, F) -> (mean, std) over subsets.

    Each of the n_subsets draws subset_size rows of each set without replacement (a fresh draw
    per subset, from numpy's default_rng(seed)) and computes the unbiased MMD^2. subset_size is
    clipped to min(N1, N2), i.e. subsets that fit the sample size; N1, N2 >= 2. std is the
    population standard deviation (ddof = 0) of the per-subset values, not a standard error.
    """
    x1 = _as_features(features1, "kid features1", min_rows=2)
    x2 = _as_features(features2, "kid features2", min_rows=2)
    _same_dim(x1, x2, "features1", "features2")
    if int(n_subsets) < 1:
        raise ConfigError(f"kid: n_subsets must be >= 1, got {n_subsets}")
    if int(subset_size) < 2:
        raise ConfigError(f"kid: subset_size must be >= 2, got {subset_size}")
    m = min(int(subset_size), x1.shape[0], x2.shape[0])
    rng = np.random.default_rng(seed)
    values = np.empty(int(n_subsets))
    for s in range(int(n_subsets)):
        a = x1[rng.choice(x1.shape[0], m, replace=False)]  # (m, F)
        b = x2[rng.choice(x2.shape[0], m, replace=False)]  # (m, F)
        values[s] = _mmd2(a, b)
    return float(values.mean()), float(values.std())
