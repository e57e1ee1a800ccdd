"""CIFAR-10 binary batches (synthetic archive), image folders and the uint8 resize."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from ganland.data import DATASETS, images, sources
from ganland.data.images import CIFAR10_RECORD, resize_uint8
from ganland.errors import ConfigError, DataError


# --- resize ---------------------------------------------------------------------------------
def test_resize_keeps_uint8_and_constant_images():
    x = torch.full((5, 3, 28, 28), 200, dtype=torch.uint8)
    out = resize_uint8(x, 64, chunk=2)
    assert out.dtype == torch.uint8 and out.shape == (5, 3, 64, 64) and bool((out == 200).all())


def test_resize_down_is_antialiased():
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 255).to(torch.uint8)
    out = resize_uint8(checker.expand(1, 1, 32, 32), 8)
    assert int(out.min()) >= 120 and int(out.max()) <= 135  # an average, not picked pixels


def test_resize_rejects_a_bad_size():
    with pytest.raises(ConfigError, match="image_size"):
        resize_uint8(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 0)


# --- CIFAR-10 ----------------------------------------------------------------------------------
def cifar_records(n: int, seed: int, label_offset: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    records = rng.integers(0, 256, (n, CIFAR10_RECORD), dtype=np.uint8)
    records[:, 0] = (np.arange(n) + label_offset) % 10
    return records.tobytes()


def cifar_batches(per_batch: int = 2, n_test: int = 3) -> dict[str, bytes]:
    batches = {f"data_batch_{i}.bin": cifar_records(per_batch, seed=i, label_offset=i) for i in range(1, 6)}
    batches["test_batch.bin"] = cifar_records(n_test, seed=9)
    return batches


def write_cifar_archive(path: Path, batches: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name in ["batches.meta.txt", *reversed(list(batches))]:  # any member order is fine
            data = batches.get(name, b"airplane\n")
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def expected_cifar(batches: dict[str, bytes], names) -> tuple[np.ndarray, np.ndarray]:
    records = np.frombuffer(b"".join(batches[n] for n in names), np.uint8).reshape(-1, CIFAR10_RECORD).copy()
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


@pytest.mark.parametrize("layout", ["archive", "extracted", "flat"])
def test_cifar10_reads_the_binary_batches(tmp_path, layout):
    batches = cifar_batches()
    root = tmp_path / "root"
    if layout == "archive":
        write_cifar_archive(root / "cifar-10-binary.tar.gz", batches)
    else:
        folder = root / "cifar-10-batches-bin" if layout == "extracted" else root
        folder.mkdir(parents=True)
        for name, data in batches.items():
            (folder / name).write_bytes(data)
    train = DATASETS.get("cifar10")(split="train", root=str(root))
    x, y = expected_cifar(batches, images.CIFAR10_SPLIT_FILES["train"])
    assert train.x.dtype == torch.uint8 and train.x.shape == (10, 3, 32, 32)
    assert train.y.dtype == torch.int64 and train.y.tolist() == y.tolist()
    assert torch.equal(train.x, torch.from_numpy(x))
    assert train.class_names[0] == "airplane" and train.class_names[9] == "truck" and train.plot == "grid"
    test = DATASETS.get("cifar10")(split="test", root=str(root), image_size=16)
    assert test.x.shape == (3, 3, 16, 16) and test.x.dtype == torch.uint8


def test_cifar10_pixel_layout_is_r_then_g_then_b_planes_row_major(tmp_path):
    r, g, b = np.full(1024, 10, np.uint8), np.arange(1024, dtype=np.uint16) % 256, np.full(1024, 30, np.uint8)
    record = bytes([7]) + r.tobytes() + g.astype(np.uint8).tobytes() + b.tobytes()
    (tmp_path / "test_batch.bin").write_bytes(record)
    ds = DATASETS.get("cifar10")(split="test", root=str(tmp_path))
    assert ds.y.tolist() == [7]
    assert bool((ds.x[0, 0] == 10).all()) and bool((ds.x[0, 2] == 30).all())
    assert ds.x[0, 1, 0, 5] == 5 and ds.x[0, 1, 1, 0] == 32  # row-major: pixel (1, 0) is byte 32


def test_cifar10_wrong_record_size(tmp_path):
    batches = cifar_batches()
    batches["data_batch_3.bin"] += b"\x00" * 100
    write_cifar_archive(tmp_path / "cifar-10-binary.tar.gz", batches)
    with pytest.raises(DataError, match=r"data_batch_3.bin: 6246 bytes is not a whole number .*3073 bytes"):
        DATASETS.get("cifar10")(split="train", root=str(tmp_path))
    (tmp_path / "test_batch.bin").write_bytes(b"\x01" * 3000)
    with pytest.raises(DataError, match="test_batch.bin: 3000 bytes"):
        DATASETS.get("cifar10")(split="test", root=str(tmp_path))


def test_cifar10_label_out_of_range(tmp_path):
    (tmp_path / "test_batch.bin").write_bytes(cifar_records(2, 0) + bytes([10]) + bytes(3072))
    with pytest.raises(DataError, match="test_batch.bin: record 2 has label 10"):
        DATASETS.get("cifar10")(split="test", root=str(tmp_path))


def test_cifar10_archive_without_a_batch_or_damaged(tmp_path):
    batches = cifar_batches()
    del batches["data_batch_5.bin"]
    write_cifar_archive(tmp_path / "a" / "cifar-10-binary.tar.gz", batches)
    with pytest.raises(DataError, match="does not contain data_batch_5.bin"):
        DATASETS.get("cifar10")(split="train", root=str(tmp_path / "a"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b not really")
    with pytest.raises(DataError, match="cannot read it as a tar.gz"):
        DATASETS.get("cifar10")(split="test", root=str(tmp_path / "b"))


def test_cifar10_lookup_root_cache_and_messages(tmp_path, isolated_sources):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"data.root .*empty does not hold cifar-10-binary.tar.gz"):
        DATASETS.get("cifar10")(split="train", root=str(tmp_path / "empty"))
    with pytest.raises(DataError) as info:
        DATASETS.get("cifar10")(split="train", download=False)
    assert "--set data.root=DIR" in str(info.value) and str(isolated_sources / "cifar10") in str(info.value)
    write_cifar_archive(isolated_sources / "cifar10" / "cifar-10-binary.tar.gz", cifar_batches())
    assert len(DATASETS.get("cifar10")(split="train", download=False)) == 10


def test_cifar10_download_checks_the_hash(tmp_path, isolated_sources, monkeypatch):
    archive = write_cifar_archive(tmp_path / "server" / "cifar-10-binary.tar.gz", cifar_batches())
    monkeypatch.setattr(sources, "fetch_url", lambda url, out, timeout: out.write(archive.read_bytes()))
    with pytest.raises(DataError, match="does not match the published c4a38c50"):
        DATASETS.get("cifar10")(split="test")
    assert list((isolated_sources / "cifar10").iterdir()) == []
    data = archive.read_bytes()
    fake = sources.RemoteFile(archive.name, hashlib.sha256(data).hexdigest(), len(data), ("https://x/",))
    monkeypatch.setattr(images, "CIFAR10_REMOTE", fake)
    assert len(DATASETS.get("cifar10")(split="test")) == 3
    assert (isolated_sources / "cifar10" / "cifar-10-binary.tar.gz").is_file()


# --- image folders -------------------------------------------------------------------------------
def solid(mode: str, size: tuple[int, int], colour) -> Image.Image:
    if mode == "P":
        return Image.new("RGB", size, colour).convert("P")
    return Image.new(mode, size, colour)


def make_class_folder(root: Path) -> Path:
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    solid("RGB", (40, 30), (255, 0, 0)).save(root / "cats" / "a.png")
    solid("L", (20, 50), 128).save(root / "cats" / "b.jpg", quality=95)
    solid("RGBA", (33, 33), (0, 0, 255, 0)).save(root / "dogs" / "c.png")  # fully transparent
    solid("P", (64, 48), (0, 255, 0)).save(root / "dogs" / "d.png")
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_classes_modes_and_sizes(tmp_path):
    root = make_class_folder(tmp_path / "imgs")
    ds = DATASETS.get("image-folder")(root=str(root), image_size=16, test_fraction=0.0)
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (4, 3, 16, 16)
    assert ds.class_names == ["cats", "dogs"] and ds.y.tolist() == [0, 0, 1, 1] and ds.plot == "grid"
    pixel = lambda i: ds.x[i, :, 8, 8].tolist()  # noqa: E731
    assert pixel(0) == [255, 0, 0]
    assert all(abs(v - 128) <= 2 for v in pixel(1))  # gray JPEG -> RGB
    assert pixel(2) == [255, 255, 255]  # transparency over white
    assert pixel(3) == [0, 255, 0]
    gray = DATASETS.get("image-folder")(root=str(root), image_size=8, channels=1, test_fraction=0.0)
    assert gray.x.shape == (4, 1, 8, 8) and abs(int(gray.x[0, 0, 4, 4]) - 76) <= 1  # luma of red


def test_image_folder_centre_crop(tmp_path):
    img = np.zeros((10, 30), np.uint8)
    img[:, 10:20] = 255  # only the middle square is white
    Image.fromarray(img).save(tmp_path / "wide.png")
    ds = DATASETS.get("image-folder")(root=str(tmp_path), image_size=10, channels=1, test_fraction=0.0)
    assert ds.y is None and ds.class_names is None and ds.n_classes == 0
    assert bool((ds.x == 255).all())


@pytest.mark.parametrize("bad", ["broken.png", "empty.jpg"])
def test_image_folder_unreadable_files_warn_or_raise(tmp_path, bad):
    root = make_class_folder(tmp_path / "imgs")
    (root / "dogs" / bad).write_bytes(b"" if bad.startswith("empty") else b"\x89PNG garbage")
    with pytest.warns(UserWarning, match=bad):
        ds = DATASETS.get("image-folder")(root=str(root), image_size=8, test_fraction=0.0)
    assert len(ds) == 4 and ds.y.tolist() == [0, 0, 1, 1]
    with pytest.raises(DataError, match=bad):
        DATASETS.get("image-folder")(root=str(root), image_size=8, test_fraction=0.0, on_error="raise")


def test_image_folder_empty_or_nothing_readable(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        DATASETS.get("image-folder")(root=str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"nope")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="none of the 1 image files"):
        DATASETS.get("image-folder")(root=str(tmp_path / "bad"), test_fraction=0.0)
    with pytest.raises(DataError, match="data.root"):
        DATASETS.get("image-folder")()


def test_image_folder_train_and_test_never_overlap(tmp_path):
    for i in range(40):  # each image a distinct gray level, so samples identify their file
        Image.new("L", (6, 6), 5 * i).save(tmp_path / f"{i:02d}.png")
    opts = dict(root=str(tmp_path), image_size=4, channels=1, test_fraction=0.3)
    train = DATASETS.get("image-folder")(split="train", **opts)
    test = DATASETS.get("image-folder")(split="test", **opts)
    train_ids, test_ids = set(train.x[:, 0, 0, 0].tolist()), set(test.x[:, 0, 0, 0].tolist())
    assert train_ids.isdisjoint(test_ids) and len(train_ids | test_ids) == 40
    assert 4 <= len(test_ids) <= 20
    again = DATASETS.get("image-folder")(split="test", **opts)
    assert torch.equal(again.x, test.x)  # deterministic


def test_image_folder_options_are_checked(tmp_path):
    build = DATASETS.get("image-folder")
    with pytest.raises(ConfigError, match="channels"):
        build(root=str(tmp_path), channels=4)
    with pytest.raises(ConfigError, match="on_error"):
        build(root=str(tmp_path), on_error="ignore")
    with pytest.raises(ConfigError, match="test_fraction"):
        build(root=str(tmp_path), test_fraction=1.0)
    with pytest.raises(DataError, match="unknown split"):
        build(split="val", root=str(tmp_path))
    Image.new("L", (4, 4)).save(tmp_path / "one.png")
    with pytest.raises(DataError, match="test split .* is empty"):
        build(split="test", root=str(tmp_path), test_fraction=0.0)


def test_image_folder_warns_when_sub_folders_look_like_splits(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        Image.new("L", (4, 4)).save(tmp_path / split / "a.png")
    with pytest.warns(UserWarning, match="sub-folders test, train are taken as classes"):
        ds = DATASETS.get("image-folder")(root=str(tmp_path), image_size=4, test_fraction=0.0)
    assert ds.class_names == ["test", "train"]


def test_image_folder_ignores_loose_files_beside_class_folders(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "a" / "x.png")
    Image.new("L", (4, 4)).save(tmp_path / "loose.png")
    with pytest.warns(UserWarning, match="1 images lie directly in the folder"):
        ds = DATASETS.get("image-folder")(root=str(tmp_path), image_size=4, test_fraction=0.0)
    assert len(ds) == 1 and ds.y.tolist() == [0]


def test_image_folder_image_size_none_means_64(tmp_path):
    Image.new("RGB", (100, 80)).save(tmp_path / "a.png")
    ds = DATASETS.get("image-folder")(root=str(tmp_path), image_size=None, test_fraction=0.0)
    assert ds.x.shape == (1, 3, 64, 64)


def test_image_folder_converts_every_other_mode(tmp_path):
    """Mixed modes in one folder: 16-bit grayscale, 1-bit, CMYK, gray with alpha; all become RGB."""
    Image.fromarray(np.full((8, 8), 257 * 100, np.uint16)).save(tmp_path / "a16.png")  # 16-bit: scaled, not clipped
    Image.new("1", (8, 8), 1).save(tmp_path / "b1.png")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)  # red in ink
    Image.new("LA", (8, 8), (0, 0)).save(tmp_path / "d.png")  # transparent: white
    ds = DATASETS.get("image-folder")(root=str(tmp_path), image_size=4, test_fraction=0.0)
    assert ds.x.shape == (4, 3, 4, 4) and ds.x.dtype == torch.uint8
    pixel = lambda i: ds.x[i, :, 2, 2].tolist()  # noqa: E731
    assert pixel(0) == [100, 100, 100] and pixel(1) == [255, 255, 255] and pixel(3) == [255, 255, 255]
    red = pixel(2)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's own, from Image.open
@pytest.mark.parametrize("on_error", ["warn", "raise"])
def test_image_folder_refuses_images_over_the_pixel_limit_before_decoding(tmp_path, monkeypatch, on_error):
    Image.new("L", (40, 40), 9).save(tmp_path / "big.png")  # 1600 pixels
    Image.new("L", (20, 20), 9).save(tmp_path / "small.png")  # 400 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL itself would only warn below 2x its limit
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or real_load(self))
    build = DATASETS.get("image-folder")
    message = r"big\.png: cannot read it as an image \(DataError: image is 40x40 = 1600 pixels, more than " \
              r"PIL\.Image\.MAX_IMAGE_PIXELS = 1000; not decoded"
    if on_error == "raise":
        with pytest.raises(DataError, match=message):
            build(root=str(tmp_path), image_size=4, test_fraction=0.0, on_error="raise")
    else:
        with pytest.warns(UserWarning, match=message + r".*; skipped"):
            ds = build(root=str(tmp_path), image_size=4, test_fraction=0.0)
        assert len(ds) == 1
    assert (40, 40) not in decoded  # the big one's pixels were never decoded


def test_image_folder_truncated_file_is_skipped_or_fails(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])  # header intact, pixels cut off
    with pytest.warns(UserWarning, match=r"cut\.png: cannot read it as an image .*; skipped"):
        ds = DATASETS.get("image-folder")(root=str(tmp_path), image_size=8, test_fraction=0.0)
    assert len(ds) == 1
    with pytest.raises(DataError, match=r"cut\.png: cannot read it as an image"):
        DATASETS.get("image-folder")(root=str(tmp_path), image_size=8, test_fraction=0.0, on_error="raise")
