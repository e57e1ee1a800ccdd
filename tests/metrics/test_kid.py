"""KID: the unbiased MMD^2 against a direct double loop, unbiasedness, subsets and errors."""
import numpy as np
import pytest

from ganland.errors import ConfigError
from ganland.metrics import kid, mmd2_unbiased


def _mmd2_by_loops(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_mmd2_matches_double_loop():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(0.5, 1.0, size=(9, 3))
    assert mmd2_unbiased(x, y) == pytest.approx(_mmd2_by_loops(x, y), rel=1e-12)


def test_kid_with_whole_sets_is_the_full_mmd2():
    """subset_size is clipped to the sample size; whole sets in any order give the same MMD^2."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    mean, std = kid(x, y, n_subsets=4, subset_size=1000)
    assert std == pytest.approx(0.0, abs=1e-12)
    assert mean == pytest.approx(mmd2_unbiased(x, y), rel=1e-9)


def test_mmd2_is_unbiased_for_equal_distributions():
    """Independent replications: the average is 0 within 4 standard errors."""
    rng = np.random.default_rng(2)
    values = np.array([mmd2_unbiased(rng.normal(size=(20, 4)), rng.normal(size=(20, 4))) for _ in range(400)])
    assert abs(values.mean()) < 4 * values.std(ddof=1) / np.sqrt(len(values))
    assert (values < 0).any()  # an unbiased estimate of 0 must go negative


def test_kid_same_versus_different_distribution():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(1000, 16)), rng.normal(size=(1000, 16))
    same, same_std = kid(x, y, n_subsets=50, subset_size=200, seed=0)
    diff, _ = kid(x, y * 1.2 + 0.3, n_subsets=50, subset_size=200, seed=0)
    assert abs(same) < 3 * same_std  # ~0, either sign
    assert diff > 20 * max(abs(same), same_std / np.sqrt(50))
    assert kid(x, y, n_subsets=5, subset_size=100, seed=7) == kid(x, y, n_subsets=5, subset_size=100, seed=7)


def test_kid_errors():
    x = np.zeros((10, 3))
    with pytest.raises(ConfigError, match="at least 2"):
        kid(x, np.zeros((1, 3)))
    with pytest.raises(ConfigError, match="different dimension"):
        kid(x, np.zeros((10, 4)))
    with pytest.raises(ConfigError, match="NaN"):
        kid(x, np.full((10, 3), np.nan))
    with pytest.raises(ConfigError, match="n_subsets"):
        kid(x, x, n_subsets=0)
    with pytest.raises(ConfigError, match="subset_size"):
        kid(x, x, subset_size=1)
