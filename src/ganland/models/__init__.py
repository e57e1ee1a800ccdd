"""Model families. Each builds a (G, D) pair of plain nn.Modules:

    G(z, c=None) -> x (N, *shape)         D(x, c=None) -> logits (N,)

Families register a builder `build(shape, z_dim, n_classes, **options) -> (G, D)` in MODELS
(models/base.py); n_classes is 0 for unconditional models. Image-to-image families (unet) also
take `cond_shape`, the shape of their input images: c is then an image (N, *cond_shape), and D
returns one logit per patch (N * patches,).
"""
from .base import MODELS
from . import mlp, dcgan, resnet, seed_models, unet  # noqa: F401  (register the families)

__all__ = ["MODELS"]
