"""ganland: train, evaluate and look at Generative Adversarial Networks, on PyTorch.

    import ganland
    run = ganland.train("fashion-dcgan", minutes=5)
    images = ganland.sample(run.run_dir, n=64)["images"]   # uint8 (64, 28, 28, 1)
"""
from .api import Generator, evaluate, export, load, resume, sample, train
from .config import Config, load_config
from .version import __version__

__all__ = ["train", "resume", "load", "sample", "export", "evaluate", "Generator", "Config", "load_config", "__version__"]
