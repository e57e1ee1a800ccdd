"""MNIST-family datasets in the IDX format, and where their files are found.

IDX (LeCun's format for MNIST): two zero bytes, an element-type byte, the number of
dimensions, then each dimension as a big-endian uint32, then the elements in row-major order.
Only unsigned bytes (type 0x08) are read: every MNIST-family image and label file uses them.
"""
from __future__ import annotations

import gzip as gzip_module
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DataError
from . import sources
from .base import DATASETS, ArrayDataset
from .images import resize_uint8

IDX_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "16-bit integer",
    0x0C: "32-bit integer",
    0x0D: "32-bit float",
    0x0E: "64-bit float",
}
_GZIP_MAGIC = b"\x1f\x8b"
_READ_BLOCK = 1 << 20  # bytes decompressed per read, so memory grows with the data actually present


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzip-compressed or raw, told apart by its first bytes) as a uint8 array.

    The header's claimed size is checked against the bytes actually present before anything of
    that size is allocated. Every problem raises a DataError that names the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            compressed = f.read(2) == _GZIP_MAGIC
            f.seek(0)
            if not compressed:
                return _parse_idx(f, path, available=os.fstat(f.fileno()).st_size)
            with gzip_module.GzipFile(fileobj=f, mode="rb") as stream:
                return _parse_idx(stream, path, available=None)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an IDX file") from None
    except (OSError, EOFError, zlib.error) as e:  # unreadable file or a damaged gzip stream
        raise DataError(f"{path}: cannot read it: {e}") from None


