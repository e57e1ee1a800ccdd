"""The FID Inception-v3 (`inception-v3-fid`): layout of the weights file, preprocessing, loader.

The real weights cannot be downloaded here, so the network runs with random weights saved the
way a user's file is (torch.save of a plain dict of tensors). Each 299 x 299 forward costs about
0.1 s per image on CPU: the tests use 2-3 images.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import ganland.metrics  # noqa: F401  (registers the feature nets)
from ganland.errors import ConfigError
from ganland.metrics import inception as inc
from ganland.metrics.features import FEATURE_NETS

URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"

# Every BasicConv2d of the weights file: name, out channels, in channels, kernel height, kernel width.
# Written out from the architecture (Szegedy et al. 2016; TensorFlow's 2015-12-05 graph), not from
# the module under test.
CONVS = """
Conv2d_1a_3x3 32 3 3 3
Conv2d_2a_3x3 32 32 3 3
Conv2d_2b_3x3 64 32 3 3
Conv2d_3b_1x1 80 64 1 1
Conv2d_4a_3x3 192 80 3 3
Mixed_5b.branch1x1 64 192 1 1
Mixed_5b.branch5x5_1 48 192 1 1
Mixed_5b.branch5x5_2 64 48 5 5
Mixed_5b.branch3x3dbl_1 64 192 1 1
Mixed_5b.branch3x3dbl_2 96 64 3 3
Mixed_5b.branch3x3dbl_3 96 96 3 3
Mixed_5b.branch_pool 32 192 1 1
Mixed_5c.branch1x1 64 256 1 1
Mixed_5c.branch5x5_1 48 256 1 1
Mixed_5c.branch5x5_2 64 48 5 5
Mixed_5c.branch3x3dbl_1 64 256 1 1
Mixed_5c.branch3x3dbl_2 96 64 3 3
Mixed_5c.branch3x3dbl_3 96 96 3 3
Mixed_5c.branch_pool 64 256 1 1
Mixed_5d.branch1x1 64 288 1 1
Mixed_5d.branch5x5_1 48 288 1 1
Mixed_5d.branch5x5_2 64 48 5 5
Mixed_5d.branch3x3dbl_1 64 288 1 1
Mixed_5d.branch3x3dbl_2 96 64 3 3
Mixed_5d.branch3x3dbl_3 96 96 3 3
Mixed_5d.branch_pool 64 288 1 1
Mixed_6a.branch3x3 384 288 3 3
Mixed_6a.branch3x3dbl_1 64 288 1 1
Mixed_6a.branch3x3dbl_2 96 64 3 3
Mixed_6a.branch3x3dbl_3 96 96 3 3
Mixed_6b.branch1x1 192 768 1 1
Mixed_6b.branch7x7_1 128 768 1 1
Mixed_6b.branch7x7_2 128 128 1 7
Mixed_6b.branch7x7_3 192 128 7 1
Mixed_6b.branch7x7dbl_1 128 768 1 1
Mixed_6b.branch7x7dbl_2 128 128 7 1
Mixed_6b.branch7x7dbl_3 128 128 1 7
Mixed_6b.branch7x7dbl_4 128 128 7 1
Mixed_6b.branch7x7dbl_5 192 128 1 7
Mixed_6b.branch_pool 192 768 1 1
Mixed_6c.branch1x1 192 768 1 1
Mixed_6c.branch7x7_1 160 768 1 1
Mixed_6c.branch7x7_2 160 160 1 7
Mixed_6c.branch7x7_3 192 160 7 1
Mixed_6c.branch7x7dbl_1 160 768 1 1
Mixed_6c.branch7x7dbl_2 160 160 7 1
Mixed_6c.branch7x7dbl_3 160 160 1 7
Mixed_6c.branch7x7dbl_4 160 160 7 1
Mixed_6c.branch7x7dbl_5 192 160 1 7
Mixed_6c.branch_pool 192 768 1 1
Mixed_6d.branch1x1 192 768 1 1
Mixed_6d.branch7x7_1 160 768 1 1
Mixed_6d.branch7x7_2 160 160 1 7
Mixed_6d.branch7x7_3 192 160 7 1
Mixed_6d.branch7x7dbl_1 160 768 1 1
Mixed_6d.branch7x7dbl_2 160 160 7 1
Mixed_6d.branch7x7dbl_3 160 160 1 7
Mixed_6d.branch7x7dbl_4 160 160 7 1
Mixed_6d.branch7x7dbl_5 192 160 1 7
Mixed_6d.branch_pool 192 768 1 1
Mixed_6e.branch1x1 192 768 1 1
Mixed_6e.branch7x7_1 192 768 1 1
Mixed_6e.branch7x7_2 192 192 1 7
Mixed_6e.branch7x7_3 192 192 7 1
Mixed_6e.branch7x7dbl_1 192 768 1 1
Mixed_6e.branch7x7dbl_2 192 192 7 1
Mixed_6e.branch7x7dbl_3 192 192 1 7
Mixed_6e.branch7x7dbl_4 192 192 7 1
Mixed_6e.branch7x7dbl_5 192 192 1 7
Mixed_6e.branch_pool 192 768 1 1
Mixed_7a.branch3x3_1 192 768 1 1
Mixed_7a.branch3x3_2 320 192 3 3
Mixed_7a.branch7x7x3_1 192 768 1 1
Mixed_7a.branch7x7x3_2 192 192 1 7
Mixed_7a.branch7x7x3_3 192 192 7 1
Mixed_7a.branch7x7x3_4 192 192 3 3
Mixed_7b.branch1x1 320 1280 1 1
Mixed_7b.branch3x3_1 384 1280 1 1
Mixed_7b.branch3x3_2a 384 384 1 3
Mixed_7b.branch3x3_2b 384 384 3 1
Mixed_7b.branch3x3dbl_1 448 1280 1 1
Mixed_7b.branch3x3dbl_2 384 448 3 3
Mixed_7b.branch3x3dbl_3a 384 384 1 3
Mixed_7b.branch3x3dbl_3b 384 384 3 1
Mixed_7b.branch_pool 192 1280 1 1
Mixed_7c.branch1x1 320 2048 1 1
Mixed_7c.branch3x3_1 384 2048 1 1
Mixed_7c.branch3x3_2a 384 384 1 3
Mixed_7c.branch3x3_2b 384 384 3 1
Mixed_7c.branch3x3dbl_1 448 2048 1 1
Mixed_7c.branch3x3dbl_2 384 448 3 3
Mixed_7c.branch3x3dbl_3a 384 384 1 3
Mixed_7c.branch3x3dbl_3b 384 384 3 1
Mixed_7c.branch_pool 192 2048 1 1
"""

# torchvision documents 27,161,264 parameters for its Inception-v3 (aux head, 1000 classes). The FID
# network has no aux head (conv0 768*128 + 2*128, conv1 128*768*25 + 2*768, fc 768*1000 + 1000 =
# 3,326,696) and 8 more classes in fc (8 * 2048 + 8 = 16,392).
N_PARAMS = 27_161_264 - 3_326_696 + 16_392  # = 23,850,960


def expected_layout() -> dict[str, tuple[int, ...]]:
    layout = {}
    for row in CONVS.split("\n"):
        if not row.strip():
            continue
        name, o, i, kh, kw = row.split()
        o, i, kh, kw = int(o), int(i), int(kh), int(kw)
        layout[f"{name}.conv.weight"] = (o, i, kh, kw)
        for buf in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{name}.bn.{buf}"] = (o,)
        layout[f"{name}.bn.num_batches_tracked"] = ()
    layout["fc.weight"] = (1008, 2048)
    layout["fc.bias"] = (1008,)
    return layout


def random_fid_inception(seed: int = 0) -> inc.FIDInceptionV3:
    """A randomly initialised network whose BatchNorm statistics are those of one random batch,
    so that activations stay O(1) through all 94 layers (default running stats would let them
    vanish and make every feature 0). The batch is 75 x 75, the smallest input the network takes,
    to keep this cheap."""
    torch.manual_seed(seed)
    net = inc.FIDInceptionV3()
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = None  # cumulative average: after one batch the running stats are that batch's
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, 75, 75) * 2 - 1)
    for bn in bns:
        bn.momentum = 0.1
    return net.eval()


@pytest.fixture(scope="module")
def random_net() -> inc.FIDInceptionV3:
    return random_fid_inception()


@pytest.fixture(scope="module")
def random_state(random_net) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in random_net.state_dict().items()}


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, random_state) -> Path:
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(dict(random_state), path)  # a plain dict of tensors, like the reference file
    return path


@pytest.fixture
def no_weights_anywhere(monkeypatch, tmp_path):
    """No env var and an empty torch.hub cache (the ganland cache is already per-test, see conftest)."""
    monkeypatch.delenv(inc.ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


def load_quietly(path):
    """The loader on a file that is (rightly) not the reference one: expect that warning."""
    with pytest.warns(UserWarning, match="not the reference FID Inception weights"):
        return FEATURE_NETS.get("inception-v3-fid")(weights=str(path))


# ----------------------------------------------------------------------------------------------
# Architecture
# ----------------------------------------------------------------------------------------------

def test_state_dict_keys_and_shapes_match_the_reference_file_layout():
    layout = expected_layout()
    assert len(layout) == 94 * 6 + 2
    got = {k: tuple(v.shape) for k, v in inc.FIDInceptionV3().state_dict().items()}
    assert sorted(set(got) - set(layout)) == [] and sorted(set(layout) - set(got)) == []
    assert {k: s for k, s in got.items() if layout[k] != s} == {}


def test_parameter_count():
    net = inc.FIDInceptionV3()
    assert sum(p.numel() for p in net.parameters()) == N_PARAMS == 23_850_960
    layout = expected_layout()
    assert sum(int(np.prod(s)) for k, s in layout.items()
               if k.endswith((".weight", ".bias")) and ".running" not in k) == N_PARAMS


def test_fid_specific_differences_from_torchvision():
    net = inc.FIDInceptionV3()
    # BatchNorm eps of the TensorFlow graph everywhere
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 94 and all(bn.eps == 1e-3 for bn in bns)
    # the A/C/E average pools ignore the padding: an all-ones map stays all ones (4/9 in a corner otherwise)
    ones = torch.ones(1, 1, 5, 5)
    assert torch.equal(inc._avg_pool_3x3_same(ones), ones)
    # Mixed_7b pools by average, Mixed_7c by max (3x3, stride 1, same size)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = 9.0
    assert net.Mixed_7c.pool(x)[0, 0, 1, 1] == 9.0
    assert net.Mixed_7b.pool(x)[0, 0, 1, 1] == 1.0
    assert net.Mixed_7b.pool(x)[0, 0, 0, 0] == 9.0 / 4  # corner window: 4 real pixels
    assert not hasattr(net, "AuxLogits")


def test_forward_shapes_and_unbiased_logits(random_net):
    assert random_net.fc.bias.abs().sum() > 0  # the bias must not enter the logits (original IS code)
    with torch.no_grad():
        features, logits = random_net(torch.rand(2, 3, 75, 75) * 2 - 1)  # any size >= 75 works
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.allclose(logits, features @ random_net.fc.weight.t())
    assert (features >= 0).all() and features.std() > 0  # post-ReLU average, not degenerate


# ----------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------

def bilinear_half_pixel(img: np.ndarray, size: int) -> np.ndarray:
    """Reference bilinear resize, align_corners=False: source = (dst + 0.5) * in / out - 0.5,
    clamped at 0 (PyTorch's and OpenCV's convention)."""
    def weights(n_in):
        src = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        t = src - lo
        m = np.zeros((size, n_in))
        m[np.arange(size), lo] += 1 - t
        m[np.arange(size), hi] += t
        return m
    return weights(img.shape[0]) @ img @ weights(img.shape[1]).T


def test_preprocess_scales_tiles_and_resizes_like_the_reference():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (2, 1, 7, 5), dtype=np.uint8)
    out = inc.fid_inception_preprocess(torch.from_numpy(gray))
    assert out.shape == (2, 3, 299, 299) and out.dtype == torch.float32
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])  # tiled
    expected = 2 * bilinear_half_pixel(gray[0, 0] / 255.0, 299) - 1
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=1e-5)
    rgb = np.repeat(gray, 3, axis=1)
    assert torch.allclose(inc.fid_inception_preprocess(torch.from_numpy(rgb)), out, atol=1e-6)
    # 0 -> -1 and 255 -> 1 exactly
    ext = inc.fid_inception_preprocess(torch.tensor([[[[0, 255], [0, 255]]]], dtype=torch.uint8))
    assert ext.min() == -1.0 and ext.max() == 1.0
    with pytest.raises(ConfigError, match="channels"):
        inc.fid_inception_preprocess(torch.zeros(1, 2, 8, 8, dtype=torch.uint8))


# ----------------------------------------------------------------------------------------------
# Loader
# ----------------------------------------------------------------------------------------------

def test_registered_and_extracts_float64_features_batch_size_independent(weights_file):
    ex = load_quietly(weights_file)
    assert ex.name == "inception-v3-fid" and ex.feature_dim == 2048 and ex.n_classes == 1008
    assert ex.sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)  # numpy (N, H, W, C)
    rgb = torch.from_numpy(rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))  # torch (N, C, H, W)
    f_gray, p_gray = ex.extract(gray, batch_size=2)
    f_rgb, p_rgb = ex.extract(rgb, batch_size=2)
    for f, p in ((f_gray, p_gray), (f_rgb, p_rgb)):
        assert f.shape == (2, 2048) and f.dtype == np.float64
        assert p.shape == (2, 1008) and p.dtype == np.float64
        assert np.isfinite(f).all() and f.std() > 0
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert np.abs(f_gray[0] - f_gray[1]).max() > 1e-4  # different images, different features
    # batch-size independence: the same images one at a time
    f_one, p_one = ex.extract(gray, batch_size=1)
    np.testing.assert_allclose(f_one, f_gray, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(p_one, p_gray, rtol=1e-4, atol=1e-9)
    assert not any(p.requires_grad for p in ex.module.parameters())


def test_file_without_num_batches_tracked_loads(random_state):
    # Files converted straight from TensorFlow have no BatchNorm step counters; torch fills them in.
    state = {k: v for k, v in random_state.items() if not k.endswith("num_batches_tracked")}
    net = inc.FIDInceptionV3()
    inc.check_state_dict(state, net, Path("x.pth"))
    net.load_state_dict(state, strict=True)


def test_lookup_order(tmp_path, monkeypatch, no_weights_anywhere, offline):
    cache_file = offline / "inception" / inc.WEIGHTS_FILE
    assert inc.default_weights_path() == cache_file
    hub_file = tmp_path / "torch-home" / "hub" / "checkpoints" / inc.TORCH_FIDELITY_FILE
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(b"x")
    assert inc.find_weights() == hub_file  # torch.hub's cache (torch-fidelity / torchmetrics name)
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(b"x")
    assert inc.find_weights() == cache_file  # ganland's cache first
    env_file = tmp_path / "env.pth"
    env_file.write_bytes(b"x")
    monkeypatch.setenv(inc.ENV_VAR, str(env_file))
    assert inc.find_weights() == env_file
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"x")
    assert inc.find_weights(str(explicit)) == explicit
    # a path that was asked for but is missing is an error, not a silent fallback
    monkeypatch.setenv(inc.ENV_VAR, str(tmp_path / "gone.pth"))
    with pytest.raises(ConfigError, match="gone.pth"):
        inc.find_weights()


def test_missing_file_says_how_to_get_it(no_weights_anywhere, offline, tmp_path):
    loader = FEATURE_NETS.get("inception-v3-fid")
    with pytest.raises(ConfigError) as err:
        loader()
    msg = str(err.value)
    assert URL in msg
    assert str(offline / "inception" / "pt_inception-2015-12-05-6726825d.pth") in msg
    assert "--inception-weights" in msg and inc.ENV_VAR in msg and "torch-fidelity" in msg
    with pytest.raises(ConfigError, match="nowhere.pth") as err:
        loader(weights=str(tmp_path / "nowhere.pth"))
    assert URL in str(err.value)


class _Payload:
    """Unpickling this calls open(marker, 'w'), i.e. creates a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(1), "x": _Payload(marker)}, path)
    assert not marker.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no hash warning either: the file is refused first
        with pytest.raises(ConfigError, match="not a loadable PyTorch state dict") as err:
            FEATURE_NETS.get("inception-v3-fid")(weights=str(path))
    assert str(path) in str(err.value) and "weights_only" in str(err.value)
    assert not marker.exists()


