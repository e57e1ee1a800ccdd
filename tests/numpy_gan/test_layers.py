"""Every layer's hand-written backward pass against central finite differences and torch autograd
(float64, 1e-6 relative), and the seed's activation-derivative mistakes staying fixed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganland.errors import ConfigError
from ganland.numpy_gan import Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh, pack

from .gradcheck import TOL, away_from_kinks, central_diff, rel_err, to_torch, torch_grads

N, N_IN, N_OUT = 5, 4, 3


def probe(layer, x: np.ndarray, r: np.ndarray) -> float:
    """The scalar loss sum(layer(x) * r): its gradient with respect to the output is r."""
    return float(np.sum(layer.forward(x) * r))


def make_dense(rng, n_in=N_IN, n_out=N_OUT) -> Dense:
    return Dense.seed_uniform(n_in, n_out, rng, np.float64)


ACTIVATIONS = {
    "relu": (ReLU, torch.relu),
    "leaky_relu": (lambda: LeakyReLU(0.2), lambda t: torch.nn.functional.leaky_relu(t, 0.2)),
    "tanh": (Tanh, torch.tanh),
    "sigmoid": (Sigmoid, torch.sigmoid),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_backward_matches_finite_differences_and_torch(name):
    make, torch_fn = ACTIVATIONS[name]
    rng = np.random.default_rng(0)
    x = away_from_kinks(rng.normal(0, 2, (N, N_IN)))  # (N, N_IN), both signs
    r = rng.normal(size=(N, N_IN))
    layer = make()
    layer.forward(x)
    grad_x = layer.backward(r)

    numeric = central_diff(lambda: probe(layer, x, r), x)
    assert rel_err(grad_x, numeric) < TOL

    xt = torch.tensor(x, requires_grad=True)
    (torch_fn(xt) * torch.from_numpy(r)).sum().backward()
    assert rel_err(grad_x, xt.grad.numpy()) < 1e-12


def test_the_seeds_activation_derivatives_are_not_reproduced():
    """Seed 002's dReLU returned ReLU(x), and dTanh / dSigmoid were applied to outputs that were
    already activated. Here dReLU is the step, and the others come from the forward outputs."""
    x = np.array([[-2.0, -0.5, 0.5, 3.0]])
    ones = np.ones_like(x)
    relu = ReLU()
    relu.forward(x)
    assert np.array_equal(relu.backward(ones), [[0.0, 0.0, 1.0, 1.0]])  # the seed: [[0, 0, 0.5, 3]]
    tanh = Tanh()
    tanh.forward(x)
    assert np.allclose(tanh.backward(ones), 1 - np.tanh(x) ** 2)  # not 1 - tanh(tanh(x))^2
    sig = Sigmoid()
    s = 1 / (1 + np.exp(-x))
    sig.forward(x)
    assert np.allclose(sig.backward(ones), s * (1 - s))


def test_sigmoid_never_overflows():
    sig = Sigmoid()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = sig.forward(np.array([[-1000.0, -40.0, 0.0, 40.0, 1000.0]]))
    assert np.all(np.isfinite(y)) and y[0, 0] == 0.0 and y[0, 2] == 0.5 and y[0, -1] == 1.0


def test_dense_backward_matches_finite_differences_and_torch():
    rng = np.random.default_rng(1)
    layer = make_dense(rng)
    x, r = rng.normal(size=(N, N_IN)), rng.normal(size=(N, N_OUT))
    layer.forward(x)
    grad_x = layer.backward(r)
    grad_W, grad_b = layer.W.grad.copy(), layer.b.grad.copy()

    f = lambda: probe(layer, x, r)  # noqa: E731
    assert rel_err(grad_x, central_diff(f, x)) < TOL
    assert rel_err(grad_W, central_diff(f, layer.W.data)) < TOL
    assert rel_err(grad_b, central_diff(f, layer.b.data)) < TOL

    lin = to_torch(Sequential([layer]))
    xt = torch.tensor(x, requires_grad=True)
    (lin(xt) * torch.from_numpy(r)).sum().backward()
    tg = torch_grads(Sequential([layer]), lin)
    assert rel_err(grad_x, xt.grad.numpy()) < 1e-12
    assert rel_err(grad_W, tg["0.W"]) < 1e-12 and rel_err(grad_b, tg["0.b"]) < 1e-12


def test_dense_at_batch_one_and_without_gradients():
    rng = np.random.default_rng(2)
    layer = make_dense(rng)
    x, r = rng.normal(size=(1, N_IN)), rng.normal(size=(1, N_OUT))
    layer.forward(x)
    grad_x = layer.backward(r)
    assert np.allclose(layer.b.grad, r) and np.allclose(layer.W.grad, x.T @ r) and np.allclose(grad_x, r @ layer.W.data.T)
    before = layer.W.grad.copy()
    assert layer.backward(2 * r, param_grads=False, input_grad=False) is None
    assert np.array_equal(layer.W.grad, before)  # param_grads=False leaves the gradients alone


@pytest.mark.parametrize("out", ["tanh", "sigmoid"])
def test_sequential_backward_matches_finite_differences_and_torch(out):
    rng = np.random.default_rng(3)
    last = Tanh() if out == "tanh" else Sigmoid()
    net = Sequential([make_dense(rng, 3, 6), ReLU(), make_dense(rng, 6, 6), LeakyReLU(0.2), make_dense(rng, 6, 2), last])
    x, r = rng.normal(size=(N, 3)), rng.normal(size=(N, 2))
    net.forward(x)
    grad_x = net.backward(r)
    grads = {p.name: p.grad.copy() for p in net.parameters()}

    f = lambda: probe(net, x, r)  # noqa: E731
    assert rel_err(grad_x, central_diff(f, x)) < TOL
    for p in net.parameters():
        assert rel_err(grads[p.name], central_diff(f, p.data)) < TOL, p.name

    tnet = to_torch(net)
    xt = torch.tensor(x, requires_grad=True)
    (tnet(xt) * torch.from_numpy(r)).sum().backward()
    assert rel_err(grad_x, xt.grad.numpy()) < 1e-12
    for name, g in torch_grads(net, tnet).items():
        assert rel_err(grads[name], g) < 1e-12, name


def test_pack_makes_views_into_one_buffer():
    rng = np.random.default_rng(4)
    net = Sequential([make_dense(rng, 2, 3), ReLU(), make_dense(rng, 3, 1)])
    assert net.flat.data.size == 2 * 3 + 3 + 3 * 1 + 1
    net.flat.data[:] = 7.0  # writing the buffer writes every parameter
    assert all(np.all(p.data == 7.0) for p in net.parameters())
    net.forward(np.ones((4, 2)))
    net.backward(np.ones((4, 1)))
    assert np.array_equal(net.flat.grad, np.concatenate([p.grad.ravel() for p in net.parameters()]))
    with pytest.raises(ConfigError, match="no parameters"):
        pack([])


def test_state_dict_round_trip_and_errors():
    rng = np.random.default_rng(5)
    a = Sequential([make_dense(rng, 2, 3), Tanh(), make_dense(rng, 3, 1)])
    b = Sequential([make_dense(rng, 2, 3), Tanh(), make_dense(rng, 3, 1)])
    b.load_state_dict(a.state_dict())
    x = rng.normal(size=(4, 2))
    assert np.array_equal(a.forward(x), b.forward(x))
    with pytest.raises(ConfigError, match="expected the keys"):
        b.load_state_dict({"0.W": np.zeros((2, 3))})
    bad = a.state_dict()
    bad["0.W"] = np.zeros((3, 3))
    with pytest.raises(ConfigError, match="shape"):
        b.load_state_dict(bad)


def test_layer_argument_errors():
    with pytest.raises(ConfigError, match="slope"):
        LeakyReLU(1.5)
    with pytest.raises(ConfigError, match="W \\(n_in, n_out\\)"):
        Dense(np.zeros((2, 3)), np.zeros((1, 2)))
