"""Toy distributions: shapes, exact modes, moments, seeded and global-RNG-free draws."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from ganland.data import DATASETS, SamplerDataset
from ganland.data.toy import grid_modes, ring_modes
from ganland.errors import ConfigError, DataError

TOYS = {"gaussian-1d": (1, "hist"), "sine": (10, "curves"), "ring": (2, "scatter"),
        "grid": (2, "scatter"), "swiss-roll": (2, "scatter")}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", sorted(TOYS))
def test_shapes_dtypes_and_plot(name):
    ds = DATASETS.get(name)()
    dim, plot = TOYS[name]
    assert isinstance(ds, SamplerDataset) and not ds.finite
    assert ds.dim == dim and ds.shape == (dim,) and ds.plot == plot
    x = ds.draw(257, gen())
    assert x.shape == (257, dim) and x.dtype == torch.float32 and bool(torch.isfinite(x).all())
    assert DATASETS.get(name)(split="test").dim == dim  # the split is accepted
    with pytest.raises(DataError, match="unknown split"):
        DATASETS.get(name)(split="validation")


@pytest.mark.parametrize("name", sorted(TOYS))
def test_reproducible_and_independent_of_global_rng(name):
    ds = DATASETS.get(name)()
    torch.manual_seed(1)
    np.random.seed(1)
    a = ds.draw(100, gen(7))
    torch.manual_seed(2)
    np.random.seed(2)
    b = ds.draw(100, gen(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, ds.draw(100, gen(8)))
    g = gen(7)
    assert not torch.equal(ds.draw(100, g), ds.draw(100, g))  # the generator advances


def test_ring_has_eight_distinct_equally_spaced_modes():
    ds = DATASETS.get("ring")()
    modes = ds.target["modes"]
    assert modes.shape == (8, 2) and ds.target["std"] == 0.01
    k = np.arange(8)
    np.testing.assert_allclose(modes, np.stack([np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)], 1), atol=1e-12)
    angles = np.sort(np.mod(np.arctan2(modes[:, 1], modes[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(np.diff(np.r_[angles, angles[0] + 2 * np.pi]), 2 * np.pi / 8)
    np.testing.assert_allclose(np.linalg.norm(ring_modes(8, radius=2.0), axis=1), 2.0)


def test_grid_has_the_25_points():
    ds = DATASETS.get("grid")()
    assert ds.target["std"] == 0.05
    points = {tuple(p) for p in ds.target["modes"].tolist()}
    assert points == set(itertools.product([-4.0, -2.0, 0.0, 2.0, 4.0], repeat=2))
    assert grid_modes(3, 1.0).tolist() == [[a, b] for a in (-1.0, 0.0, 1.0) for b in (-1.0, 0.0, 1.0)]


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_mixture_samples_sit_on_equally_weighted_modes(name):
    ds = DATASETS.get(name)()
    modes, std = torch.as_tensor(ds.target["modes"], dtype=torch.float32), ds.target["std"]
    x = ds.draw(50_000, gen(3))
    dist, nearest = torch.cdist(x, modes).min(dim=1)
    assert float(dist.max()) < 6 * std
    counts = torch.bincount(nearest, minlength=len(modes)).double()
    expected = len(x) / len(modes)
    assert float(((counts - expected) ** 2 / expected).sum()) < 3 * len(modes)  # chi² ≈ K - 1 if uniform
    within_mode = (x - modes[nearest]).std(dim=0)
    np.testing.assert_allclose(within_mode.numpy(), std, rtol=0.03)


def test_gaussian_1d_moments_and_density():
    ds = DATASETS.get("gaussian-1d")()
    assert ds.target == {"mean": 10.0, "std": 0.1}
    x = ds.draw(40_000, gen(1)).double()
    assert abs(float(x.mean()) - 10.0) < 0.003  # standard error 0.0005
    assert abs(float(x.std()) - 0.1) < 0.003
    grid = np.linspace(9.0, 11.0, 4001)
    pdf = ds.density(grid)
    assert abs(np.trapezoid(pdf, grid) - 1.0) < 1e-6
    assert math.isclose(pdf[2000], 1 / (0.1 * math.sqrt(2 * math.pi)))
    other = DATASETS.get("gaussian-1d")(mean=-3.0, std=2.0).draw(40_000, gen(2)).double()
    assert abs(float(other.mean()) + 3.0) < 0.05 and abs(float(other.std()) - 2.0) < 0.05


def test_sine_signals_follow_seed_002():
    ds = DATASETS.get("sine")()
    assert ds.target["freq"] == (1.2, 1.5) and ds.target["mult"] == (0.5, 0.8) and ds.target["x0"] == (0.0, 1.0)
    x = ds.draw(5000, gen(4)).double()  # (N, 10)
    amplitude = x.abs().max(dim=1).values
    assert float(amplitude.max()) <= 0.8 + 1e-6
    assert float(amplitude.min()) >= 0.5 * math.cos(0.75) - 1e-6  # a sample lies within 0.75 rad of a peak
    # A sine with step f obeys x[i-1] + x[i+1] = 2 cos(f) x[i]: recover f per signal.
    mid = x[:, 1:-1]
    c = (mid * (x[:, :-2] + x[:, 2:])).sum(1) / (2 * (mid * mid).sum(1))
    freq = torch.arccos(c)
    assert float(freq.min()) >= 1.2 - 1e-4 and float(freq.max()) <= 1.5 + 1e-4
    assert float(freq.max() - freq.min()) > 0.25  # the whole range is used
    # x[0] = mult * sin(x0) with x0 in (0, 1): positive, at most 0.8 sin(1).
    assert float(x[:, 0].min()) >= 0 and float(x[:, 0].max()) <= 0.8 * math.sin(1.0) + 1e-6
    assert DATASETS.get("sine")(n_points=25).draw(3, gen()).shape == (3, 25)


def test_swiss_roll_parameterisation():
    ds = DATASETS.get("swiss-roll")(noise=0.0, scale=5.0)
    assert ds.target == {}
    x = ds.draw(2000, gen(5)).double() * 5.0  # back to (t cos t, t sin t)
    t = x.norm(dim=1)
    assert float(t.min()) >= 1.5 * math.pi - 1e-4 and float(t.max()) <= 4.5 * math.pi + 1e-4
    assert float((x - torch.stack([t * torch.cos(t), t * torch.sin(t)], 1)).abs().max()) < 1e-3


@pytest.mark.parametrize(
    "name, options",
    [("gaussian-1d", {"std": 0.0}), ("ring", {"std": -1.0}), ("grid", {"n_per_side": 0}),
     ("sine", {"n_points": 0}), ("swiss-roll", {"noise": -0.1})],
)
def test_bad_options_are_config_errors(name, options):
    with pytest.raises(ConfigError):
        DATASETS.get(name)(**options)
