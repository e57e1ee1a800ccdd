"""Sample grids: images tiled into one PNG (seed 000's 8 x 8 grid), with PIL only."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image


def tile(images: np.ndarray, ncols: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """uint8 (N, H, W, C) -> one uint8 (rows*(H+pad)+pad, cols*(W+pad)+pad, C) mosaic."""
    n, h, w, c = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, np.uint8)
    for i in range(n):
        r, k = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        out[y:y + h, x:x + w] = images[i]
    return out


def save_grid(path: Path, images: np.ndarray, ncols: int | None = None, min_cell: int = 56) -> Path:
    """Save uint8 images (N, H, W, C) as a PNG grid; small images are enlarged (nearest)."""
    mosaic = tile(images, ncols)
    scale = max(1, math.ceil(min_cell / images.shape[1]))
    if mosaic.shape[2] == 1:
        img = Image.fromarray(mosaic[:, :, 0], mode="L")
    else:
        img = Image.fromarray(mosaic, mode="RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return Path(path)
