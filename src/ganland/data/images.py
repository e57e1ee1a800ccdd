"""Colour image datasets: CIFAR-10 (official binary archive) and any folder of images."""
from __future__ import annotations

import hashlib
import os
import tarfile
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..errors import ConfigError, DataError
from . import sources
from .base import DATASETS, ArrayDataset


def resize_uint8(x: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> (N, C, size, size) uint8, bilinear with antialiasing.

    Works through `chunk` images at a time so the float copy stays small.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError(f"image_size must be a positive number of pixels, got {size!r}")
    if tuple(x.shape[-2:]) == (size, size):
        return x
    out = torch.empty((len(x), x.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, len(x), chunk):
        part = F.interpolate(
            x[i : i + chunk].float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        out[i : i + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


# ---------------------------------------------------------------------------------------------
# CIFAR-10, binary version: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B,
# each plane 32x32 row-major), 10,000 records per batch file.
# ---------------------------------------------------------------------------------------------
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CIFAR10_RECORD = 1 + 3 * 32 * 32  # bytes per record
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-bin"  # what the archive extracts to
CIFAR10_SPLIT_FILES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
# Size and SHA-256 from TensorFlow Datasets, tensorflow/datasets
# tensorflow_datasets/url_checksums/cifar10.txt (commit 333639b37af6).
CIFAR10_REMOTE = sources.RemoteFile(
    name=CIFAR10_ARCHIVE,
    sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    size=170052171,
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
)


def parse_cifar10_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch -> images (N, 3, 32, 32) uint8, labels (N,) uint8."""
    if len(data) == 0 or len(data) % CIFAR10_RECORD:
        raise DataError(
            f"{where}: {len(data)} bytes is not a whole number of CIFAR-10 records "
            f"({CIFAR10_RECORD} bytes each: 1 label + 3072 pixels)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR10_RECORD)
    labels = records[:, 0].copy()
    if labels.max() >= len(CIFAR10_CLASSES):
        bad = int(np.argmax(labels >= len(CIFAR10_CLASSES)))
        raise DataError(f"{where}: record {bad} has label {labels[bad]}; CIFAR-10 labels are 0..9")
    images = records[:, 1:].reshape(-1, 3, 32, 32).copy()  # (N, 3, 32, 32): R, G, B planes
    return images, labels


def _read_cifar10_archive(archive: Path, names: tuple[str, ...]) -> list[tuple[bytes, str]]:
    """The batch files `names` read straight out of the tar.gz, in the order of `names`."""
    found: dict[str, tuple[bytes, str]] = {}
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:  # one pass in archive order: no seeking back through the gzip stream
                base = member.name.rsplit("/", 1)[-1]
                if base not in names or not member.isfile():
                    continue
                where = f"{archive}:{member.name}"
                if member.size % CIFAR10_RECORD or member.size == 0:
                    raise DataError(
                        f"{where}: {member.size} bytes is not a whole number of CIFAR-10 records "
                        f"({CIFAR10_RECORD} bytes each: 1 label + 3072 pixels)"
                    )
                found[base] = (tar.extractfile(member).read(), where)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{archive}: cannot read it as a tar.gz archive: {e}") from None
    missing = [n for n in names if n not in found]
    if missing:
        raise DataError(f"{archive}: the archive does not contain {', '.join(missing)}")
    return [found[n] for n in names]


def _cifar10_in(folder: Path, names: tuple[str, ...]) -> tuple[Optional[Path], list[str]]:
    """The folder of batch files for `names` (extracted: read fastest) or the archive inside
    `folder`, or None; what is missing."""
    for candidate in (folder / CIFAR10_FOLDER, folder):
        if all((candidate / n).is_file() for n in names):
            return candidate, []
    if (folder / CIFAR10_ARCHIVE).is_file():
        return folder / CIFAR10_ARCHIVE, []
    return None, [f"{CIFAR10_ARCHIVE} (or its extracted {CIFAR10_FOLDER}/ with {', '.join(names)})"]


def locate_cifar10(split: str, root: Optional[str], download: bool) -> Path:
    """The CIFAR-10 batch folder or archive: explicit root, cache, then download."""
    names = CIFAR10_SPLIT_FILES[split]
    fixes = [
        f"pass --set data.root=DIR, where DIR holds {CIFAR10_ARCHIVE} (the binary version, not the "
        f"python one) or its extracted {CIFAR10_FOLDER}/ folder"
    ]
    return sources.locate(
        "cifar10", split, root, download,
        find=lambda folder: _cifar10_in(folder, names),
        fetch=lambda cache, missing: sources.download(CIFAR10_REMOTE, cache),
        fixes=fixes,
    )


@DATASETS.register("cifar10")
def build_cifar10(
    split: str = "train",  # "train" (50,000 images) or "test" (10,000)
    root: Optional[str] = None,  # folder holding cifar-10-binary.tar.gz or cifar-10-batches-bin/; None: cache, download
    download: bool = True,  # fetch the archive into the cache (SHA-256 checked); False: never use the network
    image_size: Optional[int] = None,  # side in pixels to resize to once at load (e.g. 64); None: keep 32
) -> ArrayDataset:
    """CIFAR-10: 32x32 colour images, 10 classes (official binary archive)."""
    sources.check_split("cifar10", split)
    names = CIFAR10_SPLIT_FILES[split]
    location = locate_cifar10(split, root, download)
    if location.is_file():
        batches = _read_cifar10_archive(location, names)
    else:
        batches = [((location / n).read_bytes(), str(location / n)) for n in names]
    parts = [parse_cifar10_batch(data, where) for data, where in batches]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts]))  # (N, 3, 32, 32) uint8
    y = torch.from_numpy(np.concatenate([p[1] for p in parts]).astype(np.int64))
    if image_size is not None:
        x = resize_uint8(x, image_size)
    return ArrayDataset(name="cifar10", x=x, y=y, class_names=list(CIFAR10_CLASSES), plot="grid")


# ---------------------------------------------------------------------------------------------
# A folder of images
# ---------------------------------------------------------------------------------------------
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
ON_ERROR = ("warn", "raise")


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, sorted, skipping hidden files and folders."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in filenames if _is_image_name(Path(f)))
    return sorted(out)


def scan_image_folder(root: Path) -> tuple[list[Path], Optional[list[int]], Optional[list[str]]]:
    """(files, labels, class names): one class per sub-folder holding images (sorted by name),
    or, when no sub-folder holds any, the images directly in `root` without labels."""
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = [(p.name, _image_files(p)) for p in subfolders]
    per_class = [(name, files) for name, files in per_class if files]
    loose = sorted(p for p in root.iterdir() if p.is_file() and _is_image_name(p))
    if not per_class:
        return loose, None, None
    if loose:
        warnings.warn(
            f"{root}: {len(loose)} images lie directly in the folder beside the class sub-folders "
            f"{', '.join(n for n, _ in per_class)}; they have no class and are left out",
            stacklevel=3,
        )
    split_like = sorted({name for name, _ in per_class} & {"train", "test", "val", "valid", "validation"})
    if split_like:
        warnings.warn(
            f"{root}: sub-folders {', '.join(split_like)} are taken as classes, not splits; to use one "
            "as the dataset, point data.root at it (the test split is a held-out share, test_fraction)",
            stacklevel=3,
        )
    files = [f for _, fs in per_class for f in fs]
    labels = [k for k, (_, fs) in enumerate(per_class) for _ in fs]
    return files, labels, [name for name, _ in per_class]


def in_test_share(relative: str, test_fraction: float) -> bool:
    """Whether a file (by its path relative to root) belongs to the held-out test share.

    A hash of the path, not a shuffle of the list: the same file always lands in the same split,
    also after files are added or removed, so train and test never overlap across runs.
    """
    digest = hashlib.sha256(relative.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < test_fraction


def load_image(path: Path, image_size: int, channels: int) -> np.ndarray:
    """One image file -> uint8 (channels, image_size, image_size): shorter side resized to
    image_size, centre cropped; transparency composited onto white."""
    with Image.open(path) as img:
        # The header's size is checked before the pixels are decoded (PIL itself only warns up to
        # twice its limit and would allocate the whole image first).
        w, h = img.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and w * h > limit:
            raise DataError(f"image is {w}x{h} = {w * h} pixels, more than PIL.Image.MAX_IMAGE_PIXELS = {limit}; "
                            "not decoded (a damaged or hostile file?)")
        img.load()
        img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I;16") or img.mode == "I":  # 16-bit grayscale: scale, don't clip
        img = Image.fromarray((np.asarray(img, dtype=np.float64) / 257.0).clip(0, 255).round().astype(np.uint8))
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) / 2, (h - side) / 2
    img = img.resize(
        (image_size, image_size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)
    )
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)  # (C, S, S)


@DATASETS.register("image-folder")
def build_image_folder(
    split: str = "train",  # "train": all images outside the test share; "test": the test share
    root: Optional[str] = None,  # the folder (required); sub-folders are classes, else unlabelled
    image_size: Optional[int] = 64,  # side in pixels: shorter side resized to it, centre cropped; None: 64
    channels: int = 3,  # 3: RGB, 1: grayscale; every image is converted
    on_error: str = "warn",  # unreadable or empty files: "warn" skips each with a warning, "raise" fails
    test_fraction: float = 0.1,  # share of images held out as the test split; 0: no test split
) -> ArrayDataset:
    """Any folder of PNG/JPEG/BMP/WebP images, one class per sub-folder."""
    sources.check_split("image-folder", split)
    if root is None:
        raise DataError("image-folder needs a folder: pass --set data.root=DIR")
    if channels not in (1, 3):
        raise ConfigError(f"image-folder: channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if on_error not in ON_ERROR:
        raise ConfigError(f"image-folder: on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"image-folder: test_fraction must be in [0, 1), got {test_fraction!r}")
    image_size = 64 if image_size is None else image_size  # a folder has no native size
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ConfigError(f"image-folder: image_size must be a positive number of pixels, got {image_size!r}")
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DataError(f"image-folder: data.root {folder} is not a folder")

    files, labels, class_names = scan_image_folder(folder)
    if not files:
        raise DataError(f"image-folder: {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    keep = [in_test_share(f.relative_to(folder).as_posix(), test_fraction) == (split == "test") for f in files]
    chosen = [i for i, k in enumerate(keep) if k]
    if not chosen:
        raise DataError(
            f"image-folder: the {split} split of {folder} is empty ({len(files)} images, "
            f"test_fraction {test_fraction}); change test_fraction or add images"
        )

    # Decode in threads (PIL releases the GIL while decoding and resizing) straight into one array.
    x = np.empty((len(chosen), channels, image_size, image_size), dtype=np.uint8)

    def decode(slot: int) -> Optional[str]:
        try:
            x[slot] = load_image(files[chosen[slot]], image_size, channels)
            return None
        except Exception as e:  # any decoder failure is a property of that one file
            return f"{type(e).__name__}: {e}"

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        errors = list(pool.map(decode, range(len(chosen))))
    bad = [slot for slot, err in enumerate(errors) if err is not None]
    for slot in bad:
        message = f"{files[chosen[slot]]}: cannot read it as an image ({errors[slot]})"
        if on_error == "raise":
            raise DataError(message)
        warnings.warn(message + "; skipped", stacklevel=2)
    good = [slot for slot, err in enumerate(errors) if err is None]
    if not good:
        raise DataError(f"image-folder: none of the {len(chosen)} image files in {folder} ({split}) could be read")
    if bad:
        x = x[good]
    y = None
    if labels is not None:
        y = torch.tensor([labels[chosen[slot]] for slot in good], dtype=torch.int64)
    return ArrayDataset(name="image-folder", x=torch.from_numpy(x), y=y, class_names=class_names, plot="grid")
