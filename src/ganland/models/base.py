"""The registry of model families (the families import it; `ganland.models` re-exports it).

Each family registers a builder `build(shape, z_dim, n_classes, **options) -> (G, D)` of plain
nn.Modules, G(z, c=None) -> x (N, *shape) and D(x, c=None) -> logits (N,); n_classes is 0 for
unconditional models.
"""
from ..registry import Registry

MODELS: Registry = Registry("model family")
