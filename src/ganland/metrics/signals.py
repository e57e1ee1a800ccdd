"""Metrics for the 1-D signal toys: the normal of seed 003 and the sine signals of seed 002.

normal_1d_stats   sample mean/std, Kolmogorov-Smirnov statistic and exact 1-Wasserstein distance
                  of generated scalars against the target N(mean, std).
fit_sines         least-squares fit of mult * sin(x0 + freq * i) to every curve at once.
sine_metrics      share of generated curves that are sines inside the data's parameter ranges,
                  fit residuals, and the spread of the fitted parameters next to the data's.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.stats

from ..errors import ConfigError

# Seed 002's real sines, signal_i = mult * sin(x0 + freq * i), i = 0 .. n-1, with x0, freq, mult
# uniform on these ranges (the same numbers as ganland.data.toy.SINE_*; kept here so that the
# metrics need no torch).
SINE_RANGES = {"x0": (0.0, 1.0), "freq": (1.2, 1.5), "mult": (0.5, 0.8)}
FREQ_SEARCH = (0.8, 1.9)  # frequencies (radians per point) searched by fit_sines; must lie in (0, π)
SINE_RMSE_MAX = 0.05  # a curve is a sine when its fit's RMS residual is at most this (data units)
SINE_TOL = 0.1  # parameter ranges are widened by this fraction of their width on each side


# ---------------------------------------------------------------------------------------------
# 1-D normal


def sine_reference(ranges: dict) -> str:
    """The protocol's description of the sine target: its parameter ranges."""
    return f"sines x0~U{tuple(ranges['x0'])} freq~U{tuple(ranges['freq'])} mult~U{tuple(ranges['mult'])}"


