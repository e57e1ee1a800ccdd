"""Shared fixtures: offline data sources and tiny datasets written by the tests themselves."""
from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from ganland.data import idx, sources


def pytest_configure(config):
    """A shell that starts the tests in the background (`make test &`, nohup) hands them SIGINT
    ignored, and every process they start inherits that. The interrupt tests check Ctrl-C as a
    foreground shell delivers it, so the test session takes Python's own handler back (processes
    it starts then get the default action, as from a terminal)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch) -> Path:
    """Every test: its own cache folder (returned), no system dataset copies, no network."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANLAND_CACHE", str(cache))
    monkeypatch.setitem(idx.SYSTEM_DIRS, "fashion-mnist", tmp_path / "no-system-copy")

    def no_network(url, out, timeout):
        raise OSError(f"network disabled in tests ({url})")

    monkeypatch.setattr(sources, "fetch_url", no_network)
    return cache


def write_fake_mnist(folder: Path, n_train: int = 256, n_test: int = 64, seed: int = 0) -> Path:
    """Tiny MNIST-format files: class k is a bright k-th horizontal band on a dark image."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 + 2 * k: 4 + 2 * k, 4:24] = 230
        image_name, label_name = idx.SPLIT_FILES[split]
        idx.write_idx(folder / (image_name + ".gz"), images)
        idx.write_idx(folder / (label_name + ".gz"), labels)
    return folder


@pytest.fixture
def fake_mnist(tmp_path) -> Path:
    return write_fake_mnist(tmp_path / "mnist")
