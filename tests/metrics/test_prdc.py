"""Precision/recall and density/coverage: hand-worked 1-D cases, brute force, same-distribution values."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from ganland.errors import ConfigError
from ganland.metrics import density_coverage, prdc, precision_recall

REAL = np.array([0.0, 1.0, 3.0, 6.0, 10.0])[:, None]  # (5, 1)
FAKE = np.array([0.4, 2.2, 7.5, 8.0, 20.0])[:, None]  # (5, 1)


def test_precision_recall_by_hand():
    # real 1-NN radii: 0:1  1:1  3:2  6:3  10:4;  fake 1-NN radii: 0.4:1.8  2.2:1.8  7.5:0.5  8:0.5  20:12
    # precision: 0.4 (ball of 0), 2.2 (ball of 3), 7.5 and 8 (ball of 6) are inside; 20 is 10 from 10 > 4.
    # recall: 0, 1 (ball of 0.4), 3 (ball of 2.2), 10 (ball of 20, 10 <= 12) are inside;
    #         6 is 1.5 from 7.5 > 0.5, 2 from 8 > 0.5, 3.8 from 2.2 > 1.8, 14 from 20 > 12.
    assert precision_recall(REAL, FAKE, k=1) == (pytest.approx(0.8), pytest.approx(0.8))


def test_density_coverage_by_hand():
    # real 2-NN radii: 0:3  1:2  3:3  6:4  10:7
    # real balls holding each fake: 0.4 -> {0, 1, 3}; 2.2 -> {0, 1, 3, 6}; 7.5 -> {6, 10}; 8 -> {6, 10};
    # 20 -> {} : 11 memberships, density = 11 / (k=2 * M=5) = 1.1; every real ball holds a fake.
    density, coverage = density_coverage(REAL, FAKE, k=2)
    assert density == pytest.approx(1.1)
    assert coverage == pytest.approx(1.0)
    # With fakes 0.4 and 20 only and k=1 (radii 1 1 2 3 4): 0.4 lies in the balls of 0 and 1,
    # 20 in none: density = 2 / (1 * 2) = 1, coverage = 2 / 5.
    density, coverage = density_coverage(REAL, np.array([[0.4], [20.0]]), k=1)
    assert density == pytest.approx(1.0)
    assert coverage == pytest.approx(0.4)


def _brute_force(real, fake, k_pr, k_dc):
    drr, dff, drf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    np.fill_diagonal(drr, np.inf)
    np.fill_diagonal(dff, np.inf)
    r_pr, r_dc = np.sort(drr, 1)[:, k_pr - 1], np.sort(drr, 1)[:, k_dc - 1]
    f_pr = np.sort(dff, 1)[:, k_pr - 1]
    return {
        "precision": (drf <= r_pr[:, None]).any(0).mean(),
        "recall": (drf <= f_pr[None, :]).any(1).mean(),
        "density": (drf <= r_dc[:, None]).sum() / (k_dc * len(fake)),
        "coverage": (drf <= r_dc[:, None]).any(1).mean(),
    }


@pytest.mark.parametrize("chunk_size", [1, 7, 1024])
def test_chunked_matches_brute_force(chunk_size):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 5)), rng.normal(0.3, 1.2, size=(45, 5))
    got = prdc(real, fake, k_pr=3, k_dc=5, chunk_size=chunk_size)
    want = _brute_force(real, fake, 3, 5)
    assert got == pytest.approx(want, abs=1e-12)


def test_same_gaussian_density_one_coverage_097():
    rng = np.random.default_rng(1)
    out = prdc(rng.normal(size=(3000, 8)), rng.normal(size=(3000, 8)))
    assert out["density"] == pytest.approx(1.0, abs=0.06)
    assert out["coverage"] == pytest.approx(0.97, abs=0.015)
    assert out["precision"] > 0.5 and out["recall"] > 0.5


def test_collapsed_fakes_have_high_precision_low_recall_and_coverage():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(500, 4))
    fake = 0.05 * rng.normal(size=(500, 4))  # all fakes near the centre of the real cloud
    out = prdc(real, fake)
    assert out["precision"] > 0.99 and out["recall"] < 0.05 and out["coverage"] < 0.2


def test_prdc_errors():
    x = np.zeros((10, 3))
    with pytest.raises(ConfigError, match="at least 4 fake"):
        precision_recall(x, np.zeros((3, 3)), k=3)
    with pytest.raises(ConfigError, match="at least 6 real"):
        density_coverage(np.zeros((5, 3)), x, k=5)
    with pytest.raises(ConfigError, match="different dimension"):
        prdc(x, np.zeros((10, 2)))
    with pytest.raises(ConfigError, match="NaN"):
        prdc(x, np.full((10, 3), np.nan))
    with pytest.raises(ConfigError, match="positive integer"):
        precision_recall(x, x, k=0)
