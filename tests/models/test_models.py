"""Every model family builds, gives the documented shapes and respects its contract."""
import pytest
import torch

from ganland.errors import ConfigError
from ganland.models import MODELS
from ganland.models.dcgan import split_size
from ganland.models.layers import ConditionalBatchNorm
from ganland.models.resnet import SelfAttention

IMAGE_CASES = [
    ("dcgan", (1, 28, 28), {}),
    ("dcgan", (3, 32, 32), {"g_width": 8, "d_width": 8}),
    ("dcgan", (3, 64, 64), {"g_width": 4, "d_width": 4}),
    ("dcgan", (1, 48, 48), {"g_width": 4, "d_width": 4}),
    ("resnet", (1, 28, 28), {"g_width": 8, "d_width": 8}),
    ("resnet", (3, 32, 32), {"g_width": 8, "d_width": 8, "attention": 16}),
    ("resnet", (3, 64, 64), {"g_width": 4, "d_width": 4, "attention": 32, "g_spectral_norm": True}),
    ("resnet", (1, 48, 48), {"g_width": 4, "d_width": 4, "d_extra": 0}),
    ("seed000", (1, 28, 28), {"hidden": 16}),
    ("cgan-seed003", (1, 28, 28), {"g_depth": 16, "d_depth": 8}),
]


@pytest.mark.parametrize("family,shape,options", IMAGE_CASES)
def test_image_models_shapes(family, shape, options):
    torch.manual_seed(0)
    G, D = MODELS.get(family)(shape=shape, z_dim=12, n_classes=0, **options)
    z = torch.randn(4, 12)
    x = G(z)
    assert x.shape == (4, *shape)
    assert x.min() >= -1 and x.max() <= 1  # tanh output: the model range of images
    assert D(x).shape == (4,)


@pytest.mark.parametrize("family,cond", [("dcgan", "concat"), ("dcgan", "projection"), ("cgan-seed003", None),
                                         ("mlp", None), ("resnet", "cbn-projection")])
def test_conditional_models_use_the_label(family, cond):
    torch.manual_seed(0)
    shape = (2,) if family == "mlp" else (1, 28, 28)
    opts = {"cond": cond, "g_width": 8, "d_width": 8} if cond else {}
    if family == "resnet":
        opts.pop("cond")
    G, D = MODELS.get(family)(shape=shape, z_dim=8, n_classes=10, **opts)
    if family == "resnet":  # class gains start at 1 and biases at 0 (plain BN): give them values
        for m in G.modules():
            if isinstance(m, ConditionalBatchNorm):
                torch.nn.init.normal_(m.gain.weight, 0, 0.5), torch.nn.init.normal_(m.bias.weight, 0, 0.5)
    G.eval(), D.eval()
    z = torch.randn(3, 8)
    c0, c1 = torch.zeros(3, dtype=torch.long), torch.full((3,), 7)
    x0, x1 = G(z, c0), G(z, c1)
    assert x0.shape == (3, *shape)
    assert not torch.allclose(x0, x1)  # the label changes the sample
    assert D(x0, c0).shape == (3,)
    assert not torch.allclose(D(x0, c0), D(x0, c1))  # ... and D's verdict
    with pytest.raises(ValueError, match="conditional"):
        G(z)


def test_mlp_shapes_and_options():
    G, D = MODELS.get("mlp")(shape=(10,), z_dim=1, g_hidden=(10, 10), d_hidden=(10, 10), g_out="tanh",
                             d_act="leaky_relu", init="seed002-uniform")
    x = G(torch.randn(5, 1))
    assert x.shape == (5, 10) and x.abs().max() <= 1
    assert D(x).shape == (5,)
    # seed 002's init: every weight within sqrt(2 / (fan_in + fan_out))
    first = G.net[0]
    assert first.weight.abs().max() <= (2 / (1 + 10)) ** 0.5


