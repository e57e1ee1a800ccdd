"""The training step: clipping rules, and one step for every registered model x loss."""
import pytest
import torch

from ganland.build import build_models, build_optimizer
from ganland.config import OptimizerConfig, load_config
from ganland.losses import LOSSES
from ganland.models import MODELS
from ganland.training.step import StepSettings, clip_and_step, d_step, g_step

SMALL = {
    "mlp": ((2,), {}),
    "dcgan": ((1, 28, 28), {"g_width": 4, "d_width": 4}),
    "resnet": ((1, 28, 28), {"g_width": 4, "d_width": 4, "attention": 14}),
    "seed000": ((1, 28, 28), {"hidden": 4}),
    "cgan-seed003": ((1, 28, 28), {"g_depth": 8, "d_depth": 4}),
    "unet": ((1, 28, 28), {"g_width": 4, "d_width": 4}),
}
INPUTS = {"unet": (1, 28, 28)}  # image-to-image models: the shape of their input images


def test_every_model_family_is_covered():
    assert set(MODELS.names()) == set(SMALL)


@pytest.mark.parametrize("family", sorted(SMALL))
@pytest.mark.parametrize("loss_name", LOSSES.names())
def test_one_step_for_every_model_and_loss(family, loss_name):
    torch.manual_seed(0)
    shape, options = SMALL[family]
    cfg = load_config(None, {"model.name": family, "model.z_dim": 4, "model.options": options, "loss.name": loss_name})
    G, D = build_models(cfg, shape, 0, INPUTS.get(family))
    opt_G, opt_D = build_optimizer(G, cfg.optim.G), build_optimizer(D, cfg.optim.D)
    s = StepSettings(LOSSES.get(loss_name), cfg.optim.G, cfg.optim.D)
    x = torch.rand(8, *shape) * 2 - 1
    c = torch.rand(8, *INPUTS[family]) * 2 - 1 if family in INPUTS else None  # each real image's input
    gen = torch.Generator().manual_seed(0)
    before_G = [p.detach().clone() for p in G.parameters()]
    before_D = [p.detach().clone() for p in D.parameters()]
    out_d = d_step(G, D, opt_D, s, x, c, torch.randn(8, 4), c, gen, want_norm=True)
    assert all(torch.isfinite(v) for v in out_d.values())
    assert all(torch.equal(a, b) for a, b in zip(before_G, G.parameters()))  # D's step leaves G alone
    assert any(not torch.equal(a, b) for a, b in zip(before_D, D.parameters()))
    before_D = [p.detach().clone() for p in D.parameters()]
    out_g = g_step(G, D, opt_G, s, torch.randn(8, 4), c, want_norm=True, x_real=x, c_real=c)
    assert torch.isfinite(out_g["loss_G"]) and out_g["grad_norm_G"] > 0
    assert all(torch.equal(a, b) for a, b in zip(before_D, D.parameters()))  # G's step leaves D alone
    assert any(not torch.equal(a, b) for a, b in zip(before_G, G.parameters()))
    assert all(p.requires_grad for p in D.parameters())  # D is unfrozen again


def test_weight_clipping_bounds_every_D_parameter():
    torch.manual_seed(0)
    cfg = load_config(None, {"model.name": "dcgan", "model.z_dim": 4, "model.options": {"g_width": 4, "d_width": 4},
                             "loss.name": "wasserstein", "optim.D.weight_clip": 0.01, "optim.D.lr": 0.5})
    G, D = build_models(cfg, (1, 28, 28), 0)
    opt_D = build_optimizer(D, cfg.optim.D)
    s = StepSettings(LOSSES.get("wasserstein"), cfg.optim.G, cfg.optim.D)
    for _ in range(3):
        d_step(G, D, opt_D, s, torch.rand(8, 1, 28, 28), None, torch.randn(8, 4), None, torch.Generator())
    params = list(D.parameters())
    assert all(p.abs().max() <= 0.01 for p in params)
    assert max(p.abs().max().item() for p in params) == pytest.approx(0.01)  # the clip was active


