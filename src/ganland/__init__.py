"""ganland: train, evaluate and look at Generative Adversarial Networks."""
__version__ = "0.1.0"
