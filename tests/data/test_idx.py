"""IDX reading and writing, MNIST-family lookup order and downloads (all on synthetic files)."""
from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ganland.data import DATASETS, idx, sources
from ganland.data.idx import load_idx_pair, read_idx, write_idx
from ganland.errors import DataError

from .conftest import write_idx_split


def raw_idx(type_byte: int, dims: list[int], payload: bytes, magic: bytes = b"\x00\x00") -> bytes:
    return magic + bytes([type_byte, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def put(tmp_path: Path, name: str, data: bytes, compress: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# --- format ----------------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 28, 28), (2, 3, 4, 5)])
def test_round_trip(tmp_path, shape, compress):
    array = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    path = write_idx(tmp_path / "a.idx", array, gzip=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable  # torch.from_numpy needs no copy and gives no warning


def test_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "plain-name", array, gzip=True)), array)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "fake.gz", array, gzip=False)), array)


def test_header_layout_is_big_endian(tmp_path):
    path = put(tmp_path, "x", raw_idx(0x08, [2, 3], bytes(range(6))))
    np.testing.assert_array_equal(read_idx(path), np.arange(6, dtype=np.uint8).reshape(2, 3))


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "data, message",
    [
        (raw_idx(0x08, [2], b"ab", magic=b"\x01\x00"), "not an IDX file"),
        (raw_idx(0x0D, [2], b"abcdefgh"), r"unsupported IDX element type 0x0d \(32-bit float\)"),
        (raw_idx(0x08, [], b""), "0 dimensions"),
        (raw_idx(0x08, [1, 1, 1, 1, 1], b"a"), "5 dimensions"),
        (raw_idx(0x08, [3, 0], b""), "zero dimension"),
        (raw_idx(0x08, [10, 10], b"x" * 99), "truncated: header says 10x10 = 100 bytes, file holds 99 bytes"),
        (raw_idx(0x08, [10, 10], b"x" * 101), "trailing bytes: header says 10x10 = 100 bytes"),
        (b"\x00\x00\x08", "too short"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x05", "truncated"),
        (b"", "too short"),
    ],
)
def test_malformed_files_raise_data_error_naming_the_file(tmp_path, data, message, compress):
    path = put(tmp_path, "train-images-idx3-ubyte.gz", data, compress)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_truncated_message_matches_the_documented_form(tmp_path):
    path = put(tmp_path, "train-images-idx3-ubyte.gz", raw_idx(0x08, [60000, 28, 28], b"\0" * 1000), True)
    with pytest.raises(DataError, match="truncated: header says 60000x28x28 = 47040000 bytes, file holds 1000 bytes"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_absurd_dimensions_fail_fast_without_a_big_allocation(tmp_path, compress):
    path = put(tmp_path, "huge", raw_idx(0x08, [10**9, 10**9, 10**9], b"\x07" * 100), compress)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError, match="truncated: header says 1000000000x1000000000x1000000000"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 8 << 20  # bytes


def test_damaged_gzip_stream_is_a_data_error(tmp_path):
    good = gzip.compress(raw_idx(0x08, [50], bytes(50)))
    path = put(tmp_path, "cut.gz", good[: len(good) // 2])
    with pytest.raises(DataError, match="cut.gz"):
        read_idx(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "absent")
    with pytest.raises(DataError):
        read_idx(tmp_path)


def test_write_idx_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(DataError, match="uint8"):
        write_idx(tmp_path / "f", np.zeros(3, dtype=np.float32))
    with pytest.raises(DataError, match="1 to 4"):
        write_idx(tmp_path / "f", np.zeros((1,) * 5, dtype=np.uint8))


@st.composite
def idx_like(draw) -> bytes:
    """Byte strings that look like IDX files, valid or nearly so."""
    magic = draw(st.sampled_from([b"\x00\x00", b"\x00\x00", b"\x00\x01", b"\xff\x00"]))
    type_byte = draw(st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0D, 0x00, 0xFF]))
    dims = draw(st.lists(st.one_of(st.integers(0, 4), st.integers(0, 2**32 - 1)), max_size=6))
    header = magic + bytes([type_byte, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return header + draw(st.binary(max_size=80))


@st.composite
def damaged_gzip(draw) -> bytes:
    data = bytearray(gzip.compress(draw(idx_like())))
    position = draw(st.integers(0, len(data) - 1))
    data[position] ^= draw(st.integers(1, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@settings(max_examples=250, deadline=1000)
@given(st.one_of(st.binary(max_size=120), idx_like(), idx_like().map(gzip.compress), damaged_gzip()))
def test_any_bytes_give_an_array_or_a_data_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f"
        path.write_bytes(data)
        try:
            out = read_idx(path)
        except DataError as e:
            assert str(path) in str(e)
            return
        assert out.dtype == np.uint8 and 1 <= out.ndim <= 4


# --- image/label pairs -------------------------------------------------------------------------
def test_load_idx_pair_checks_shapes_counts_and_labels(tmp_path):
    images = write_idx(tmp_path / "img.gz", np.zeros((4, 2, 2), np.uint8))
    labels = write_idx(tmp_path / "lab.gz", np.array([0, 1, 2, 3], np.uint8))
    x, y = load_idx_pair(images, labels, n_classes=10)
    assert x.shape == (4, 2, 2) and y.tolist() == [0, 1, 2, 3]

    few = write_idx(tmp_path / "few.gz", np.array([0, 1, 2], np.uint8))
    with pytest.raises(DataError, match=r"img.gz holds 4 images but .*few.gz holds 3 labels"):
        load_idx_pair(images, few)
    with pytest.raises(DataError, match="3-D"):
        load_idx_pair(labels, labels)
    with pytest.raises(DataError, match="1-D"):
        load_idx_pair(images, images)
    with pytest.raises(DataError, match="label 3 at index 3; labels must be 0..2"):
        load_idx_pair(images, labels, n_classes=3)


# --- datasets and where their files are found ------------------------------------------------
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_builders_return_uint8_images_and_int64_labels(tmp_path, name):
    images, labels = write_idx_split(tmp_path / "root", "train", 20)
    write_idx_split(tmp_path / "root", "test", 6, seed=1)
    ds = DATASETS.get(name)(split="train", root=str(tmp_path / "root"))
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (20, 1, 28, 28)
    assert ds.y.dtype == torch.int64 and ds.y.tolist() == labels.tolist()
    assert torch.equal(ds.x[:, 0], torch.from_numpy(images))
    assert ds.plot == "grid" and ds.n_classes == 10 and ds.is_image
    assert len(DATASETS.get(name)(split="test", root=str(tmp_path / "root"))) == 6


def test_class_names():
    assert idx.MNIST.class_names == tuple("0123456789")
    assert idx.FASHION_MNIST.class_names == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )


def test_unknown_split_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="unknown split 'valid'"):
        DATASETS.get("mnist")(split="valid", root=str(tmp_path))


def test_uncompressed_names_are_accepted(tmp_path):
    write_idx_split(tmp_path, "test", 5, gzip=False)
    assert len(DATASETS.get("mnist")(split="test", root=str(tmp_path))) == 5


def test_image_size_resizes_once_keeping_uint8(tmp_path):
    folder = tmp_path / "root"
    folder.mkdir()
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.full((3, 28, 28), 77, np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3], np.uint8))
    ds = DATASETS.get("mnist")(split="test", root=str(folder), image_size=32)
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (3, 1, 32, 32)
    assert bool((ds.x == 77).all())


def test_labels_beyond_the_classes_are_rejected(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 12], np.uint8))
    with pytest.raises(DataError, match="label 12"):
        DATASETS.get("mnist")(split="test", root=str(tmp_path))


