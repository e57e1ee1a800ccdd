"""The bundled feature networks fashion-mnist-cnn and mnist-cnn: loading, hash checks, outputs."""
from __future__ import annotations

import hashlib
import json
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import ganland.metrics  # noqa: F401  (the import that registers the nets)
from ganland.errors import CheckpointError, ConfigError
from ganland.metrics import cnn
from ganland.data.idx import FASHION_MNIST, MNIST
from ganland.metrics.features import FEATURE_NETS

NETS = ["fashion-mnist-cnn", "mnist-cnn"]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def nets():
    return {name: FEATURE_NETS.get(name)() for name in NETS}


def random_images(n: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, 28, 28): half noise, half sparse bright strokes on black (digit-like statistics)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    x[n // 2:] = np.where(rng.random((n - n // 2, 28, 28)) < 0.8, 0, x[n // 2:])
    return x


# ---------------------------------------------------------------------------------------------
# Registration and hashes
# ---------------------------------------------------------------------------------------------
def test_registered_through_ganland_metrics():
    for name in NETS:
        assert name in FEATURE_NETS
    assert {MNIST.feature_net, FASHION_MNIST.feature_net} <= set(FEATURE_NETS.names())  # what the datasets name


@pytest.mark.parametrize("name", NETS)
def test_bundled_net_loads_with_its_hash(name, nets):
    ext = nets[name]
    path = cnn.bundled_path(name)
    assert path.is_file()
    assert ext.sha256 == cnn.BUNDLED_SHA256[name] == sha256(path)
    assert ext.name == name
    assert (ext.feature_dim, ext.n_classes, len(ext.class_names)) == (128, 10, 10)
    assert not ext.module.training
    assert not any(p.requires_grad for p in ext.module.parameters())


def test_the_two_nets_differ(nets):
    assert nets["mnist-cnn"].sha256 != nets["fashion-mnist-cnn"].sha256
    assert nets["fashion-mnist-cnn"].class_names[1] == "Trouser"
    assert nets["mnist-cnn"].class_names == [str(d) for d in range(10)]


BUNDLED = {name: cnn.bundled_path(name) for name in NETS}  # taken before any test moves WEIGHTS_DIR


def tampered_copy(name: str, folder: Path) -> Path:
    """A copy of the bundled file with one bit changed: in classifier.bias[0], a relative change of 2^-7."""
    folder.mkdir(parents=True, exist_ok=True)
    data = bytearray(BUNDLED[name].read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    start, _ = json.loads(data[8:8 + n])["classifier.bias"]["data_offsets"]
    data[8 + n + start + 2] ^= 0x01  # float32 little-endian: byte 2 holds mantissa bits 16-22
    path = folder / f"{name}.safetensors"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("name", NETS)
def test_other_weights_file_records_its_own_hash(name, tmp_path, nets):
    path = tampered_copy(name, tmp_path)
    ext = FEATURE_NETS.get(name)(weights=str(path))
    assert ext.sha256 == sha256(path) != cnn.BUNDLED_SHA256[name]
    assert ext.name == name
    # one bit of the bias of class 0 changed: the features stay, the probabilities move a little
    x = random_images(8)
    f_bundled, p_bundled = nets[name].extract(x)
    f_other, p_other = ext.extract(x)
    np.testing.assert_array_equal(f_bundled, f_other)
    assert not np.array_equal(p_bundled, p_other)
    np.testing.assert_allclose(p_bundled, p_other, atol=0.05)


def test_bundled_file_with_wrong_hash_raises(tmp_path, monkeypatch):
    # the constant differs from the file
    monkeypatch.setitem(cnn.BUNDLED_SHA256, "mnist-cnn", "0" * 64)
    with pytest.raises(CheckpointError, match="corrupted or modified") as e:
        FEATURE_NETS.get("mnist-cnn")()
    assert "reinstall" in str(e.value) and "train_feature_nets.py" in str(e.value)
    monkeypatch.undo()
    # the file differs from the constant
    monkeypatch.setattr(cnn, "WEIGHTS_DIR", tmp_path)
    tampered_copy("fashion-mnist-cnn", tmp_path)
    with pytest.raises(CheckpointError, match="corrupted or modified"):
        FEATURE_NETS.get("fashion-mnist-cnn")()


def test_missing_bundled_file_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(cnn, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="missing.*reinstall"):
        FEATURE_NETS.get("mnist-cnn")()


def test_bad_weights_files_raise(tmp_path):
    with pytest.raises(CheckpointError, match="no such weights file"):
        FEATURE_NETS.get("mnist-cnn")(weights=str(tmp_path / "nope.safetensors"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
    with pytest.raises(CheckpointError, match="not a"):
        FEATURE_NETS.get("mnist-cnn")(weights=str(junk))
    # the Fashion-MNIST weights are refused by the MNIST loader (their metadata names the net)
    other = shutil.copy(BUNDLED["fashion-mnist-cnn"], tmp_path / "f.safetensors")
    with pytest.raises(CheckpointError, match="fashion-mnist-cnn"):
        FEATURE_NETS.get("mnist-cnn")(weights=str(other))


def test_weights_of_another_architecture_raise(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "small.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="do not fit"):
        FEATURE_NETS.get("fashion-mnist-cnn")(weights=str(path))


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NETS)
def test_features_and_probabilities(name, nets):
    feats, probs = nets[name].extract(random_images(20))
    assert feats.shape == (20, 128) and feats.dtype == np.float64
    assert probs.shape == (20, 10) and probs.dtype == np.float64
    assert np.isfinite(feats).all() and (feats >= 0).all()  # after the ReLU
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert (probs >= 0).all()


def test_accepted_layouts_agree(nets):
    x = random_images(6)  # (N, H, W)
    ext = nets["mnist-cnn"]
    f1, p1 = ext.extract(x)
    f2, p2 = ext.extract(x[..., None])  # (N, H, W, 1)
    f3, p3 = ext.extract(torch.from_numpy(x).unsqueeze(1))  # torch (N, 1, H, W)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(f1, f3)
    np.testing.assert_array_equal(p1, p3)


@pytest.mark.parametrize("name", NETS)
def test_batch_size_does_not_change_the_result(name, nets):
    x = random_images(500, seed=1)
    f500, p500 = nets[name].extract(x, batch_size=500)
    for bs, n in ((7, 500), (1, 40)):  # batch size 1 on the first 40 images only, for time
        f, p = nets[name].extract(x[:n], batch_size=bs)
        np.testing.assert_allclose(f, f500[:n], rtol=0, atol=1e-6)
        np.testing.assert_allclose(p, p500[:n], rtol=0, atol=1e-6)


def test_empty_input(nets):
    feats, probs = nets["mnist-cnn"].extract(np.zeros((0, 28, 28), np.uint8))
    assert feats.shape == (0, 128) and probs.shape == (0, 10)


@pytest.mark.parametrize("shape", [(4, 32, 32), (4, 28, 28, 3), (4, 14, 14)])
def test_wrong_image_size_is_refused(shape, nets):
    with pytest.raises(ConfigError, match="1 x 28 x 28"):
        nets["fashion-mnist-cnn"].extract(np.zeros(shape, np.uint8))


def test_module_refuses_wrong_shapes_too(nets):
    with pytest.raises(ConfigError, match="1 x 28 x 28"):
        nets["mnist-cnn"].module(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ConfigError, match="1 x 28 x 28"):
        nets["mnist-cnn"].module(torch.zeros(28, 28))


def test_preprocess_maps_pixels_to_model_range():
    x = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    x[0, 0, 0, 1], x[0, 0, 0, 2] = 51, 255
    y = cnn.preprocess(x)
    assert y.dtype == torch.float32
    assert y.min().item() == -1.0 and y.max().item() == 1.0
    np.testing.assert_allclose(y[0, 0, 0, 1].item(), 51 / 127.5 - 1, atol=1e-6)


def bar_images() -> np.ndarray:
    """Hand-drawn test shapes (N, 28, 28): a digit one, two trouser legs, a plain box."""
    one = np.zeros((28, 28), np.uint8)
    one[4:24, 13:16] = 255  # a vertical stroke: the digit 1
    trousers = np.zeros((28, 28), np.uint8)
    trousers[1:27, 7:13] = 200  # two legs
    trousers[1:27, 15:21] = 200
    trousers[1:6, 7:21] = 200  # the waist
    return np.stack([one, trousers])


def test_simple_shapes_are_classified_deterministically(nets):
    x = bar_images()
    _, p_mnist = nets["mnist-cnn"].extract(x)
    _, p_fashion = nets["fashion-mnist-cnn"].extract(x)
    assert p_mnist[0].argmax() == 1  # the stroke is a "1"
    assert nets["fashion-mnist-cnn"].class_names[p_fashion[1].argmax()] == "Trouser"
    # a second load gives bit-identical outputs
    again_f, again_p = FEATURE_NETS.get("mnist-cnn")().extract(x)
    np.testing.assert_array_equal(again_p, p_mnist)


@pytest.mark.slow
@pytest.mark.skipif(not (FASHION_DIR / "t10k-labels-idx1-ubyte.gz").is_file(), reason="no Fashion-MNIST copy")
def test_fashion_accuracy_on_real_test_images(nets):
    from ganland.data import DATASETS

    test = DATASETS.get("fashion-mnist")(split="test", root=str(FASHION_DIR), download=False)
    start = time.perf_counter()
    _, probs = nets["fashion-mnist-cnn"].extract(test.x[:2000])
    assert time.perf_counter() - start < 10
    accuracy = (probs.argmax(1) == test.y[:2000].numpy()).mean()
    assert accuracy >= 0.92, accuracy