def normal_1d_stats(samples, mean: float, std: float) -> dict:
    """samples (N,) or (N, 1), N >= 2, against N(mean, std) -> {mean, std, ks, w1}.

    mean, std: the sample's (std with ddof = 1). ks: Kolmogorov-Smirnov statistic
    sup |F_N - F| (scipy.stats.kstest). w1: 1-Wasserstein distance between the empirical
    distribution and N(mean, std), computed exactly as the integral over u in (0, 1) of
    |x_(ceil(uN)) - F^-1(u)|, piece by piece in closed form (the integral of the normal quantile
    function is -std * pdf(ppf(u)) + mean * u); it is |shift| for an exactly shifted normal.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ConfigError(f"normal_1d_stats: expected samples (N,) or (N, 1), got shape {x.shape}")
    if x.shape[0] < 2:
        raise ConfigError(f"normal_1d_stats: needs at least 2 samples, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ConfigError("normal_1d_stats: samples contain NaN or inf")
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise ConfigError(f"normal_1d_stats: the target needs a finite mean and std > 0, got {mean}, {std}")

    n = x.shape[0]
    z = np.sort((x - mean) / std)  # (N,) in standard units; W1 scales with std
    a = np.arange(n) / n  # (N,) quantile interval of z_(i) is [a_i, b_i]
    b = np.arange(1, n + 1) / n
    c = np.clip(scipy.stats.norm.cdf(z), a, b)  # where the normal quantile crosses z_(i)

    def qint(u):  # integral from 0 to u of the standard normal quantile function
        return -scipy.stats.norm.pdf(scipy.stats.norm.ppf(u))

    qa, qb, qc = qint(a), qint(b), qint(c)
    # integral over [a, b] of |z - Q(u)| = (z - Q) on [a, c] plus (Q - z) on [c, b]
    pieces = z * (c - a) - (qc - qa) + (qb - qc) - z * (b - c)
    return {
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)),
        "ks": float(scipy.stats.kstest(x, "norm", args=(mean, std)).statistic),
        "w1": float(std * pieces.sum()),
    }


# ---------------------------------------------------------------------------------------------
# Sine signals


def _as_curves(curves, name: str) -> np.ndarray:
    y = np.asarray(curves, dtype=np.float64)
    if y.ndim != 2:
        raise ConfigError(f"{name}: expected curves (N, n_points), got shape {y.shape}")
    if y.shape[1] < 4:
        raise ConfigError(f"{name}: a sine has 3 parameters: needs at least 4 points per curve, got {y.shape[1]}")
    if not np.isfinite(y).all():
        raise ConfigError(f"{name}: curves contain NaN or inf")
    return y


def fit_sines(curves, freq_range: tuple[float, float] = FREQ_SEARCH, n_refine: int = 20) -> dict:
    """Least-squares fit of mult * sin(x0 + freq * i), i = 0..n-1, to each of curves (N, n).

    Returns arrays (N,): x0 in [0, 2π), freq in freq_range, mult >= 0, rmse (RMS residual).
    Vectorised over curves: for each frequency on a grid over freq_range the model
    a sin(freq i) + b cos(freq i) is linear, so (a, b) solve in closed form for all curves; the
    best grid frequency then seeds n_refine Levenberg-Marquardt steps on (a, b, freq). Finally
    mult = |(a, b)|, x0 = atan2(b, a). freq_range must lie inside (0, π): outside it frequencies
    alias (freq and 2π - freq give the same samples up to the phase).
    """
    y = _as_curves(curves, "fit_sines")
    lo, hi = float(freq_range[0]), float(freq_range[1])
    if not 0.0 < lo < hi < math.pi:
        raise ConfigError(f"fit_sines: freq_range must satisfy 0 < lo < hi < π, got {freq_range}")
    n_curves, n = y.shape
    steps = np.arange(n, dtype=np.float64)  # (n,)

    # Grid search: spacing well inside the basin of the true minimum (~π / n wide) for any n.
    spacing = min(0.005, math.pi / n / 8.0)
    grid = np.linspace(lo, hi, int(math.ceil((hi - lo) / spacing)) + 1)  # (G,)
    sin_g, cos_g = np.sin(grid[:, None] * steps), np.cos(grid[:, None] * steps)  # (G, n)
    ss, cc, sc = (sin_g * sin_g).sum(1), (cos_g * cos_g).sum(1), (sin_g * cos_g).sum(1)  # (G,)
    det = ss * cc - sc * sc  # > 0 away from freq = 0 and π
    ys, yc = y @ sin_g.T, y @ cos_g.T  # (N, G)
    a_g = (cc * ys - sc * yc) / det
    b_g = (ss * yc - sc * ys) / det
    explained = a_g * ys + b_g * yc  # (N, G): ||y||^2 - SSE, maximised by the best fit
    best = explained.argmax(axis=1)  # (N,)
    rows = np.arange(n_curves)
    a, b, f = a_g[rows, best], b_g[rows, best], grid[best]

    def sse_of(a, b, f):
        phase = f[:, None] * steps  # (N, n)
        return ((y - a[:, None] * np.sin(phase) - b[:, None] * np.cos(phase)) ** 2).sum(1)

    # Levenberg-Marquardt refinement, per curve: a step is kept only where it lowers the SSE.
    sse = sse_of(a, b, f)
    lam = np.full(n_curves, 1e-3)
    eye = np.eye(3)
    for _ in range(int(n_refine)):
        phase = f[:, None] * steps
        s, c = np.sin(phase), np.cos(phase)  # (N, n)
        r = y - a[:, None] * s - b[:, None] * c  # (N, n) residuals
        jac = np.stack([s, c, steps * (a[:, None] * c - b[:, None] * s)], axis=-1)  # (N, n, 3)
        jtj = np.einsum("nij,nik->njk", jac, jac)  # (N, 3, 3)
        jtr = np.einsum("nij,ni->nj", jac, r)  # (N, 3)
        diag = np.einsum("njj->nj", jtj)  # (N, 3)
        damped = jtj + (lam[:, None] * diag + 1e-12 * (diag.sum(1, keepdims=True) + 1.0))[:, :, None] * eye
        delta = np.linalg.solve(damped, jtr[..., None])[..., 0]  # (N, 3)
        a_new, b_new, f_new = a + delta[:, 0], b + delta[:, 1], f + delta[:, 2]
        sse_new = sse_of(a_new, b_new, f_new)
        better = (sse_new < sse) & (f_new >= lo) & (f_new <= hi)
        a, b, f = np.where(better, a_new, a), np.where(better, b_new, b), np.where(better, f_new, f)
        sse = np.where(better, sse_new, sse)
        lam = np.clip(np.where(better, lam / 10.0, lam * 10.0), 1e-12, 1e12)

    return {
        "x0": np.mod(np.arctan2(b, a), 2.0 * math.pi),  # a = mult cos x0, b = mult sin x0
        "freq": f,
        "mult": np.hypot(a, b),
        "rmse": np.sqrt(sse / n),
    }


def _wrap_around(x0: np.ndarray, centre: float) -> np.ndarray:
    """Phases as the representative in [centre - π, centre + π), so ranges like [0, 1] compare
    correctly with a fitted phase of 2π - 1e-9."""
    return np.mod(x0 - centre + math.pi, 2.0 * math.pi) + centre - math.pi


def sine_metrics(curves, ranges: dict | None = None, tol: float = SINE_TOL, rmse_max: float = SINE_RMSE_MAX) -> dict:
    """How much generated curves (N, n_points) look like the data's sines -> dict of floats.

    A curve passes when its least-squares sine fit (fit_sines) has rmse <= rmse_max (0.05,
    7-10 % of the data's amplitudes 0.5-0.8) and its fitted freq, mult and x0 lie in `ranges`
    (default SINE_RANGES, the data's) each widened by tol * width on both sides (tol = 0.1);
    x0 is compared modulo 2π. Real curves pass at ~100 % (their fits are exact to ~1e-7), noise
    and constant curves at ~0 %.

    Keys: n, sine_share (share passing), rmse_median, rmse_mean (over all curves); for p in
    x0, freq, mult: p_mean, p_std over the passing curves (NaN when fewer than 2 pass) next to
    p_mean_data, p_std_data of the data's uniform range (midpoint, width / sqrt(12)); and the
    thresholds rmse_max, tol.
    """
    y = _as_curves(curves, "sine_metrics")
    ranges = dict(SINE_RANGES if ranges is None else ranges)
    if set(ranges) != set(SINE_RANGES):
        raise ConfigError(f"sine_metrics: ranges needs exactly the keys {sorted(SINE_RANGES)}, got {sorted(ranges)}")
    for key, (lo, hi) in ranges.items():
        if not lo <= hi:
            raise ConfigError(f"sine_metrics: range {key} must have lo <= hi, got ({lo}, {hi})")
    if tol < 0 or rmse_max < 0:
        raise ConfigError(f"sine_metrics: tol and rmse_max must be >= 0, got {tol}, {rmse_max}")

    widened = {k: (lo - tol * (hi - lo), hi + tol * (hi - lo)) for k, (lo, hi) in ranges.items()}
    f_lo, f_hi = widened["freq"]
    f_pad = max(f_hi - f_lo, 0.1)  # search beyond the accepted range, so out-of-range fits show
    search = (max(min(FREQ_SEARCH[0], f_lo - f_pad), 0.05), min(max(FREQ_SEARCH[1], f_hi + f_pad), math.pi - 0.05))
    fit = fit_sines(y, freq_range=search)
    params = {
        "x0": _wrap_around(fit["x0"], 0.5 * sum(ranges["x0"])),
        "freq": fit["freq"],
        "mult": fit["mult"],
    }
    ok = fit["rmse"] <= rmse_max
    for key, (lo, hi) in widened.items():
        ok &= (params[key] >= lo) & (params[key] <= hi)

    out = {
        "n": int(y.shape[0]),
        "sine_share": float(ok.mean()),
        "rmse_median": float(np.median(fit["rmse"])),
        "rmse_mean": float(fit["rmse"].mean()),
    }
    for key, (lo, hi) in ranges.items():
        passing = params[key][ok]
        out[f"{key}_mean"] = float(passing.mean()) if passing.size >= 2 else float("nan")
        out[f"{key}_std"] = float(passing.std(ddof=1)) if passing.size >= 2 else float("nan")
        out[f"{key}_mean_data"] = 0.5 * (lo + hi)
        out[f"{key}_std_data"] = (hi - lo) / math.sqrt(12.0)
    out["rmse_max"] = float(rmse_max)
    out["tol"] = float(tol)
    return out