def test_mlp_fourier_features_of_D_input():
    torch.manual_seed(3)
    G, D = MODELS.get("mlp")(shape=(2,), z_dim=2, d_hidden=(8,), d_fourier=16, d_fourier_scale=2.0, pack=2)
    x = torch.randn(6, 2)
    f = D.features(x)
    assert f.shape == (6, 2 + 32) and torch.equal(f[:, :2], x)  # the coordinates themselves, then sin and cos
    proj = 2 * torch.pi * (x @ D.features.B)
    assert torch.allclose(f[:, 2:18], torch.sin(proj), atol=1e-5) and torch.allclose(f[:, 18:], torch.cos(proj), atol=1e-5)
    assert D.features.B.std() > 1.0  # frequencies drawn with standard deviation 2
    assert D(x).shape == (3,)  # packs of 2 samples, each with its own features
    assert "features.B" in D.state_dict()  # the frequencies are saved: a resumed run keeps them
    x.requires_grad_(True)
    D(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # G's gradient goes through the features
    torch.manual_seed(3)
    _, again = MODELS.get("mlp")(shape=(2,), z_dim=2, d_hidden=(8,), d_fourier=16, d_fourier_scale=2.0, pack=2)
    assert torch.equal(again.features.B, D.features.B)  # the seed decides them
    with pytest.raises(ConfigError, match="d_fourier"):
        MODELS.get("mlp")(shape=(2,), z_dim=2, d_fourier=-1)


@pytest.mark.parametrize("prior", ["normal", "uniform"])
def test_mlp_latent_components_pick_codes_evenly(prior):
    torch.manual_seed(0)
    G, _ = MODELS.get("mlp")(shape=(2,), z_dim=3, g_hidden=(8,), g_components=10, g_component_dim=4, z_prior=prior)
    z = torch.randn(20000, 3) if prior == "normal" else torch.rand(20000, 3) * 2 - 1
    h = G.components(z)
    assert h.shape == (20000, 4 + 2) and torch.equal(h[:, 4:], z[:, 1:])  # the code, then the rest of z
    codes = G.components.codes.weight
    k = (h[:, :4, None] == codes.T[None]).all(1).float().argmax(1)  # which code each row got
    assert torch.equal(h[:, :4], codes[k])
    share = torch.bincount(k, minlength=10) / 20000
    assert (share - 0.1).abs().max() < 0.015  # each of the 10 codes about equally likely under the prior
    assert bool((k[z[:, 0].argsort()].diff() >= 0).all())  # z_0 sorted -> codes in order
    x = G(z[:6])
    assert x.shape == (6, 2)
    x.sum().backward()
    assert codes.grad is not None and codes.grad.abs().sum() > 0  # the codes are learned
    with pytest.raises(ConfigError, match="g_components"):
        MODELS.get("mlp")(shape=(2,), z_dim=1, g_components=10)


def test_dcgan_default_init_is_dcgan_normal():
    torch.manual_seed(0)
    G, D = MODELS.get("dcgan")(shape=(1, 28, 28), z_dim=100)
    w = G.up[0].weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002


@pytest.mark.parametrize("size,expected", [(28, (7, 2)), (32, (4, 3)), (64, (4, 4)), (48, (6, 3)), (96, (6, 4))])
def test_split_size(size, expected):
    assert split_size(size) == expected


@pytest.mark.parametrize("size", [30, 100, 14 * 3 + 1])
def test_split_size_rejects_odd_sizes(size):
    with pytest.raises(ConfigError, match="image_size"):
        split_size(size)


def test_wrong_data_kind_is_a_clear_error():
    with pytest.raises(ConfigError, match="vector data"):
        MODELS.get("mlp")(shape=(1, 28, 28), z_dim=4)
    with pytest.raises(ConfigError, match="images"):
        MODELS.get("dcgan")(shape=(2,), z_dim=4)
    with pytest.raises(ConfigError, match="28 x 28"):
        MODELS.get("seed000")(shape=(3, 32, 32), z_dim=4)


def test_seed000_layout_matches_the_seed():
    G, D = MODELS.get("seed000")(shape=(1, 28, 28), z_dim=100, hidden=256)
    assert G.l1.out_features == 256 * 7 * 7
    assert [m.out_channels for m in D.features if isinstance(m, torch.nn.Conv2d)] == [256, 512, 1024]
    assert D.fc4.in_features == 1024 * 3 * 3  # the 3 x 3 map D actually produces at 28 px
    assert G.up[3].bias is None  # nobias=True on the last transposed conv


def test_spectral_norm_bounds_every_D_layer():
    from ganland.build import build_models
    from ganland.config import load_config

    torch.manual_seed(0)
    cfg = load_config(None, {"model.spectral_norm": True, "model.options": {"g_width": 4, "d_width": 8,
                                                                             "d_batch_norm": False}})
    _, D = build_models(cfg, (1, 28, 28), 0)
    layers = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    D.train()
    for _ in range(30):  # power iterations run in training-mode forward passes
        D(torch.randn(2, 1, 28, 28))
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)


