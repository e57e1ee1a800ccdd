"""Sample grids: images tiled into one PNG (seed 000's 8 x 8 grid), with PIL only."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


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


def save_grid(path: Path, images: np.ndarray, ncols: int | None = None, min_cell: int = 56, title: str | None = None,
              column_labels: list[str] | None = None) -> Path:
    """Save uint8 images (N, H, W, C) as a PNG grid; small images are enlarged (nearest).

    title: a line of text above the grid (e.g. the run and its step); column_labels: a label above
    each column (e.g. the class each column was generated for)."""
    mosaic = tile(images, ncols)
    scale = max(1, math.ceil(min_cell / images.shape[1]))
    if mosaic.shape[2] == 1:
        img = Image.fromarray(mosaic[:, :, 0], mode="L")
    else:
        img = Image.fromarray(mosaic, mode="RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if title or column_labels:
        img = _with_header(img, title, column_labels, (images.shape[2] + 2) * scale, 2 * scale)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return Path(path)


def _with_header(img: Image.Image, title: str | None, labels: list[str] | None, cell: int, pad: int) -> Image.Image:
    """`img` below a white strip holding the title and one label centred over each column."""
    font = ImageFont.load_default(size=13)
    line = 18  # pixels per line of text
    lines = int(bool(title)) + int(bool(labels))
    out = Image.new(img.mode, (img.width, img.height + lines * line + 4), 255 if img.mode == "L" else (255, 255, 255))
    out.paste(img, (0, lines * line + 4))
    draw = ImageDraw.Draw(out)
    ink = 0 if img.mode == "L" else (0, 0, 0)
    y = 2
    if title:
        draw.text((pad + 2, y), title, fill=ink, font=font)
        y += line
    for k, label in enumerate(labels or []):
        text = _fit(draw, str(label), font, cell - 2)
        width = draw.textlength(text, font=font)
        draw.text((pad + k * cell + (cell - pad - width) / 2, y), text, fill=ink, font=font)
    return out


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> str:
    """`text`, shortened with an ellipsis until it fits in `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
