"""The losses, the D steps and the whole G-through-D backward pass against finite differences and
torch autograd (float64, 1e-6 relative), and whole training iterations against a torch mirror."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganland.errors import ConfigError
from ganland.numpy_gan import (EPS, SGD, Adam, NumpyGAN, bce, bce_grad, build_discriminator, build_generator,
                               G_LOSSES)

from .gradcheck import TOL, central_diff, rel_err, to_torch, torch_grads


def torch_bce(p: torch.Tensor, target: float) -> torch.Tensor:
    c = p.clamp(EPS, 1 - EPS)
    return -(target * torch.log(c) + (1 - target) * torch.log(1 - c)).mean()


# ---- the loss ------------------------------------------------------------------------------

@pytest.mark.parametrize("target", [0.0, 1.0, 0.3])
def test_bce_and_its_gradient(target):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, (7, 1))
    grad = bce_grad(p, target)
    assert rel_err(grad, central_diff(lambda: bce(p, target), p)) < TOL
    pt = torch.tensor(p, requires_grad=True)
    loss = torch_bce(pt, target)
    loss.backward()
    assert bce(p, target) == pytest.approx(loss.item(), rel=1e-14)
    assert rel_err(grad, pt.grad.numpy()) < 1e-12


def test_bce_clamps_like_the_seed():
    p = np.array([[0.0], [1.0], [0.5]])
    # Clamped to [1e-7, 1 - 1e-7]: finite losses, and no gradient where the clamp is active.
    assert bce(p[:1], 1.0) == pytest.approx(-np.log(1e-7))
    assert bce(p[1:2], 0.0) == pytest.approx(-np.log(1e-7), rel=1e-6)
    assert np.array_equal(bce_grad(p, 1.0)[:2], [[0.0], [0.0]])
    assert bce_grad(p, 1.0)[2, 0] == pytest.approx(-1 / (3 * 0.5))


def test_g_losses():
    p = np.array([[0.2], [0.7]])
    ns_loss, ns_grad = G_LOSSES.get("non-saturating")(p)
    mm_loss, mm_grad = G_LOSSES.get("minimax")(p)
    assert ns_loss == pytest.approx(-np.log(p).mean()) and np.allclose(ns_grad, -1 / (2 * p))
    assert mm_loss == pytest.approx(np.log(1 - p).mean()) and np.allclose(mm_grad, -1 / (2 * (1 - p)))


# ---- the networks of seed 002 ----------------------------------------------------------------

def make_gan(seed=0, g_loss="non-saturating", **kw) -> NumpyGAN:
    rng = np.random.default_rng(seed)
    G, D = build_generator(rng), build_discriminator(rng)
    return NumpyGAN(G, D, SGD([G.flat], 0.01), SGD([D.flat], 0.01), g_loss, **kw)


def test_seed_002_shapes():
    gan = make_gan()
    assert [p.data.shape for p in gan.G.parameters()] == [(1, 10), (1, 10), (10, 10), (1, 10), (10, 10), (1, 10)]
    assert [p.data.shape for p in gan.D.parameters()] == [(10, 10), (1, 10), (10, 10), (1, 10), (10, 1), (1, 1)]
    x = gan.generate(np.random.default_rng(1).normal(size=(5, 1)))
    assert x.shape == (5, 10) and np.all(np.abs(x) < 1)
    p = gan.D.forward(x)
    assert p.shape == (5, 1) and np.all((p > 0) & (p < 1))


@pytest.mark.parametrize("target", [1.0, 0.0])
def test_d_gradients(target):
    gan = make_gan(1)
    rng = np.random.default_rng(2)
    x = rng.uniform(-0.8, 0.8, (6, 10))
    loss, _ = gan.d_backward(x, target)
    grads = {p.name: p.grad.copy() for p in gan.D.parameters()}
    f = lambda: bce(gan.D.forward(x), target)  # noqa: E731
    for p in gan.D.parameters():
        assert rel_err(grads[p.name], central_diff(f, p.data)) < TOL, p.name

    tD = to_torch(gan.D)
    tl = torch_bce(tD(torch.from_numpy(x)), target)
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-12)
    for name, g in torch_grads(gan.D, tD).items():
        assert rel_err(grads[name], g) < 1e-12, name


@pytest.mark.parametrize("g_loss", ["non-saturating", "minimax"])
@pytest.mark.parametrize("n", [1, 8])
def test_g_through_d_gradients(g_loss, n):
    """The G step's whole backward pass (loss -> sigmoid -> D -> tanh -> G) and D left untouched."""
    gan = make_gan(3, g_loss)
    z = np.random.default_rng(4).normal(size=(n, 1))
    gan.generate(z)
    for p in gan.D.parameters():
        p.grad[...] = 123.0  # must survive the G step's pass through D
    loss, _ = gan.g_backward()
    grads = {p.name: p.grad.copy() for p in gan.G.parameters()}
    assert all(np.all(p.grad == 123.0) for p in gan.D.parameters())

    loss_fn = G_LOSSES.get(g_loss)
    f = lambda: loss_fn(gan.D.forward(gan.G.forward(z)))[0]  # noqa: E731
    for p in gan.G.parameters():
        assert rel_err(grads[p.name], central_diff(f, p.data)) < TOL, p.name

    tG, tD = to_torch(gan.G), to_torch(gan.D)
    p_fake = tD(tG(torch.from_numpy(z)))
    tl = torch_bce(p_fake, 1.0) if g_loss == "non-saturating" else -torch_bce(p_fake, 0.0)
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-12)
    for name, g in torch_grads(gan.G, tG).items():
        assert rel_err(grads[name], g) < 1e-12, name


