"""ganland: train, evaluate and look at Generative Adversarial Networks, on PyTorch.

    import ganland
    run = ganland.train("fashion-dcgan", minutes=5)
    images = ganland.sample(run.run_dir, n=64)["images"]   # uint8 (64, 28, 28, 1)
"""
__version__ = "0.1.0"

from .api import Generator, evaluate, load, resume, sample, train  # noqa: E402
from .config import Config, load_config  # noqa: E402

__all__ = ["train", "resume", "load", "sample", "evaluate", "Generator", "Config", "load_config", "__version__"]
