"""1-D normal statistics (exact W1) and the sine fit / sine metrics of seed 002's data."""
import numpy as np
import pytest
import scipy.stats

from ganland.errors import ConfigError
from ganland.metrics import fit_sines, normal_1d_stats, sine_metrics
from ganland.metrics.signals import SINE_RANGES


def _w1_by_integration(x, mean, std):
    """W1 = integral of |F_N - F| over a fine grid (an independent computation)."""
    t = np.linspace(min(x.min(), mean - 8 * std), max(x.max(), mean + 8 * std), 2_000_001)
    fn = np.searchsorted(np.sort(x), t, side="right") / len(x)
    return np.trapezoid(np.abs(fn - scipy.stats.norm.cdf(t, mean, std)), t)


def test_normal_1d_stats_on_a_target_sample():
    x = np.random.default_rng(0).normal(10.0, 0.1, size=100_000)
    out = normal_1d_stats(x, 10.0, 0.1)
    assert out["mean"] == pytest.approx(10.0, abs=1e-3)
    assert out["std"] == pytest.approx(0.1, rel=0.01)
    assert out["ks"] < 0.01 and out["w1"] < 1e-3


def test_w1_of_a_shifted_sample_is_the_shift():
    x = np.random.default_rng(1).normal(10.0, 0.1, size=(100_000, 1))
    out = normal_1d_stats(x + 0.05, 10.0, 0.1)
    assert out["w1"] == pytest.approx(0.05, abs=1e-3)
    assert out["ks"] == pytest.approx(2 * scipy.stats.norm.cdf(0.25) - 1, abs=0.01)  # sup |Φ(z) - Φ(z - 0.5)|, at z = 0.25


def test_w1_is_exact():
    x = np.random.default_rng(2).normal(9.9, 0.2, size=40)
    assert normal_1d_stats(x, 10.0, 0.1)["w1"] == pytest.approx(_w1_by_integration(x, 10.0, 0.1), rel=1e-6)


def test_normal_1d_stats_errors():
    with pytest.raises(ConfigError, match="std > 0"):
        normal_1d_stats(np.zeros(5), 0.0, 0.0)
    with pytest.raises(ConfigError, match="shape"):
        normal_1d_stats(np.zeros((5, 2)), 0.0, 1.0)
    with pytest.raises(ConfigError, match="NaN"):
        normal_1d_stats(np.array([0.0, np.nan]), 0.0, 1.0)


def _real_sines(n, n_points=10, seed=0):
    rng = np.random.default_rng(seed)
    x0, freq, mult = (rng.uniform(*SINE_RANGES[k], size=n) for k in ("x0", "freq", "mult"))
    curves = mult[:, None] * np.sin(x0[:, None] + freq[:, None] * np.arange(n_points))
    return curves, x0, freq, mult


def test_ranges_match_the_dataset():
    from ganland.data import toy

    assert SINE_RANGES == {"x0": toy.SINE_X0, "freq": toy.SINE_FREQ, "mult": toy.SINE_MULT}


@pytest.mark.parametrize("n_points", [10, 64])
def test_fit_sines_recovers_noiseless_parameters(n_points):
    curves, x0, freq, mult = _real_sines(500, n_points)
    fit = fit_sines(curves)
    dx0 = np.angle(np.exp(1j * (fit["x0"] - x0)))  # phase difference modulo 2π
    assert np.abs(dx0).max() < 1e-3
    assert np.abs(fit["freq"] - freq).max() < 1e-3
    assert np.abs(fit["mult"] - mult).max() < 1e-3
    assert fit["rmse"].max() < 1e-6
    assert ((fit["x0"] >= 0) & (fit["x0"] < 2 * np.pi)).all()


def test_real_curves_pass_and_spreads_match():
    import torch

    from ganland.data.toy import build_sine

    curves = build_sine().draw(2000, torch.Generator().manual_seed(0)).numpy()  # float32, as trained on
    out = sine_metrics(curves)
    assert out["sine_share"] == 1.0 and out["rmse_median"] < 1e-6
    for key in ("x0", "freq", "mult"):
        assert out[f"{key}_std"] == pytest.approx(out[f"{key}_std_data"], rel=0.1)
        assert out[f"{key}_mean"] == pytest.approx(out[f"{key}_mean_data"], abs=0.03)
    # small noise (0.01, a fifth of rmse_max) still passes
    noisy = curves + 0.01 * np.random.default_rng(0).normal(size=curves.shape)
    assert sine_metrics(noisy)["sine_share"] > 0.99


def test_non_sines_and_wrong_sines_fail():
    rng = np.random.default_rng(3)
    assert sine_metrics(rng.uniform(-1, 1, size=(500, 10)))["sine_share"] == 0.0
    assert sine_metrics(rng.normal(0, 0.3, size=(500, 10)))["sine_share"] == 0.0
    constants = np.repeat(np.linspace(-0.8, 0.8, 17), 10).reshape(17, 10)  # includes the zero curve
    out = sine_metrics(constants)
    assert out["sine_share"] == 0.0 and np.isnan(out["freq_std"])
    i = np.arange(10)
    assert sine_metrics(0.6 * np.sin(0.5 + 1.0 * i)[None].repeat(3, 0))["sine_share"] == 0.0  # freq too low
    assert sine_metrics(0.3 * np.sin(0.5 + 1.3 * i)[None].repeat(3, 0))["sine_share"] == 0.0  # mult too low
    assert sine_metrics(0.6 * np.sin(2.5 + 1.3 * i)[None].repeat(3, 0))["sine_share"] == 0.0  # phase off
    # a phase just below 0 (fitted as 2π - 0.05) lies inside the widened range [-0.1, 1.1]
    assert sine_metrics(0.6 * np.sin(-0.05 + 1.3 * i)[None].repeat(3, 0))["sine_share"] == 1.0


def test_sine_errors():
    with pytest.raises(ConfigError, match="at least 4 points"):
        fit_sines(np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="freq_range"):
        fit_sines(np.zeros((3, 10)), freq_range=(0.5, 4.0))
    with pytest.raises(ConfigError, match="keys"):
        sine_metrics(np.zeros((3, 10)), ranges={"freq": (1, 2)})
