"""Every data test runs offline, with its own cache folder and no system-wide dataset copies."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganland.data import idx, sources


@pytest.fixture(autouse=True)
def isolated_sources(tmp_path, monkeypatch) -> Path:
    """GANLAND_CACHE in tmp_path, no Debian copy, and a network that always fails."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANLAND_CACHE", str(cache))
    monkeypatch.setitem(idx.SYSTEM_DIRS, "fashion-mnist", tmp_path / "no-system-copy")

    def no_network(url, out, timeout):
        raise OSError(f"network disabled in tests ({url})")

    monkeypatch.setattr(sources, "fetch_url", no_network)
    return cache


def write_idx_split(folder: Path, split: str, n: int, seed: int = 0, gzip: bool = True, size: int = 28):
    """Synthetic images (n, size, size) and labels 0..9 written under the official file names."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    image_name, label_name = idx.SPLIT_FILES[split]
    suffix = ".gz" if gzip else ""
    idx.write_idx(folder / (image_name + suffix), images, gzip=gzip)
    idx.write_idx(folder / (label_name + suffix), labels, gzip=gzip)
    return images, labels
