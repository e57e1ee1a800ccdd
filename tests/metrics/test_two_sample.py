"""Energy distance against SciPy (1-D) and a direct computation (2-D), and its basic properties."""
import numpy as np
import pytest
import scipy.stats

from ganland.errors import ConfigError
from ganland.metrics import energy_distance


def test_matches_scipy_in_one_dimension():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 1)), rng.normal(0.5, 2.0, size=(200, 1))
    assert energy_distance(a, b) == pytest.approx(scipy.stats.energy_distance(a[:, 0], b[:, 0]), rel=1e-10)


def test_matches_the_definition_in_two_dimensions_and_chunking_changes_nothing():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 2)), rng.normal(1.0, size=(70, 2))
    d = lambda p, q: np.linalg.norm(p[:, None] - q[None], axis=-1).mean()  # noqa: E731
    expected = np.sqrt(2 * d(x, y) - d(x, x) - d(y, y))
    assert energy_distance(x, y) == pytest.approx(expected, rel=1e-10)
    assert energy_distance(x, y, chunk_size=7) == pytest.approx(expected, rel=1e-10)


def test_zero_for_the_same_sample_and_symmetric():
    x = np.random.default_rng(2).normal(size=(40, 3))
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    y = x + 0.3
    assert energy_distance(x, y) == pytest.approx(energy_distance(y, x), rel=1e-9)
    with pytest.raises(ConfigError, match="different dimension"):
        energy_distance(x, y[:, :2])
