"""Degradations that make image-to-image inputs, and the paired dataset around an image dataset."""
import pytest
import torch
import torch.nn.functional as F

from ganland.build import build_dataset, build_degradation
from ganland.config import load_config
from ganland.data.degrade import DEGRADATIONS, PairedDataset
from ganland.errors import ConfigError


def images(n=6, c=1, h=28, w=28, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_registry_lists_the_three():
    assert set(DEGRADATIONS.names()) == {"downsample", "mask", "noise"}


def test_downsample_is_bicubic_down_then_up_and_the_input_is_the_bicubic_baseline():
    x = images()
    d = build_degradation("downsample", {"factor": 4})
    out = d(x, torch.Generator())
    small = F.interpolate(x, size=(7, 7), mode="bicubic", align_corners=False, antialias=True)
    assert torch.equal(d.shrink(x), small)
    assert torch.equal(out, F.interpolate(small, size=(28, 28), mode="bicubic", align_corners=False).clamp(-1, 1))
    assert out.shape == x.shape and d.extra == 0 and d.spec() == "downsample(factor=4)"
    # A constant image survives; detail does not.
    assert torch.allclose(d(torch.full((1, 1, 28, 28), 0.3), None), torch.full((1, 1, 28, 28), 0.3), atol=1e-5)
    assert (out - x).abs().mean() > 0.1
    with pytest.raises(ConfigError, match="divisible by 8"):
        build_degradation("downsample", {"factor": 8}).check_size(28, 28)
    with pytest.raises(ConfigError, match="factor must be 2, 4 or 8"):
        build_degradation("downsample", {"factor": 3})


def test_box_masks_have_the_asked_sizes_and_the_mask_is_the_extra_channel():
    d = build_degradation("mask", {"min_size": 0.25, "max_size": 0.5})
    x = images(n=200)
    r = d.draw(200, (1, 28, 28), torch.Generator().manual_seed(1))
    rows, cols = r[:, 0].amax(dim=2).sum(dim=1), r[:, 0].amax(dim=1).sum(dim=1)  # box height and width in px
    assert rows.min() >= 7 and rows.max() <= 14 and cols.min() >= 7 and cols.max() <= 14  # 0.25-0.5 of 28 px
    assert torch.equal(r[:, 0].sum(dim=(1, 2)), rows * cols)  # one rectangle each
    out = d.apply(x, r)
    assert out.shape == (200, 2, 28, 28) and torch.equal(out[:, 1:], r)
    assert torch.equal(out[:, :1][r.bool()], torch.zeros(int(r.sum())))  # holes are mid-grey
    assert torch.equal(out[:, :1][~r.bool()], x[~r.bool()])  # the rest untouched


def test_stroke_masks_and_noise():
    d = build_degradation("mask", {"shape": "strokes", "strokes": 2, "width": 0.1})
    r = d.draw(50, (1, 28, 28), torch.Generator().manual_seed(0))
    share = r.mean(dim=(1, 2, 3))
    assert (share > 0).all() and share.mean() < 0.4
    n = build_degradation("noise", {"sigma": 0.1})
    x = torch.zeros(20, 1, 28, 28)
    out = n(x, torch.Generator().manual_seed(0))
    assert out.std().item() == pytest.approx(0.1, rel=0.05) and n.spec() == "noise(sigma=0.1)"
    with pytest.raises(ConfigError, match="sigma must be > 0"):
        build_degradation("noise", {"sigma": 0})
    with pytest.raises(ConfigError, match="'box' or 'strokes'"):
        build_degradation("mask", {"shape": "circle"})
    with pytest.raises(ConfigError, match="data.degrade_options"):
        build_degradation("noise", {"sigmaa": 0.1})


def test_paired_dataset_fixed_inputs_and_heldout_pairs(fake_mnist):
    cfg = load_config(None, {"data.name": "mnist", "data.root": str(fake_mnist), "data.degrade": "mask"})
    test = build_dataset(cfg, "test")
    assert isinstance(test, PairedDataset) and test.cond_shape == (2, 28, 28) and test.evaluator == "restoration"
    assert test.n_classes == 0 and test.shape == (1, 28, 28) and len(test) == 64
    idx = torch.arange(10)
    a, b = test.inputs(idx, 3), test.inputs(idx, 3)
    assert torch.equal(a, b) and not torch.equal(a, test.inputs(idx, 4))
    target, inp = test.get(idx)
    assert target.shape == (10, 1, 28, 28) and inp.shape == (10, 2, 28, 28)
    assert torch.equal(test.get(idx)[1], inp)  # the same pairs at every call


@pytest.mark.parametrize("overrides,message", [
    ({"data.degrade": "blur"}, "blur"),
    ({"data.degrade_options": {"factor": 2}}, "data.degrade is none"),
    ({"data.name": "ring", "data.root": None, "data.degrade": "noise"}, "does not hold images"),
    ({"data.degrade": "downsample", "data.degrade_options": {"factor": 8}}, "divisible by 8"),
])
def test_bad_degradation_settings_are_clear_errors(fake_mnist, overrides, message):
    cfg = load_config(None, {"data.name": "mnist", "data.root": str(fake_mnist), **overrides})
    with pytest.raises(ConfigError, match=message):
        build_dataset(cfg, "train")