def test_gradient_clipping_global_and_per_tensor():
    lin = torch.nn.Linear(3, 2)
    for per_tensor in (False, True):
        for p in lin.parameters():
            p.grad = torch.full_like(p, 10.0)
        o = OptimizerConfig(name="sgd", lr=1.0, grad_clip=0.2, grad_clip_per_tensor=per_tensor)
        opt = torch.optim.SGD(lin.parameters(), lr=0.0)  # lr 0: look at the clipped gradients only
        norm = clip_and_step(lin, opt, o, want_norm=True)
        norms = [p.grad.norm().item() for p in lin.parameters()]
        total = sum(n ** 2 for n in norms) ** 0.5
        assert norm.item() == pytest.approx((8 * 100) ** 0.5, rel=1e-5)  # 8 entries of 10, before clipping
        if per_tensor:
            assert norms == pytest.approx([0.2, 0.2], rel=1e-5)
        else:
            assert total == pytest.approx(0.2, rel=1e-5)


def test_conditional_step_with_gradient_penalty():
    torch.manual_seed(0)
    cfg = load_config(None, {"model.name": "dcgan", "model.z_dim": 4, "model.conditional": True,
                             "model.options": {"g_width": 4, "d_width": 4, "d_batch_norm": False,
                                               "cond": "projection"},
                             "loss.name": "wasserstein", "loss.gp_weight": 10.0})
    G, D = build_models(cfg, (1, 28, 28), 10)
    s = StepSettings(LOSSES.get("wasserstein"), cfg.optim.G, cfg.optim.D, gp_weight=10.0)
    c = torch.arange(8) % 10
    out = d_step(G, D, build_optimizer(D, cfg.optim.D), s, torch.rand(8, 1, 28, 28), c, torch.randn(8, 4), c,
                 torch.Generator())
    assert out["gp"] > 0


@pytest.mark.parametrize("family", ["dcgan", "resnet"])
def test_auxiliary_classifier_on_projection_scores_hand_values(family):
    torch.manual_seed(0)
    options = {**SMALL[family][1], "cond": "projection", "d_batch_norm": False} if family == "dcgan" else \
        SMALL[family][1]
    cfg = load_config(None, {"model.name": family, "model.z_dim": 4, "model.conditional": True,
                             "model.options": options, "loss.ac_weight": 0.5})
    G, D = build_models(cfg, (1, 28, 28), 3)
    x, c = torch.rand(6, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2])
    logits, scores = D(x, c, classes=True)
    assert scores.shape == (6, 3) and torch.allclose(logits, D(x, c), atol=1e-5)  # the same logit either way
    # the scores are phi . embed_k for every class k: the projection term of each label in turn
    for k in range(3):
        ck = torch.full_like(c, k)
        assert torch.allclose(D(x, ck) - D(x, (ck + 1) % 3), scores[:, k] - scores[:, (k + 1) % 3], atol=1e-4)

    loss = LOSSES.get("non-saturating")
    sgd = OptimizerConfig(name="sgd", lr=0.0)  # no update: the logged values are those of these weights
    s = StepSettings(loss, sgd, sgd, ac_weight=0.5)
    z = torch.randn(6, 4)
    out = d_step(G, D, build_optimizer(D, sgd), s, x, c, z, c, torch.Generator())
    with torch.no_grad():
        real_logits, real_scores = D(x, c, classes=True)
        fake = G(z, c)
        ce = -torch.log_softmax(real_scores, 1)[torch.arange(6), c].mean()  # by hand
        expect_d = loss.d_loss(real_logits, D(fake, c)) + 0.5 * ce
    assert out["ac_D"] == pytest.approx(ce.item(), rel=1e-4)
    assert out["loss_D"] == pytest.approx(loss.d_loss(real_logits, D(fake, c)).item(), rel=1e-4)

    out = g_step(G, D, build_optimizer(G, sgd), s, z, c)
    with torch.no_grad():
        fake_logits, fake_scores = D(G(z, c), c, classes=True)
        ce_g = -torch.log_softmax(fake_scores, 1)[torch.arange(6), c].mean()
    assert out["ac_G"] == pytest.approx(ce_g.item(), rel=1e-4)
    assert out["loss_G"] == pytest.approx((loss.g_loss(fake_logits, None) + 0.5 * ce_g).item(), rel=1e-4)
    assert expect_d > 0


def test_auxiliary_classifier_needs_a_projection_D():
    from ganland.errors import ConfigError
    for overrides in ({"model.conditional": False}, {"model.conditional": True, "model.options.cond": "concat"}):
        cfg = load_config(None, {"model.name": "dcgan", "model.z_dim": 4, "loss.ac_weight": 1.0,
                                 "model.options": {"g_width": 4, "d_width": 4}, **overrides})
        with pytest.raises(ConfigError, match="loss.ac_weight"):
            build_models(cfg, (1, 28, 28), 10)