def test_explicit_root_wins_over_system_copy_and_cache(tmp_path, isolated_sources, monkeypatch):
    root_images, _ = write_idx_split(tmp_path / "root", "test", 4, seed=1)
    write_idx_split(tmp_path / "system", "test", 5, seed=2)
    write_idx_split(isolated_sources / "fashion-mnist", "test", 6, seed=3)
    monkeypatch.setitem(idx.SYSTEM_DIRS, "fashion-mnist", tmp_path / "system")
    ds = DATASETS.get("fashion-mnist")(split="test", root=str(tmp_path / "root"))
    assert torch.equal(ds.x[:, 0], torch.from_numpy(root_images))


def test_system_copy_comes_before_the_cache(tmp_path, isolated_sources, monkeypatch):
    write_idx_split(tmp_path / "system", "test", 5)
    write_idx_split(isolated_sources / "fashion-mnist", "test", 6)
    monkeypatch.setitem(idx.SYSTEM_DIRS, "fashion-mnist", tmp_path / "system")
    assert len(DATASETS.get("fashion-mnist")(split="test", download=False)) == 5
    # MNIST has no system copy: the same folder is not looked at for it.
    write_idx_split(isolated_sources / "mnist", "test", 7)
    assert len(DATASETS.get("mnist")(split="test", download=False)) == 7


