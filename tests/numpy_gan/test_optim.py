"""SGD and Adam against torch.optim on the same gradients; gradient-norm and weight clipping."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganland.errors import ConfigError
from ganland.numpy_gan import (SGD, Adam, Parameter, PackedNormClipper, clip_grad_norms, clip_weights, pack)

from .gradcheck import rel_err


def twins(rng, shapes=((3, 4), (1, 4))):
    """NumPy Parameters and torch tensors with the same values."""
    params = [Parameter(f"p{i}", rng.normal(size=s)) for i, s in enumerate(shapes)]
    tensors = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    return params, tensors


@pytest.mark.parametrize("make,make_torch", [
    (lambda ps: SGD(ps, lr=0.1), lambda ts: torch.optim.SGD(ts, lr=0.1)),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ts: torch.optim.SGD(ts, lr=0.1, momentum=0.9)),
    (lambda ps: Adam(ps, lr=0.01, betas=(0.5, 0.999)), lambda ts: torch.optim.Adam(ts, lr=0.01, betas=(0.5, 0.999))),
    (lambda ps: Adam(ps, lr=0.003), lambda ts: torch.optim.Adam(ts, lr=0.003)),
])
def test_optimizers_match_torch(make, make_torch):
    rng = np.random.default_rng(0)
    params, tensors = twins(rng)
    opt, topt = make(params), make_torch(tensors)
    for _ in range(25):
        grads = [rng.normal(size=p.data.shape) for p in params]
        for p, t, g in zip(params, tensors, grads):
            p.grad[...] = g
            t.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for p, t in zip(params, tensors):
        assert rel_err(p.data, t.detach().numpy()) < 1e-12


def test_optimizers_on_a_packed_buffer_update_the_views():
    rng = np.random.default_rng(1)
    params = [Parameter("a", rng.normal(size=(2, 2))), Parameter("b", rng.normal(size=(1, 2)))]
    flat = pack(params)
    before = [p.data.copy() for p in params]
    flat.grad[:] = 1.0
    SGD([flat], lr=0.5).step()
    for p, b in zip(params, before):
        assert np.allclose(p.data, b - 0.5)


def test_clip_grad_norms_per_tensor():
    a, b = Parameter("a", np.zeros((2, 2))), Parameter("b", np.zeros((1, 2)))
    a.grad[...] = [[3.0, 0.0], [0.0, 4.0]]  # norm 5: clipped to 1
    b.grad[...] = [[0.3, 0.4]]  # norm 0.5: left alone
    norms = clip_grad_norms([a, b], 1.0)
    assert norms == pytest.approx([5.0, 0.5])
    assert np.allclose(a.grad, [[0.6, 0.0], [0.0, 0.8]]) and np.allclose(b.grad, [[0.3, 0.4]])


def test_packed_clipper_equals_per_tensor_clipping():
    rng = np.random.default_rng(2)
    shapes = [(3, 4), (1, 4), (4, 2), (1, 2)]
    for trial in range(20):
        ps = [Parameter(f"p{i}", np.zeros(s), is_bias=(i % 2 == 1)) for i, s in enumerate(shapes)]
        qs = [Parameter(f"q{i}", np.zeros(s), is_bias=(i % 2 == 1)) for i, s in enumerate(shapes)]
        flat = pack(ps)
        for p, q in zip(ps, qs):
            p.grad[...] = q.grad[...] = rng.normal(0, rng.uniform(0.01, 1), size=p.grad.shape)
        clip = [not p.is_bias for p in ps]
        sq = PackedNormClipper(flat, ps, clip, 0.2)()
        norms = clip_grad_norms([q for q, c in zip(qs, clip) if c], 0.2)
        assert np.allclose(np.sqrt(sq)[clip], norms)
        for p, q in zip(ps, qs):
            assert np.allclose(p.grad, q.grad)  # biases: untouched in both
    with pytest.raises(ConfigError, match="exactly the tensors"):
        PackedNormClipper(flat, ps[:2], [True, True], 0.2)


def test_clip_weights_bounds_every_entry():
    p = Parameter("w", np.array([[-3.0, -0.1, 0.0, 0.2, 9.0]]))
    clip_weights([p], 0.25)
    assert np.array_equal(p.data, [[-0.25, -0.1, 0.0, 0.2, 0.25]])


def test_optimizer_argument_errors():
    p = [Parameter("w", np.zeros(2))]
    for bad in (0, -1.0, float("nan"), "0.1"):
        with pytest.raises(ConfigError, match="learning rate"):
            SGD(p, lr=bad)
    with pytest.raises(ConfigError, match="momentum"):
        SGD(p, lr=0.1, momentum=1.0)
    with pytest.raises(ConfigError, match="betas"):
        Adam(p, betas=(1.0, 0.9))
    with pytest.raises(ConfigError, match="eps"):
        Adam(p, eps=0.0)
