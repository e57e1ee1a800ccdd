"""A from-scratch GAN engine in NumPy with hand-written backprop (seed 002), checked against autograd.

layers    Dense, ReLU, LeakyReLU, Tanh, Sigmoid, Sequential: mini-batch forward / backward
losses    bce / bce_grad with the seed's clamping; the G losses (non-saturating, minimax)
optim     SGD, Adam (torch's update rules), per-tensor gradient-norm clipping, weight clipping
gan       seed 002's G and D and its three-step iteration (NumpyGAN)
train     train_sine: the sine-signal run, its metrics and its run folder
cli       the `ganland numpy-sine` sub-command (add_parser, run_cli)

NumPy only: nothing here imports torch (the tests compare against torch).
"""
from .gan import NumpyGAN, build_discriminator, build_generator
from .layers import Dense, LeakyReLU, Parameter, ReLU, Sequential, Sigmoid, Tanh, pack
from .losses import EPS, G_LOSSES, bce, bce_grad, bce_with_grad
from .optim import OPTIMIZERS, SGD, Adam, PackedNormClipper, clip_grad_norms, clip_weights
from .train import SineConfig, SineResult, load_weights, make_config, sine_batch, train_sine

__all__ = [
    "Dense", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Sequential", "Parameter", "pack",
    "EPS", "G_LOSSES", "bce", "bce_grad", "bce_with_grad",
    "OPTIMIZERS", "SGD", "Adam", "PackedNormClipper", "clip_grad_norms", "clip_weights",
    "NumpyGAN", "build_generator", "build_discriminator",
    "SineConfig", "SineResult", "make_config", "sine_batch", "train_sine", "load_weights",
]