def test_not_a_state_dict(tmp_path):
    for obj, name in (([torch.zeros(2)], "list.pth"), ({"a": 1}, "ints.pth")):
        path = tmp_path / name
        torch.save(obj, path)
        with pytest.raises(ConfigError, match="does not hold a state dict") as err:
            inc.load_fid_inception(path)
        assert name in str(err.value)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ConfigError, match="garbage.pth"):
        inc.load_fid_inception(garbage)


def test_wrong_keys_or_shapes(tmp_path, random_state):
    path = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ConfigError, match="missing") as err:
        inc.load_fid_inception(path)
    assert "other.pth" in str(err.value) and "unexpected" in str(err.value)
    net = inc.FIDInceptionV3()
    # torchvision's ImageNet Inception-v3: 1000 classes and an aux head
    tv = dict(random_state)
    tv["fc.weight"], tv["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    tv["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    with pytest.raises(ConfigError, match="torchvision") as err:
        inc.check_state_dict(tv, net, Path("inception_v3_google.pth"))
    assert "wrong shape" in str(err.value) and "fc.weight (1000, 2048) (expected (1008, 2048))" in str(err.value)
    wrapped = {"module." + k: v for k, v in random_state.items()}
    with pytest.raises(ConfigError, match="DataParallel"):
        inc.check_state_dict(wrapped, net, Path("wrapped.pth"))


@pytest.mark.slow  # Inception-v3 at 299 px on 72 images: about 20 s on 2 cores
def test_evaluation_with_inception_has_no_dataset_class_metrics(weights_file, fake_mnist):
    """ImageNet classes say nothing about digits: IS yes, class coverage / conditional accuracy no."""
    from ganland.evaluation import evaluate_samples, samples_target

    ex = load_quietly(weights_file)
    target = samples_target("mnist", str(fake_mnist))
    x = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    score = evaluate_samples(x, target, labels=np.arange(8) % 10, full=False, extractor=ex)
    assert score.protocol.feature_net == "inception-v3-fid" and score.protocol.n_real == 64
    assert {"fid", "is"} <= set(score.metrics)
    assert not {"class_coverage", "class_histogram", "conditional_accuracy"} & set(score.metrics)
