"""FID: statistics, streaming accumulation, the Fréchet distance against closed forms."""
import importlib

import numpy as np
import pytest

from ganland.errors import ConfigError
from ganland.metrics import FeatureStats, StatsAccumulator, feature_statistics, fid, frechet_distance


def _trace_sqrt_product(s1, s2):
    """Tr sqrt(S1 S2) independently of sqrtm: eigenvalues of the symmetric sqrt(S1) S2 sqrt(S1)."""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()


def test_feature_statistics_matches_numpy():
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    st = feature_statistics(x)
    assert st.n == 50 and st.mean.dtype == np.float64
    np.testing.assert_allclose(st.mean, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(st.cov, np.cov(x.astype(np.float64), rowvar=False, ddof=1), rtol=1e-12)


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_accumulator_is_batch_size_independent(chunk):
    x = np.random.default_rng(1).normal(loc=1000.0, scale=3.0, size=(300, 6))  # large offset: tests centring
    ref = feature_statistics(x)
    acc = StatsAccumulator()
    for start in range(0, len(x), chunk):
        acc.add(x[start:start + chunk])
    got = acc.result()
    assert got.n == ref.n
    np.testing.assert_allclose(got.mean, ref.mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.cov, ref.cov, rtol=0, atol=1e-10)


def test_accumulator_errors():
    acc = StatsAccumulator().add(np.zeros((1, 3)))
    with pytest.raises(ConfigError, match="at least 2"):
        acc.result()
    with pytest.raises(ConfigError, match="dimension"):
        acc.add(np.zeros((2, 4)))
    with pytest.raises(ConfigError, match="NaN"):
        acc.add(np.full((2, 3), np.nan))


def test_npz_round_trip(tmp_path):
    st = feature_statistics(np.random.default_rng(2).normal(size=(20, 3)))
    st.to_npz(tmp_path / "s.npz")
    back = FeatureStats.from_npz(tmp_path / "s.npz")
    assert back.n == 20
    np.testing.assert_array_equal(back.mean, st.mean)
    np.testing.assert_array_equal(back.cov, st.cov)
    np.savez(tmp_path / "bad.npz", mean=st.mean)
    with pytest.raises(ConfigError, match="missing"):
        FeatureStats.from_npz(tmp_path / "bad.npz")


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(3).normal(size=(500, 16))
    assert abs(fid(x, x)) < 1e-8


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(4)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.1, 3.0, size=5), rng.uniform(0.1, 3.0, size=5)
    expected = ((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2.0 * np.sqrt(v1 * v2)).sum()
    got = frechet_distance(FeatureStats(10, mu1, np.diag(v1)), FeatureStats(10, mu2, np.diag(v2)))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_full_covariances_against_eigen_formula():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    s1, s2 = a @ a.T + 0.1 * np.eye(8), b @ b.T + 0.1 * np.eye(8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_product(s1, s2)
    assert frechet_distance(FeatureStats(9, mu1, s1), FeatureStats(9, mu2, s2)) == pytest.approx(expected, rel=1e-9)


def test_shifted_set_gives_squared_shift():
    x = np.random.default_rng(6).normal(size=(400, 10))
    shift = np.linspace(-1.0, 2.0, 10)
    assert fid(x, x + shift) == pytest.approx((shift ** 2).sum(), rel=1e-9)


def test_samples_of_two_gaussians_approach_the_closed_form():
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, 1.0, size=(20000, 3))
    y = rng.normal(0.5, 2.0, size=(20000, 3))
    expected = 3 * 0.5 ** 2 + 3 * (1 + 4 - 2 * 2)
    assert fid(x, y) == pytest.approx(expected, abs=0.1)


def test_singular_covariances_give_a_finite_value():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(10, 32)), rng.normal(size=(12, 32))  # fewer samples than dimensions
    s1, s2 = feature_statistics(x), feature_statistics(y)
    value = frechet_distance(s1, s2)
    assert np.isfinite(value)
    expected = (((s1.mean - s2.mean) ** 2).sum() + np.trace(s1.cov) + np.trace(s2.cov)
                - 2 * _trace_sqrt_product(s1.cov, s2.cov))
    assert value == pytest.approx(expected, rel=1e-3)
    # Rank-one covariances: the eps*I retry must kick in or the first try must succeed; either way finite.
    e = np.zeros((4, 4))
    e[0, 0] = 1.0
    f = np.zeros((4, 4))
    f[1, 1] = 1.0
    assert np.isfinite(frechet_distance(FeatureStats(2, np.zeros(4), e), FeatureStats(2, np.zeros(4), f)))


def test_fid_input_errors():
    with pytest.raises(ConfigError, match="different dimension"):
        fid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ConfigError, match="NaN"):
        fid(np.full((5, 3), np.nan), np.zeros((5, 3)))
    with pytest.raises(ConfigError, match="at least 2"):
        fid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ConfigError, match="2-D"):
        fid(np.zeros(5), np.zeros((5, 1)))


def test_eps_retry_and_failure(monkeypatch):
    """A non-finite square root is retried once with eps*I on both covariances, then reported."""
    fid_module = importlib.import_module("ganland.metrics.fid")  # the package attribute `fid` is the function

    real_sqrtm = fid_module.scipy.linalg.sqrtm
    calls = []

    def flaky(a):
        calls.append(a.copy())
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(fid_module.scipy.linalg, "sqrtm", flaky)
    s = FeatureStats(5, np.zeros(2), np.diag([1.0, 4.0]))
    assert abs(frechet_distance(s, s, eps=1e-3)) < 1e-9  # eps enters the traces too: still ~0
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], np.diag([1.001 ** 2, 4.001 ** 2]))

    monkeypatch.setattr(fid_module.scipy.linalg, "sqrtm", lambda a: np.full_like(a, np.nan))
    with pytest.raises(ConfigError, match="not finite"):
        frechet_distance(s, s)
