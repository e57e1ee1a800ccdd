"""Broken and hostile data files met where a user meets them, in `ganland train` (docs/robustness.md):
one clear DataError naming the file and the problem, no run folder left behind, and the data
files themselves untouched. (The readers' own checks are tested in test_idx.py and
test_images.py.)"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganland
from ganland.cli import main
from ganland.data import idx
from ganland.errors import DataError

from conftest import write_fake_mnist  # tests/conftest.py (tests/ is on sys.path)

TINY = {"model.z_dim": 8, "model.options": {"g_width": 4, "d_width": 4}, "train.batch_size": 4,
        "train.progress": False, "train.heldout_batches": 1, "train.sample_every": 0}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def idx_bytes(dims: list[int], payload: bytes, magic: bytes = b"\x00\x00") -> bytes:
    return magic + bytes([0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


IMAGES, LABELS = (name + ".gz" for name in idx.SPLIT_FILES["train"])
IDX_DAMAGE = {  # which file, its new bytes, the problem the error must name
    "wrong-magic": (IMAGES, lambda: idx_bytes([4, 28, 28], bytes(4 * 784), magic=b"\x1f\x00"),
                    "not an IDX file: it starts with 0x1f 0x00"),
    "truncated": (IMAGES, lambda: gzip.compress(idx_bytes([256, 28, 28], bytes(1000))),
                  "truncated: header says 256x28x28 = 200704 bytes, file holds 1000 bytes"),
    "absurd-dimensions": (IMAGES, lambda: idx_bytes([2**31, 2**31, 2**31], bytes(100)),
                          "truncated: header says 2147483648x2147483648x2147483648 = "),
    "counts-disagree": (LABELS, lambda: gzip.compress(idx_bytes([255], bytes(255))),
                        "holds 256 images but .*train-labels-idx1-ubyte.gz holds 255 labels"),
    "label-out-of-range": (LABELS, lambda: idx_bytes([256], bytes(255) + b"\x0c"),
                           "train-labels-idx1-ubyte.gz: label 12 at index 255; labels must be 0..9"),
}


@pytest.mark.parametrize("damage", list(IDX_DAMAGE))
def test_broken_idx_files_stop_training_before_anything_is_written(tmp_path, damage, capsys):
    data = write_fake_mnist(tmp_path / "mnist")
    name, content, problem = IDX_DAMAGE[damage]
    (data / name).write_bytes(content())
    before = snapshot(data)
    run = tmp_path / "run"
    with pytest.raises(DataError, match=problem) as info:
        ganland.train({"data": {"name": "mnist", "root": str(data)}}, TINY, steps=2, out=str(run))
    assert str(data / name) in str(info.value)
    assert not run.exists() and snapshot(data) == before
    # The command line: one line on stderr, exit status 2, no traceback.
    args = ["train", "mnist-dcgan", "--set", f"data.root={data}", "--steps", "2", "--out", str(run)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganland: error: ") and str(data / name) in err and "Traceback" not in err
    assert not run.exists() and snapshot(data) == before


def test_cifar10_batch_with_a_wrong_record_size_stops_training(tmp_path):
    root = tmp_path / "cifar"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        records = rng.integers(0, 256, (2, 3073), dtype=np.uint8)
        records[:, 0] = 1
        (root / f"data_batch_{i}.bin").write_bytes(records.tobytes() + (b"\x00" * 3072 if i == 4 else b""))
    (root / "test_batch.bin").write_bytes(bytes(3073))
    before = snapshot(root)
    with pytest.raises(DataError, match=r"data_batch_4\.bin: 9218 bytes is not a whole number of CIFAR-10 records "
                                        r"\(3073 bytes each: 1 label \+ 3072 pixels\)"):
        ganland.train({"data": {"name": "cifar10", "root": str(root)}}, TINY, steps=2, out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists() and snapshot(root) == before


def test_image_folder_where_nothing_is_readable_stops_training(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_text("not a picture")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(root / "cut.png")
    (root / "cut.png").write_bytes((root / "cut.png").read_bytes()[:60])
    before = snapshot(root)
    overrides = {**TINY, "data.options": {"test_fraction": 0.0, "on_error": "raise"}}
    with pytest.raises(DataError, match=r"(cut|empty|text)\.(png|jpg): cannot read it as an image"):
        ganland.train({"data": {"name": "image-folder", "root": str(root), "image_size": 32}}, overrides, steps=2,
                      out=str(tmp_path / "run"))
    with pytest.warns(UserWarning, match="skipped"), \
            pytest.raises(DataError, match=r"none of the 3 image files in .*imgs \(train\) could be read"):
        ganland.train({"data": {"name": "image-folder", "root": str(root), "image_size": 32}},
                      {**TINY, "data.options": {"test_fraction": 0.0}}, steps=2, out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists() and snapshot(root) == before
