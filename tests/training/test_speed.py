"""The speed settings (config section `speed`): each one trains, and none changes what is trained."""
import pytest
import torch

from ganland.config import load_config
from ganland.errors import ConfigError
from ganland.losses import LOSSES
from ganland.training.checkpoint import list_checkpoints, load_checkpoint
from ganland.device import autocast_for as _autocast
from ganland.training.loop import Trainer
from ganland.training.runs import train
from ganland.training.step import StepSettings, d_step, g_step
from ganland.config import OptimizerConfig

TINY = {
    "data.name": "mnist", "model.name": "dcgan", "model.z_dim": 8,
    "model.options": {"g_width": 4, "d_width": 4}, "train.batch_size": 16, "train.log_every": 2,
    "train.sample_every": 0, "train.progress": False, "train.heldout_batches": 1, "train.steps": 4,
}


def tiny(fake_mnist, **extra):
    return load_config(None, {**TINY, "data.root": str(fake_mnist), **extra})


def final_weights(run):
    return load_checkpoint(list_checkpoints(run)[0])["G"]


@pytest.mark.parametrize("extra", [
    {"speed.reuse_fake": False}, {"speed.channels_last": False}, {"speed.amp": "bf16"},
    {"speed.threads": 1}, {"train.n_critic": 2},  # n_critic 2: reuse_fake does not apply
])
@pytest.mark.e2e
def test_each_setting_trains(fake_mnist, tmp_path, extra):
    res = train(tiny(fake_mnist, **extra), str(tmp_path / "run"))
    assert res.step == 4
    assert all(torch.isfinite(v).all() for v in final_weights(res.run_dir).values() if v.is_floating_point())


@pytest.mark.e2e
def test_channels_last_is_the_same_computation(fake_mnist, tmp_path):
    """NHWC changes the memory layout only: the weights after a few steps agree to rounding."""
    a = train(tiny(fake_mnist, **{"speed.channels_last": True}), str(tmp_path / "a")).run_dir
    b = train(tiny(fake_mnist, **{"speed.channels_last": False}), str(tmp_path / "b")).run_dir
    wa, wb = final_weights(a), final_weights(b)
    for k in wa:
        torch.testing.assert_close(wa[k].float(), wb[k].float(), rtol=1e-4, atol=1e-5)


def test_channels_last_default_follows_the_data(fake_mnist, tmp_path):
    assert Trainer(tiny(fake_mnist), tmp_path / "img").channels_last is True
    toy = load_config("gaussian-1d", {"train.progress": False})
    assert Trainer(toy, tmp_path / "toy").channels_last is False


class Conditionless(torch.nn.Module):
    """A layer with the (x, c) signature of ganland's models; c is ignored."""

    def __init__(self, layer, squeeze=False):
        super().__init__()
        self.layer, self.squeeze = layer, squeeze

    def forward(self, x, c=None):
        y = self.layer(x)
        return y.squeeze(1) if self.squeeze else y


def test_reused_fake_batch_gives_the_same_updates():
    """With x_fake given, D's step sees it detached and G's step backpropagates through it: the same
    updates as making the fake batch inside each step from the same z."""
    torch.manual_seed(0)
    G = Conditionless(torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh()))
    D = Conditionless(torch.nn.Linear(5, 1), squeeze=True)
    g0 = {k: v.clone() for k, v in G.state_dict().items()}
    d0 = {k: v.clone() for k, v in D.state_dict().items()}
    sgd = OptimizerConfig(name="sgd", lr=0.1)
    s = StepSettings(LOSSES.get("non-saturating"), sgd, sgd)
    x, z = torch.randn(8, 5), torch.randn(8, 3)

    def run(reuse):
        G.load_state_dict(g0)
        D.load_state_dict(d0)
        opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
        fake = G(z) if reuse else None
        d_step(G, D, opt_D, s, x, None, z, None, torch.Generator(), x_fake=fake)
        g_step(G, D, opt_G, s, None if reuse else z, None, x_fake=fake)
        return [p.detach().clone() for p in (*G.parameters(), *D.parameters())]

    after_reuse, after_fresh = run(True), run(False)
    assert not torch.equal(after_reuse[0], g0["layer.0.weight"])  # G did move
    for a, b in zip(after_reuse, after_fresh):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)


def test_amp_choices(fake_mnist):
    assert _autocast("auto", torch.device("cpu")) is None
    assert _autocast("fp32", torch.device("cuda")) is None
    assert _autocast("auto", torch.device("cuda")) == ("cuda", torch.bfloat16)
    assert _autocast("bf16", torch.device("cpu")) == ("cpu", torch.bfloat16)
    with pytest.raises(ConfigError, match="speed.amp must be one of"):
        tiny(fake_mnist, **{"speed.amp": "fp8"})
    with pytest.raises(ConfigError, match="speed.threads"):
        tiny(fake_mnist, **{"speed.threads": -1})


def test_fused_adam_is_the_same_update():
    """The fused Adam kernel (the default on CPU and CUDA) takes the same steps as the plain one,
    weight decay included, to rounding; `fast=False` keeps the per-tensor loop."""
    from ganland.build import build_optimizer

    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Linear(7, 3)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    o = OptimizerConfig(name="adam", lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-3)
    fast, plain = build_optimizer(nets[0], o), build_optimizer(nets[1], o, fast=False)
    assert fast.defaults["fused"] and not plain.defaults["fused"] and not plain.defaults["foreach"]
    x = torch.randn(16, 5)
    for _ in range(20):
        for net, opt in zip(nets, (fast, plain)):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
