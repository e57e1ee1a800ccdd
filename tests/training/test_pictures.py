"""Pictures alone: the same fixed inputs at every call, the step's file and latest.png, the
training curves, one column per class, and D's surface only where it means something."""
from __future__ import annotations

import torch

from ganland.data import DATASETS, ArrayDataset
from ganland.training.pictures import Pictures


class Recorder:
    """A stand-in generator: returns a fixed function of its inputs and remembers them."""

    def __init__(self, shape):
        self.shape, self.calls = shape, []

    def __call__(self, z, c):
        self.calls.append((z.clone(), None if c is None else c.clone()))
        n = len(z)
        return torch.tanh(z[:, :1].repeat(1, int(torch.tensor(self.shape).prod()))).view(n, *self.shape)


class TinyD(torch.nn.Module):
    def forward(self, x, c=None):
        return x.sum(1)


def images(n_classes: int = 0) -> ArrayDataset:
    y = torch.arange(40) % n_classes if n_classes else None
    names = [str(k) for k in range(n_classes)] if n_classes else None
    return ArrayDataset("tiny", torch.zeros(40, 1, 8, 8, dtype=torch.uint8), y, class_names=names)


def pictures(tmp_path, data, n_classes=0, D=None) -> Pictures:
    return Pictures(tmp_path, "tiny", data, data, n_classes, 4, "normal", 0, D or TinyD(), torch.device("cpu"))


def test_the_same_inputs_every_time_and_files_per_step(tmp_path):
    pics = pictures(tmp_path, images())
    G = Recorder((1, 8, 8))
    rows = [{"kind": "train", "step": s, "loss_D": 1.0, "loss_G": 1.0} for s in (1, 2)]
    latest = pics.save(2, G, rows)
    pics.save(4, G, [])
    (z1, c1), (z2, c2) = G.calls
    assert z1.shape == (64, 4) and torch.equal(z1, z2) and c1 is None  # 8 x 8 grid, fixed noise
    names = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert names == ["latest.png", "step_000000002.png", "step_000000004.png", "training.png"]
    assert latest == tmp_path / "samples" / "latest.png" == pics.latest()
    assert latest.read_bytes() == (tmp_path / "samples" / "step_000000004.png").read_bytes()
    assert not pics.with_surface


def test_a_conditional_grid_has_one_column_per_class(tmp_path):
    pics = pictures(tmp_path, images(n_classes=3), n_classes=3)
    G = Recorder((1, 8, 8))
    pics.save(1, G, [])
    z, c = G.calls[0]
    assert pics.columns == 3 and len(z) == 24 and c.tolist() == [0, 1, 2] * 8


def test_the_critic_surface_is_drawn_for_unconditional_2d_samples_only(tmp_path):
    ring = DATASETS.get("ring")()
    pics = pictures(tmp_path, ring)
    assert pics.with_surface and pics.real.shape == (2500, 2)
    pts = torch.tensor([[1.0, 2.0], [-1.0, 0.5]]).numpy()
    assert pics.critic_surface(pts).tolist() == [3.0, -0.5]  # D's logits at the points
    pics.save(1, Recorder((2,)), [])
    assert (tmp_path / "samples" / "step_000000001.png").stat().st_size > 5000
    packed = TinyD()
    packed.pack = 2
    assert not pictures(tmp_path, ring, D=packed).with_surface  # a packed D judges packs, not points
    assert not pictures(tmp_path, DATASETS.get("gaussian-1d")()).with_surface
