"""A trained generator as PyTorch users expect it: an nn.Module with sampling helpers, class names,
the truncation trick, latent walks, and export to one .safetensors file."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ganland
from ganland.config import load_config
from ganland.errors import CheckpointError, ConfigError
from ganland.generator import Generator, sample_z, slerp
from ganland.training.runs import train

TINY = {"data.name": "mnist", "model.z_dim": 8, "model.options": {"g_width": 4, "d_width": 4},
        "train.batch_size": 16, "train.progress": False, "train.heldout_batches": 1, "train.sample_every": 0}


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    from conftest import write_fake_mnist

    tmp = tmp_path_factory.mktemp("gen")
    data = write_fake_mnist(tmp / "mnist")
    cfg = load_config(None, {**TINY, "data.root": str(data), "model.conditional": True, "train.steps": 2,
                             "train.ema": 0.9})
    return train(cfg, str(tmp / "run")).run_dir


def test_truncation_keeps_every_component_within_the_bound():
    z = sample_z(2000, 16, "normal", torch.Generator().manual_seed(0), "cpu", truncation=0.5)
    assert z.abs().max() <= 0.5 and z.std() > 0.2  # still spread over the allowed range
    assert torch.equal(sample_z(5, 4, "normal", torch.Generator().manual_seed(1), "cpu"),
                       torch.randn(5, 4, generator=torch.Generator().manual_seed(1)))  # none: plain N(0, I)
    with pytest.raises(ConfigError, match="truncation applies to the normal prior"):
        sample_z(5, 4, "uniform", torch.Generator(), "cpu", truncation=0.5)
    with pytest.raises(ConfigError, match="truncation must be > 0"):
        sample_z(5, 4, "normal", torch.Generator(), "cpu", truncation=0.0)


def test_slerp_stays_on_the_arc():
    z0, z1 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    path = slerp(z0, z1, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)
    assert torch.allclose(path.norm(dim=1), torch.full((5,), 3.0))  # a straight line would dip to 2.12
    assert torch.allclose(path[2], torch.tensor([3 / math.sqrt(2)] * 2))
    same = slerp(z0, 2 * z0, torch.tensor([0.5]))  # parallel: the straight line
    assert torch.allclose(same, torch.tensor([[4.5, 0.0]]))


@pytest.mark.e2e
def test_load_gives_an_nn_module_with_helpers(conditional_run):
    g = ganland.load(conditional_run)
    assert isinstance(g, Generator) and isinstance(g, torch.nn.Module) and not g.training
    z, c = g.noise(4, seed=1), torch.tensor([0, 1, 2, 3])
    x = g(z, c)
    assert x.shape == (4, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert all(k.startswith("G.") for k in g.state_dict())
    assert g.to("cpu").device == torch.device("cpu") and g.step == 2 and g.z_dim == 8
    out = g.sample(6, classes="3", seed=2)  # a number given as text
    assert out["labels"].tolist() == [3] * 6 and out["images"].shape == (6, 28, 28, 1)
    assert np.array_equal(g.sample(6, classes=3, seed=2)["images"], out["images"])


@pytest.mark.e2e
def test_a_seed_means_the_same_noise_on_every_device(conditional_run, monkeypatch):
    """The noise of a seed is drawn on the CPU and moved: a GPU's own generator would draw other
    numbers, and scores at "seed 0" would differ between machines (FID 6.62 on an H200 against
    7.12 on the CPU for one checkpoint before this; 7.121 on both after). The meta device stands in
    for a GPU here: it has no generator of its own, so the draw must happen elsewhere."""
    g = ganland.load(conditional_run)
    expected = torch.randn(5, g.z_dim, generator=torch.Generator().manual_seed(7))
    assert torch.equal(g.noise(5, seed=7), expected)
    import ganland.generator as module

    seen = []
    real = module.sample_z
    monkeypatch.setattr(module, "sample_z", lambda n, d, prior, gen, device, truncation=None: (
        seen.append((gen.device.type, str(device), gen.initial_seed())) or real(n, d, prior, gen, device, truncation)))
    moved = g.to("meta").noise(5, seed=7, truncation=0.5)
    assert moved.device.type == "meta" and moved.shape == expected.shape
    assert seen == [("cpu", "cpu", 7)]  # drawn by a CPU generator from the seed, then moved


@pytest.mark.e2e
def test_classes_by_name_and_a_clear_error_listing_them(conditional_run):
    g = ganland.load(conditional_run)
    assert g.class_names[:3] == ["0", "1", "2"]  # the fake MNIST's digit names
    g.class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                     "Ankle boot"]
    assert g.sample(2, classes="bag")["labels"].tolist() == [8, 8]
    assert g.sample(2, classes=["Ankle boot", "trouser"])["labels"].tolist() == [9, 1]
    with pytest.raises(ConfigError, match=r"no class named 'bagg'; this model's classes: 0 T-shirt/top, 1 Trouser.*"
                                          r"9 Ankle boot\. Did you mean \"Bag\"\?"):
        g.sample(2, classes="bagg")


@pytest.mark.e2e
def test_interpolation_walks_one_class_per_row(conditional_run):
    g = ganland.load(conditional_run)
    out = g.interpolate(steps=5, rows=3, seed=0)
    assert out["images"].shape == (15, 28, 28, 1)
    assert out["labels"].tolist() == [0] * 5 + [1] * 5 + [2] * 5
    with pytest.raises(ConfigError, match="steps >= 2"):
        g.interpolate(steps=1)


@pytest.mark.e2e
def test_export_and_load_back_anywhere(conditional_run, tmp_path):
    path = ganland.export(conditional_run, tmp_path / "g.safetensors")
    back = ganland.load(path)
    ref = ganland.load(conditional_run)  # the EMA generator, like the export
    assert np.array_equal(back.sample(8, seed=4)["images"], ref.sample(8, seed=4)["images"])
    assert back.step == 2 and back.class_names == ref.class_names and back.n_classes == 10
    raw = ganland.load(ganland.export(conditional_run, tmp_path / "raw.safetensors", ema=False))
    assert not np.array_equal(raw.sample(8, seed=4)["images"], back.sample(8, seed=4)["images"])
    with pytest.raises(ConfigError, match="a .safetensors file"):
        ganland.export(conditional_run, tmp_path / "g.pt")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a ganland generator"):
        ganland.load(tmp_path / "other.safetensors")