def test_batch_gradient_is_the_mean_of_per_sample_gradients():
    gan = make_gan(5)
    z = np.random.default_rng(6).normal(size=(4, 1))
    gan.generate(z)
    gan.g_backward()
    batch = gan.G.flat.grad.copy()
    singles = []
    for i in range(4):
        gan.generate(z[i:i + 1])
        gan.g_backward()
        singles.append(gan.G.flat.grad.copy())
    assert rel_err(batch, np.mean(singles, axis=0)) < 1e-12


# ---- whole iterations against torch ----------------------------------------------------------

def torch_iterations(gan: NumpyGAN, xs, zs, lr, opt_name, grad_clip, weight_clip, g_loss):
    """Seed 002's iteration written with torch autograd and torch.optim, on copies of the
    NumPy weights: D on real (label 1), D on the fakes (label 0), G through the updated D."""
    tG, tD = to_torch(gan.G), to_torch(gan.D)
    make = (lambda ps: torch.optim.SGD(ps, lr=lr)) if opt_name == "sgd" else \
        (lambda ps: torch.optim.Adam(ps, lr=lr, betas=(0.5, 0.999)))
    opt_G, opt_D = make(tG.parameters()), make(tD.parameters())

    def update(net, opt):
        if grad_clip is not None:
            for m in net:
                if isinstance(m, torch.nn.Linear):  # weight matrices only, each on its own (the seed)
                    norm = m.weight.grad.norm()  # (clip_grad_norm_ would add 1e-6 to the norm)
                    if norm > grad_clip:
                        m.weight.grad.mul_(grad_clip / norm)
        opt.step()
        if weight_clip is not None:
            with torch.no_grad():
                for p in net.parameters():
                    p.clamp_(-weight_clip, weight_clip)

    for x, z in zip(xs, zs):
        opt_D.zero_grad()
        torch_bce(tD(torch.from_numpy(x)), 1.0).backward()
        update(tD, opt_D)
        x_fake = tG(torch.from_numpy(z))
        opt_D.zero_grad()
        torch_bce(tD(x_fake.detach()), 0.0).backward()
        update(tD, opt_D)
        opt_G.zero_grad()
        p = tD(x_fake)
        (torch_bce(p, 1.0) if g_loss == "non-saturating" else -torch_bce(p, 0.0)).backward()
        update(tG, opt_G)
    return tG, tD


@pytest.mark.parametrize("opt_name,grad_clip,weight_clip,g_loss", [
    ("sgd", 0.2, 0.25, "non-saturating"),  # seed 002's settings
    ("sgd", None, None, "minimax"),
    ("adam", 0.2, 0.25, "non-saturating"),
])
@pytest.mark.parametrize("n", [1, 16])
def test_training_iterations_match_torch(opt_name, grad_clip, weight_clip, g_loss, n):
    lr = 0.05 if opt_name == "sgd" else 0.01  # large enough that clipping is active
    rng = np.random.default_rng(7)
    G, D = build_generator(rng), build_discriminator(rng)
    opt = (lambda ps: SGD(ps, lr)) if opt_name == "sgd" else (lambda ps: Adam(ps, lr, (0.5, 0.999)))
    gan = NumpyGAN(G, D, opt([G.flat]), opt([D.flat]), g_loss, grad_clip=grad_clip, weight_clip=weight_clip)
    xs = [np.sin(rng.uniform(0, 1, (n, 1)) + 1.3 * np.arange(10)) * 0.6 for _ in range(30)]
    zs = [rng.normal(size=(n, 1)) for _ in range(30)]
    tG, tD = torch_iterations(gan, xs, zs, lr, opt_name, grad_clip, weight_clip, g_loss)
    start = {k: v.copy() for k, v in gan.G.state_dict().items()}
    for x, z in zip(xs, zs):
        gan.train_step(x, z)
    assert any(not np.allclose(start[k], v) for k, v in gan.G.state_dict().items())  # G did learn something
    for net, tnet in ((gan.G, tG), (gan.D, tD)):
        ref = to_torch(net)
        for a, b in zip(ref.parameters(), tnet.parameters()):
            assert rel_err(a.detach().numpy(), b.detach().numpy()) < 1e-9
    if weight_clip is not None:
        assert np.abs(gan.G.flat.data).max() <= weight_clip and np.abs(gan.D.flat.data).max() <= weight_clip


def test_gan_argument_errors():
    with pytest.raises(ConfigError, match="grad_clip"):
        make_gan(grad_clip=0.0)
    with pytest.raises(ConfigError, match="weight_clip"):
        make_gan(weight_clip=-1.0)
    with pytest.raises(ConfigError, match="Did you mean"):
        make_gan(g_loss="non-saturatin")
