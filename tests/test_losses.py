"""Loss values against hand computation; the gradient penalty per sample; R1."""
import math

import pytest
import torch
from torch import nn

from ganland.losses import LOSSES, consistency_penalty, gradient_penalty, r1_penalty, r2_penalty

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.5])


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def mean(xs):
    return sum(xs) / len(xs)


# Hand-written formulas on plain Python floats, one per loss: (d_loss, g_loss).
HAND = {
    "minimax": (
        mean([-math.log(sig(r)) for r in REAL.tolist()]) + mean([-math.log(1 - sig(f)) for f in FAKE.tolist()]),
        mean([math.log(1 - sig(f)) for f in FAKE.tolist()]),
    ),
    "non-saturating": (
        mean([-math.log(sig(r)) for r in REAL.tolist()]) + mean([-math.log(1 - sig(f)) for f in FAKE.tolist()]),
        mean([-math.log(sig(f)) for f in FAKE.tolist()]),
    ),
    "least-squares": (
        mean([(r - 1) ** 2 for r in REAL.tolist()]) + mean([f ** 2 for f in FAKE.tolist()]),
        mean([(f - 1) ** 2 for f in FAKE.tolist()]),
    ),
    "wasserstein": (
        -mean(REAL.tolist()) + mean(FAKE.tolist()),
        -mean(FAKE.tolist()),
    ),
    "hinge": (
        mean([max(0.0, 1 - r) for r in REAL.tolist()]) + mean([max(0.0, 1 + f) for f in FAKE.tolist()]),
        -mean(FAKE.tolist()),
    ),
    # RpGAN: the i-th real against the i-th fake, -log sigmoid(difference), both ways.
    "rpgan": (
        mean([-math.log(sig(r - f)) for r, f in zip(REAL.tolist(), FAKE.tolist())]),
        mean([-math.log(sig(f - r)) for r, f in zip(REAL.tolist(), FAKE.tolist())]),
    ),
}
PAIRED = {"rpgan"}  # their d_real + d_fake is the held-out report's logistic proxy, not the loss


def test_every_registered_loss_has_a_hand_computed_check():
    assert set(LOSSES.names()) == set(HAND)


@pytest.mark.parametrize("name", sorted(HAND))
def test_loss_values_match_hand_computation(name):
    loss = LOSSES.get(name)
    d_hand, g_hand = HAND[name]
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d_hand, rel=1e-6)
    assert loss.g_loss(FAKE, REAL).item() == pytest.approx(g_hand, rel=1e-6)
    assert loss.needs_real_in_g == (name in PAIRED)
    if name in PAIRED:
        with pytest.raises(ValueError, match="pass real_logits"):
            loss.g_loss(FAKE)
        # The pairing matters: reversing the fakes changes the value (a per-term loss would not notice).
        assert loss.d_loss(REAL, FAKE.flip(0)).item() != pytest.approx(d_hand, rel=1e-3)
    else:
        assert loss.g_loss(FAKE).item() == pytest.approx(g_hand, rel=1e-6)
        assert loss.d_real(REAL).item() + loss.d_fake(FAKE).item() == pytest.approx(d_hand, rel=1e-6)


def test_probabilistic_losses_stay_finite_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    for name in ("minimax", "non-saturating"):
        loss = LOSSES.get(name)
        assert torch.isfinite(loss.d_loss(big, big)) and torch.isfinite(loss.g_loss(big))


def test_minimax_saturates_and_non_saturating_does_not():
    # When D confidently rejects fakes (logit -10), minimax gives G almost no gradient.
    logits = torch.full((4,), -10.0, requires_grad=True)
    (g_mm,) = torch.autograd.grad(LOSSES.get("minimax").g_loss(logits), logits)
    (g_ns,) = torch.autograd.grad(LOSSES.get("non-saturating").g_loss(logits), logits)
    assert g_mm.abs().max() < 1e-4 < 0.2 < g_ns.abs().min()


class Quadratic(nn.Module):
    """D(x) = sum_j a_j x_j^2 per sample: grad = 2 a x, known in closed form."""

    def __init__(self, dim):
        super().__init__()
        self.a = nn.Parameter(torch.linspace(0.5, 1.5, dim))

    def forward(self, x, c=None):
        return (self.a * x.flatten(1) ** 2).sum(1)