def test_resnet_starts_as_plain_batch_norm_and_identity_attention():
    """Conditional BN starts with gain 1 and bias 0 for every class, self-attention as the identity,
    and the orthogonal initialisation gives orthonormal rows (or columns)."""
    torch.manual_seed(0)
    G, D = MODELS.get("resnet")(shape=(1, 28, 28), z_dim=16, n_classes=10, g_width=8, d_width=8, attention=14)
    G.eval()
    z = torch.randn(4, 16)
    assert torch.equal(G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.full((4,), 9)))
    attn = [m for m in list(G.modules()) + list(D.modules()) if isinstance(m, SelfAttention)]
    assert len(attn) == 2 and all(m.gamma.item() == 0 for m in attn)
    x = torch.randn(2, attn[0].query.in_channels, 14, 14)
    assert torch.equal(attn[0](x), x)
    w = G.project.weight  # (out, in) with out > in: orthonormal columns
    assert torch.allclose(w.T @ w, torch.eye(w.shape[1]), atol=1e-5)


def test_dcgan_conditional_batch_norm_in_G_acts_per_class():
    """model.options.g_cond_bn: G's conv batch norms become conditional ones that start as plain BN
    (the label then enters through z's embedding only); one class's gain moves that class alone."""
    torch.manual_seed(0)
    G, _ = MODELS.get("dcgan")(shape=(1, 28, 28), z_dim=8, n_classes=10, cond="projection", g_width=8, d_width=8,
                               g_cond_bn=True)
    norms = [m for m in G.up if isinstance(m, ConditionalBatchNorm)]
    assert len(norms) == 1 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in G.up)  # 7 -> 14 -> 28
    assert torch.equal(norms[0].gain.weight, torch.zeros(10, 8)) and torch.equal(norms[0].bias.weight,
                                                                                  torch.zeros(10, 8))
    G.eval()
    z, c = torch.randn(6, 8), torch.tensor([0, 3, 3, 5, 9, 3])
    before = G(z, c)
    with torch.no_grad():
        norms[0].bias.weight[3] += 0.5  # class 3's bias only
    after = G(z, c)
    changed = (after - before).abs().flatten(1).amax(1) > 1e-4
    assert changed.tolist() == [False, True, True, False, False, True]
    with pytest.raises(ConfigError, match="model.conditional=true"):
        MODELS.get("dcgan")(shape=(1, 28, 28), z_dim=8, n_classes=0, g_cond_bn=True)


def test_resnet_self_attention_must_be_at_a_side_the_blocks_make():
    with pytest.raises(ConfigError, match="one of 14, 28"):
        MODELS.get("resnet")(shape=(1, 28, 28), z_dim=8, attention=16)
    with pytest.raises(ConfigError, match="model resnet cannot build images of side 30"):
        MODELS.get("resnet")(shape=(1, 30, 30), z_dim=8)


def test_resnet_discriminator_sums_over_positions_and_projects_the_label():
    """With the projection D, logit(x, c) - logit(x, c') = (embed(c) - embed(c')) . phi(x)."""
    torch.manual_seed(0)
    _, D = MODELS.get("resnet")(shape=(3, 32, 32), z_dim=8, n_classes=5, g_width=4, d_width=4)
    x = torch.randn(3, 3, 32, 32)
    h = x
    for block in D.blocks:
        h = block(h)
    phi = torch.relu(h).sum(dim=(2, 3))  # (N, C)
    c0, c1 = torch.zeros(3, dtype=torch.long), torch.full((3,), 4)
    diff = D(x, c1) - D(x, c0)
    expected = ((D.embed.weight[4] - D.embed.weight[0]) * phi).sum(dim=1)
    assert torch.allclose(diff, expected, atol=1e-5)
