"""Helpers for the data tests (offline isolation comes from tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganland.data import idx


@pytest.fixture
def isolated_sources(offline) -> Path:
    """The test's own cache folder (the autouse `offline` fixture of tests/conftest.py also hides
    the Debian copy and disables the network)."""
    return offline


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