def test_gradient_penalty_interpolates_per_sample_and_matches_closed_form():
    torch.manual_seed(0)
    n, shape = 6, (2, 3, 3)
    real, fake = torch.randn(n, *shape), torch.randn(n, *shape)
    D = Quadratic(18)
    gen = torch.Generator().manual_seed(5)
    gp = gradient_penalty(D, real, fake, None, gen)

    # The same eps the function drew: one number per sample.
    eps = torch.rand(n, generator=torch.Generator().manual_seed(5))
    x_hat = eps.view(-1, 1, 1, 1) * real + (1 - eps.view(-1, 1, 1, 1)) * fake
    grad = 2 * D.a * x_hat.flatten(1)
    expected = ((grad.norm(dim=1) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)

    # A per-pixel eps would give a different value: the test can tell the two apart.
    eps_pix = torch.rand(n, *shape, generator=torch.Generator().manual_seed(5))
    x_pix = eps_pix * real + (1 - eps_pix) * fake
    wrong = (((2 * D.a * x_pix.flatten(1)).norm(dim=1) - 1) ** 2).mean()
    assert abs(wrong.item() - expected.item()) > 1e-3


def test_gradient_penalty_gradient_reaches_D_parameters_correctly():
    torch.manual_seed(1)
    real, fake = torch.randn(5, 4), torch.randn(5, 4)
    D = Quadratic(4)
    gp = gradient_penalty(D, real, fake, None, torch.Generator().manual_seed(3))
    (g_auto,) = torch.autograd.grad(gp, D.a)

    eps = torch.rand(5, generator=torch.Generator().manual_seed(3)).view(-1, 1)
    x = (eps * real + (1 - eps) * fake).double()
    a = D.a.detach().double()
    # d/da mean((||2 a x|| - 1)^2) = mean(2 (||g|| - 1) / ||g|| * 2 a (2x)^2 ... ) per component:
    g = 2 * a * x  # (N, 4)
    norm = g.norm(dim=1, keepdim=True)
    dnorm_da = (g / norm) * (2 * x)  # d||g||/da_j = g_j / ||g|| * 2 x_j
    expected = (2 * (norm - 1) * dnorm_da).mean(0)
    assert torch.allclose(g_auto.double(), expected, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    D = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[0.6, 0.8, 0.0]]))  # |grad| = 1 everywhere
    wrapped = lambda x, c=None: D(x).squeeze(1)  # noqa: E731
    gp = gradient_penalty(wrapped, torch.randn(8, 3), torch.randn(8, 3), None, torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


def test_r1_penalty_matches_closed_form():
    torch.manual_seed(2)
    real = torch.randn(7, 5)
    D = Quadratic(5)
    expected = ((2 * D.a * real) ** 2).sum(1).mean()
    assert r1_penalty(D, real, None).item() == pytest.approx(expected.item(), rel=1e-5)


def test_r2_penalty_matches_closed_form_on_fakes():
    torch.manual_seed(3)
    fake = torch.randn(6, 4)
    D = Quadratic(4)
    expected = ((2 * D.a * fake) ** 2).sum(1).mean()
    assert r2_penalty(D, fake, None).item() == pytest.approx(expected.item(), rel=1e-5)
    (grad,) = torch.autograd.grad(r2_penalty(D, fake, None), D.a)  # differentiable in D's weights
    expected_grad = (8 * D.a.detach() * fake ** 2).mean(0)  # d/da_j mean_i sum_j (2 a_j x_ij)^2
    assert torch.allclose(grad, expected_grad, rtol=1e-5)


def test_consistency_penalty_by_hand():
    a, b = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, -1.0, 2.5])
    assert consistency_penalty(a, b).item() == pytest.approx((1 + 1 + 4) / 3)
    assert consistency_penalty(a, a).item() == 0.0


def test_each_loss_declares_whether_it_needs_a_lipschitz_constraint():
    from ganland.build import check_config
    from ganland.config import load_config
    from ganland.errors import ConfigError

    assert {name for name in LOSSES if LOSSES.get(name).needs_lipschitz} == {"wasserstein"}
    base = {"data.name": "ring", "model.name": "mlp", "train.steps": 1}
    for name in LOSSES:
        cfg = load_config(None, {**base, "loss.name": name})
        if LOSSES.get(name).needs_lipschitz:
            with pytest.raises(ConfigError, match=f"loss {name} needs a Lipschitz constraint"):
                check_config(cfg)
            check_config(load_config(None, {**base, "loss.name": name, "model.spectral_norm": True}))
        else:
            check_config(cfg)