def _parse_idx(stream: BinaryIO, path: Path, available: Optional[int]) -> np.ndarray:
    """Header and payload of an IDX stream. `available`: bytes in a raw file; None for gzip."""
    header = _read_up_to(stream, 4)
    if len(header) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(header)} bytes)")
    if header[:2] != b"\x00\x00":
        raise DataError(
            f"{path}: not an IDX file: it starts with 0x{header[0]:02x} 0x{header[1]:02x}, "
            "an IDX file starts with 0x00 0x00"
        )
    type_byte, ndim = header[2], header[3]
    if type_byte != 0x08:
        kind = IDX_TYPE_NAMES.get(type_byte, "unknown")
        raise DataError(
            f"{path}: unsupported IDX element type 0x{type_byte:02x} ({kind}); "
            "ganland reads only 0x08 (unsigned byte)"
        )
    if not 1 <= ndim <= 4:
        raise DataError(f"{path}: IDX header says {ndim} dimensions; expected 1 to 4")
    dims_raw = _read_up_to(stream, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(f"{path}: truncated: the header announces {ndim} dimensions but ends early")
    dims = struct.unpack(f">{ndim}I", dims_raw)
    if 0 in dims:
        raise DataError(f"{path}: IDX header has a zero dimension ({'x'.join(map(str, dims))})")

    # Compare the claimed size with what is there before allocating anything of that size.
    expected = math.prod(dims)
    claim = f"header says {'x'.join(map(str, dims))} = {expected} bytes"
    if available is not None:  # raw file: its size is known
        held = available - 4 - 4 * ndim
        if held != expected:
            problem = "truncated" if held < expected else "trailing bytes"
            raise DataError(f"{path}: {problem}: {claim}, file holds {held} bytes")
        data = np.empty(expected, dtype=np.uint8)
        if stream.readinto(memoryview(data)) != expected:
            raise DataError(f"{path}: the file changed while it was read")
    else:  # gzip: read at most one byte more than claimed, block by block
        buf = bytearray()
        while len(buf) <= expected:
            block = stream.read(min(_READ_BLOCK, expected + 1 - len(buf)))
            if not block:
                break
            buf += block
        if len(buf) < expected:
            raise DataError(f"{path}: truncated: {claim}, file holds {len(buf)} bytes (uncompressed)")
        if len(buf) > expected:
            raise DataError(f"{path}: trailing bytes: {claim}, file holds more (uncompressed)")
        data = np.frombuffer(buf, dtype=np.uint8)
    return data.reshape(dims)


def _read_up_to(stream: BinaryIO, n: int) -> bytes:
    """Up to n bytes (fewer only at the end of the stream)."""
    out = b""
    while len(out) < n:
        block = stream.read(n - len(out))
        if not block:
            break
        out += block
    return out


def write_idx(path: str | os.PathLike, array: np.ndarray, gzip: bool = True) -> Path:
    """Write a uint8 array of 1 to 4 dimensions as an IDX file (gzip-compressed unless gzip=False)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise DataError(f"{path}: write_idx writes uint8 arrays only, got {array.dtype}")
    if not 1 <= array.ndim <= 4:
        raise DataError(f"{path}: write_idx writes 1 to 4 dimensions, got {array.ndim}")
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array).tobytes()
    path = Path(path)
    if gzip:
        payload = gzip_module.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path


def load_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike, n_classes: Optional[int] = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) uint8 and labels (N,) uint8 from two IDX files that belong together.

    n_classes: when given, every label must be below it (None: any byte value is a label).
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: images must be 3-D (N, H, W), got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: labels must be 1-D (N,), got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            "the two files do not belong together"
        )
    if n_classes is not None and labels.max() >= n_classes:
        bad = int(np.argmax(labels >= n_classes))
        raise DataError(
            f"{labels_path}: label {labels[bad]} at index {bad}; labels must be 0..{n_classes - 1}"
        )
    return images, labels


# ---------------------------------------------------------------------------------------------
# Where the files are found
# ---------------------------------------------------------------------------------------------
SPLIT_FILES = {  # split -> (images, labels) file names without ".gz"
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILES = tuple(name + ".gz" for pair in SPLIT_FILES.values() for name in pair)

# System-wide copies, looked at after an explicit root and before the cache; tests replace them.
# Debian's dataset-fashion-mnist re-compresses the files, so they are used without a hash check.
SYSTEM_DIRS: dict[str, Path] = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
APT_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}


@dataclass(frozen=True)
class IdxSpec:
    """One MNIST-family dataset: its name, classes and published files."""

    name: str
    class_names: tuple[str, ...]
    files: dict[str, sources.RemoteFile]  # keyed by file name (with .gz)
    feature_net: str  # the bundled feature network its images are judged with (ganland.metrics.cnn)


def _remote(mirrors: tuple[str, ...], hashes: dict[str, tuple[int, str]]) -> dict[str, sources.RemoteFile]:
    return {name: sources.RemoteFile(name, sha, size, mirrors) for name, (size, sha) in hashes.items()}


MNIST = IdxSpec(
    name="mnist",
    feature_net="mnist-cnn",
    class_names=tuple(str(d) for d in range(10)),
    files=_remote(
        mirrors=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        # Sizes and SHA-256 from TensorFlow Datasets, tensorflow/datasets
        # tensorflow_datasets/url_checksums/mnist.txt (commit 31f1255e57e5).
        hashes={
            "train-images-idx3-ubyte.gz": (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            "train-labels-idx1-ubyte.gz": (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            "t10k-images-idx3-ubyte.gz": (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            "t10k-labels-idx1-ubyte.gz": (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        },
    ),
)

FASHION_MNIST = IdxSpec(
    name="fashion-mnist",
    feature_net="fashion-mnist-cnn",
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    files=_remote(
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        # Sizes and SHA-256 from TensorFlow Datasets, tensorflow/datasets
        # tensorflow_datasets/url_checksums/fashion_mnist.txt (commit 333639b37af6).
        hashes={
            "train-images-idx3-ubyte.gz": (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            "train-labels-idx1-ubyte.gz": (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            "t10k-images-idx3-ubyte.gz": (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            "t10k-labels-idx1-ubyte.gz": (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
        },
    ),
)


def find_in(folder: Path, stems: Sequence[str]) -> tuple[Optional[tuple[Path, ...]], list[str]]:
    """Files for `stems` in `folder` (name.gz preferred, then name), or None; the .gz names missing."""
    found, missing = [], []
    for stem in stems:
        hit = next((folder / n for n in (stem + ".gz", stem) if (folder / n).is_file()), None)
        if hit is None:
            missing.append(stem + ".gz")
        else:
            found.append(hit)
    return (None if missing else tuple(found)), missing


def locate_idx_files(spec: IdxSpec, split: str, root: Optional[str], download: bool) -> tuple[Path, Path]:
    """(images, labels) paths of one split: explicit root, system copy, cache, then download."""

    def fetch(cache: Path, missing: list[str]) -> None:
        for name in missing:
            sources.download(spec.files[name], cache)

    fixes = [f"pass --set data.root=DIR, where DIR holds {', '.join(ALL_FILES)} (gzip or not)"]
    if spec.name in APT_PACKAGES:
        fixes.append(f"apt-get install {APT_PACKAGES[spec.name]} (it puts them in {SYSTEM_DIRS[spec.name]}/)")
    system = [SYSTEM_DIRS[spec.name]] if spec.name in SYSTEM_DIRS else []
    find = lambda folder: find_in(folder, SPLIT_FILES[split])  # noqa: E731
    images, labels = sources.locate(spec.name, split, root, download, find, fetch, fixes, system)
    return images, labels


def first_per_class(labels: np.ndarray, n: int, n_classes: int, dataset: str) -> np.ndarray:
    """Indices of the first `n` samples of each class, in file order (a fixed small subset)."""
    if n < 1:
        raise ConfigError(f"data.options.per_class={n}: give a number of images per class of at least 1 (or null "
                          "for the whole split)")
    keep = np.concatenate([np.flatnonzero(labels == k)[:n] for k in range(n_classes)])
    short = [k for k in range(n_classes) if (labels == k).sum() < n]
    if short:
        raise ConfigError(f"data.options.per_class={n}: {dataset}'s training split has fewer images of class "
                          f"{short[0]}; give at most {min(int((labels == k).sum()) for k in range(n_classes))}")
    return np.sort(keep)


def load_idx_dataset(
    spec: IdxSpec, split: str, root: Optional[str], download: bool, image_size: Optional[int],
    per_class: Optional[int] = None,
) -> ArrayDataset:
    """One split of an MNIST-family dataset: x uint8 (N, 1, H, W), y int64 (N,). `per_class`: keep
    only the first that many images of each class of the training split (small-data training; the
    test split stays whole, so scores keep their reference)."""
    sources.check_split(spec.name, split)
    images_path, labels_path = locate_idx_files(spec, split, root, download)
    images, labels = load_idx_pair(images_path, labels_path, n_classes=len(spec.class_names))
    if per_class is not None and split == "train":
        keep = first_per_class(labels, per_class, len(spec.class_names), spec.name)
        images, labels = images[keep], labels[keep]
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, H, W) uint8
    if image_size is not None:
        x = resize_uint8(x, image_size)  # (N, 1, S, S) uint8
    y = torch.from_numpy(labels.astype(np.int64))
    return ArrayDataset(name=spec.name, x=x, y=y, class_names=list(spec.class_names), plot="grid",
                        feature_net=spec.feature_net)


@DATASETS.register("mnist")
def build_mnist(
    split: str = "train",  # "train" (60,000 digits) or "test" (10,000)
    root: Optional[str] = None,  # folder holding the four IDX files; None: system copy, cache, download
    download: bool = True,  # fetch missing files into the cache (SHA-256 checked); False: never use the network
    image_size: Optional[int] = None,  # side in pixels to resize to once at load (e.g. 32, 64); None: keep 28
    per_class: Optional[int] = None,  # train on the first N images of each class only (small data); None: all
) -> ArrayDataset:
    """MNIST handwritten digits: 28x28 grayscale, 10 classes."""
    return load_idx_dataset(MNIST, split, root, download, image_size, per_class)


@DATASETS.register("fashion-mnist")
def build_fashion_mnist(
    split: str = "train",  # "train" (60,000 images) or "test" (10,000)
    root: Optional[str] = None,  # folder holding the four IDX files; None: Debian copy, cache, download
    download: bool = True,  # fetch missing files into the cache (SHA-256 checked); False: never use the network
    image_size: Optional[int] = None,  # side in pixels to resize to once at load (e.g. 32, 64); None: keep 28
    per_class: Optional[int] = None,  # train on the first N images of each class only (small data); None: all
) -> ArrayDataset:
    """Fashion-MNIST (Zalando) clothing images: 28x28 grayscale, 10 classes."""
    return load_idx_dataset(FASHION_MNIST, split, root, download, image_size, per_class)
