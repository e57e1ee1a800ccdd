"""The image-to-image models: U-Net G and PatchGAN D."""
import pytest
import torch

from ganland.errors import ConfigError
from ganland.models import MODELS
from ganland.models.unet import auto_depth


def build(shape=(1, 28, 28), cond=(1, 28, 28), **options):
    return MODELS.get("unet")(shape, 8, 0, cond, **{"g_width": 8, "d_width": 8, **options})


@pytest.mark.parametrize("shape,cond", [((1, 28, 28), (1, 28, 28)), ((3, 32, 32), (4, 32, 32)),
                                        ((3, 64, 64), (3, 64, 64))])
def test_shapes_and_every_parameter_gets_a_gradient(shape, cond):
    G, D = build(shape, cond)
    c = torch.rand(4, *cond) * 2 - 1
    if cond[0] == shape[0] + 1:  # (image, mask): the mask channel is 0/1
        c[:, -1] = (c[:, -1] > 0).float()
    x = G(torch.randn(4, 8), c)
    assert x.shape == (4, *shape) and x.abs().max() <= 1
    logits = D(x, c)
    patches = (shape[1] // 4) * (shape[2] // 4)  # two stride-2 layers by default
    assert logits.shape == (4 * patches,)
    logits.mean().backward()
    for net in (G, D):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_z_is_ignored_and_the_model_is_fully_convolutional():
    G, _ = build()
    G.eval()
    c = torch.rand(2, 1, 28, 28)
    assert torch.equal(G(torch.randn(2, 8), c), G(torch.randn(2, 8), c))
    assert G(None, torch.rand(1, 1, 16, 20)).shape == (1, 1, 16, 20)  # any multiple of 2^depth
    with pytest.raises(ConfigError, match="multiples of 4"):
        G(None, torch.rand(1, 1, 18, 20))


def test_inpainting_keeps_the_known_pixels():
    G, _ = build(cond=(2, 28, 28))
    image = torch.rand(3, 1, 28, 28) * 2 - 1
    mask = torch.zeros(3, 1, 28, 28)
    mask[:, :, 5:15, 8:20] = 1
    out = G(None, torch.cat([image * (1 - mask), mask], dim=1))
    assert torch.equal(out[mask == 0], image[mask == 0])
    assert not torch.equal(out[mask == 1], torch.zeros(int(mask.sum())))
    G2, _ = build(cond=(2, 28, 28), keep_known=False)
    assert not torch.equal(G2(None, torch.cat([image * (1 - mask), mask], dim=1))[mask == 0], image[mask == 0])


def test_depth_and_clear_errors():
    assert auto_depth(28, 28) == 2 and auto_depth(64, 64) == 3 and auto_depth(7, 7) == 0
    with pytest.raises(ConfigError, match="set data.degrade"):
        MODELS.get("unet")((1, 28, 28), 8, 0, None)
    with pytest.raises(ConfigError, match="model.conditional=false"):
        MODELS.get("unet")((1, 28, 28), 8, 10, (1, 28, 28))
    with pytest.raises(ConfigError, match="depth=3 does not fit 28x28"):
        build(depth=3)
    with pytest.raises(ConfigError, match="needs images"):
        MODELS.get("unet")((2,), 8, 0, (2,))
