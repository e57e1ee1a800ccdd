"""PSNR and SSIM against values worked out by hand."""
import math

import numpy as np
import pytest

from ganland.errors import ConfigError
from ganland.metrics.restoration import K1, K2, gaussian_window, psnr, psnr_per_image, ssim, ssim_per_image


def test_psnr_hand_values():
    a = np.zeros((1, 8, 8, 1), np.uint8)
    b = np.full((1, 8, 8, 1), 16, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 256))  # MSE 16^2: 24.048 dB
    c = a.copy()
    c[0, 0, 0, 0] = 255  # one pixel of 64 off by 255: MSE 255^2 / 64
    assert psnr(a, c) == pytest.approx(10 * math.log10(64))
    per = psnr_per_image(np.concatenate([a, a]), np.concatenate([b, c]))
    assert per == pytest.approx([24.0484, 18.0618], abs=1e-4)
    assert psnr(a, a) == pytest.approx(10 * math.log10(255 ** 2 / 1e-10))  # exact copies: finite


def test_ssim_of_constant_images_is_the_luminance_term():
    a, b = 100.0, 120.0
    c1 = (K1 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # no variance, no covariance: 0.98361
    x, y = np.full((2, 16, 16, 3), a, np.uint8), np.full((2, 16, 16, 3), b, np.uint8)
    assert ssim(x, y) == pytest.approx(expected, rel=1e-12)
    assert ssim(x, x) == pytest.approx(1.0)


def test_ssim_of_one_window_matches_the_weighted_statistics_written_out():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 11, 11, 1)).astype(np.float64)
    y = np.clip(0.5 * x + 30 + rng.normal(0, 10, x.shape), 0, 255)
    w = gaussian_window().numpy()
    assert w.sum() == pytest.approx(1.0) and w[5, 5] == w.max()
    X, Y = x[0, :, :, 0], y[0, :, :, 0]
    mx, my = (w * X).sum(), (w * Y).sum()
    vx, vy = (w * (X - mx) ** 2).sum(), (w * (Y - my) ** 2).sum()
    cxy = (w * (X - mx) * (Y - my)).sum()
    c1, c2 = (K1 * 255) ** 2, (K2 * 255) ** 2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    assert ssim(x, y) == pytest.approx(expected, rel=1e-9)
    assert 0 < expected < 1


def test_ssim_falls_with_noise_and_handles_images_smaller_than_the_window():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (4, 28, 28, 1)).astype(np.uint8)
    noisy = [np.clip(x + rng.normal(0, s, x.shape), 0, 255).astype(np.uint8) for s in (5, 20, 60)]
    scores = [ssim(x, n) for n in noisy]
    assert scores[0] > scores[1] > scores[2]
    small = rng.integers(0, 256, (3, 7, 7, 1)).astype(np.uint8)
    assert ssim(small, small) == pytest.approx(1.0) and ssim_per_image(small, small[::-1]).shape == (3,)


def test_shapes_must_match():
    with pytest.raises(ConfigError, match="one shape"):
        psnr(np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 9, 1)))
    with pytest.raises(ConfigError, match="at least one image"):
        ssim(np.zeros((0, 8, 8, 1)), np.zeros((0, 8, 8, 1)))