def test_root_without_the_files_is_an_error_not_a_fallback(tmp_path, isolated_sources):
    write_idx_split(isolated_sources / "mnist", "train", 5)  # the cache would have them
    (tmp_path / "root").mkdir()
    idx.write_idx(tmp_path / "root" / "train-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8))
    with pytest.raises(DataError) as info:
        DATASETS.get("mnist")(split="train", root=str(tmp_path / "root"))
    message = str(info.value)
    assert str(tmp_path / "root") in message and "train-labels-idx1-ubyte.gz" in message
    assert "train-images-idx3-ubyte.gz" not in message  # that one is there
    with pytest.raises(DataError, match="not a folder"):
        DATASETS.get("mnist")(split="train", root=str(tmp_path / "nowhere"))


def test_cache_folder_follows_ganland_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAND_CACHE", str(tmp_path / "elsewhere"))
    assert sources.cache_dir("mnist") == tmp_path / "elsewhere" / "mnist"
    write_idx_split(tmp_path / "elsewhere" / "mnist", "train", 3)
    assert len(DATASETS.get("mnist")(split="train", download=False)) == 3


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("download", [False, True])
def test_nothing_anywhere_lists_every_way_out(isolated_sources, name, download):
    with pytest.raises(DataError) as info:
        DATASETS.get(name)(split="train", download=download)
    message = str(info.value)
    assert "--set data.root=DIR" in message
    assert str(isolated_sources / name) in message
    assert ("apt-get install dataset-fashion-mnist" in message) == (name == "fashion-mnist")
    assert "network" in message
    assert ("network disabled in tests" in message) == download  # the mirrors' failures are shown
    cache = isolated_sources / name
    assert not cache.exists() or not any(cache.iterdir())


def serve_from(folder: Path, calls: list[str]):
    """A fake fetch_url that copies `folder / basename(url)`."""

    def fetch(url, out, timeout):
        calls.append(url)
        out.write((folder / url.rsplit("/", 1)[-1]).read_bytes())

    return fetch


def test_download_fills_the_cache_when_hashes_match(tmp_path, isolated_sources, monkeypatch):
    server = tmp_path / "server"
    images, labels = write_idx_split(server, "test", 8)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        data = (server / name).read_bytes()
        fake = sources.RemoteFile(name, hashlib.sha256(data).hexdigest(), len(data), ("https://a/", "https://b/"))
        monkeypatch.setitem(idx.MNIST.files, name, fake)
    calls: list[str] = []
    monkeypatch.setattr(sources, "fetch_url", serve_from(server, calls))
    ds = DATASETS.get("mnist")(split="test")
    assert calls == ["https://a/t10k-images-idx3-ubyte.gz", "https://a/t10k-labels-idx1-ubyte.gz"]
    assert torch.equal(ds.x[:, 0], torch.from_numpy(images))
    assert sorted(p.name for p in (isolated_sources / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
    ]
    # Second time: read from the cache, no network.
    monkeypatch.setattr(sources, "fetch_url", serve_from(tmp_path / "empty", calls := []))
    assert len(DATASETS.get("mnist")(split="test")) == 8 and calls == []


def test_download_with_a_wrong_hash_leaves_nothing_in_the_cache(tmp_path, isolated_sources, monkeypatch):
    server = tmp_path / "server"
    write_idx_split(server, "test", 8)  # not the official files: the published hashes cannot match
    calls: list[str] = []
    monkeypatch.setattr(sources, "fetch_url", serve_from(server, calls))
    with pytest.raises(DataError, match="SHA-256 .* does not match the published 8d422c7b") as info:
        DATASETS.get("mnist")(split="test")
    assert len(calls) == len(idx.MNIST.files["t10k-images-idx3-ubyte.gz"].mirrors)  # every mirror tried
    assert "--set data.root=DIR" in str(info.value)
    assert list((isolated_sources / "mnist").iterdir()) == []  # no file, no .part left behind


def test_official_hashes_are_recorded_for_every_file():
    for spec in (idx.MNIST, idx.FASHION_MNIST):
        assert sorted(spec.files) == sorted(idx.ALL_FILES)
        for remote in spec.files.values():
            assert len(remote.sha256) == 64 and int(remote.sha256, 16) >= 0 and remote.size > 0
