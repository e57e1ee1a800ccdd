"""The bundled domain feature networks: small CNN classifiers for 28x28 grayscale images.

`fashion-mnist-cnn` and `mnist-cnn` share one architecture (`ClassifierCNN`) and differ only in
their weights, which ship with ganland in `metrics/weights/<name>.safetensors`. The weights are
made by `tools/train_feature_nets.py`; docs/feature-nets.md gives the data, schedule, test
accuracies and speed. Every load checks the file's SHA-256 against the constant below, because
FID and friends are only comparable between runs that used the same network.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import load as load_safetensors
from torch import nn

from ..data.base import to_model_range
from ..data.idx import FASHION_MNIST, MNIST
from ..errors import CheckpointError, ConfigError
from .features import FEATURE_NETS, FeatureExtractor

INPUT_SHAPE = (1, 28, 28)  # (C, H, W) the networks take
FEATURE_DIM = 128  # width of the penultimate layer, the features the metrics use
EVAL_CHUNK = 64  # samples per fixed-size slice in eval mode (see ClassifierCNN.forward)
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

# SHA-256 of the bundled weights files, as printed by tools/train_feature_nets.py.
BUNDLED_SHA256 = {
    "fashion-mnist-cnn": "c15e71029bb4445a95b51a03f22fc14aa6f75030a6024c08c87aed11535243c9",  # test acc. 0.9340
    "mnist-cnn": "cb39d6192449953cb5c33d93bef463fad84d982d4d15366c1c3a4c7215a576a3",  # 2k test digits 0.9960
}
CLASS_NAMES = {"fashion-mnist-cnn": list(FASHION_MNIST.class_names), "mnist-cnn": list(MNIST.class_names)}


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    """3x3 convolution (same size) -> BatchNorm -> ReLU."""
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class ClassifierCNN(nn.Module):
    """A small classifier for 1x28x28 images in [-1, 1]; forward(x) -> (features, logits).

    conv 32 @28 -> pool -> conv 64 @14 -> conv 64 @14 -> pool -> conv 128 @7 -> pool (4x4)
    -> FC 128 (BN, ReLU: the features) -> FC n_classes (the logits). Dropout acts only in
    training and BatchNorm uses its running statistics in eval mode, so in eval mode every
    sample's output depends on that sample alone.
    """

    def __init__(self, n_classes: int = 10, dropout: float = 0.25):  # dropout: drop probability in training
        super().__init__()
        self.body = nn.Sequential(
            *_conv_block(1, 32), nn.MaxPool2d(2),  # (N, 32, 14, 14)
            *_conv_block(32, 64), *_conv_block(64, 64), nn.MaxPool2d(2),  # (N, 64, 7, 7)
            *_conv_block(64, 128), nn.MaxPool2d(2, ceil_mode=True),  # (N, 128, 4, 4); ceil keeps row/column 7
            nn.Flatten(),  # (N, 2048)
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(128 * 4 * 4, FEATURE_DIM, bias=False), nn.BatchNorm1d(FEATURE_DIM),
            nn.ReLU(inplace=True),  # (N, 128): the features
        )
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(FEATURE_DIM, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 1, 28, 28) float in [-1, 1] -> features (N, 128) >= 0, logits (N, n_classes).

        In eval mode the batch runs in slices of exactly EVAL_CHUNK samples (the last one padded
        with zeros): CPU kernels are chosen by batch size and differ in the last float32 bits, so
        fixed-size slices make every sample's outputs bit-identical whatever the caller's batch size.
        """
        check_input_shape(x)
        if self.training:
            return self._forward(x)
        n = len(x)
        if n == 0:
            return x.new_zeros((0, FEATURE_DIM)), x.new_zeros((0, self.classifier.out_features))
        x = torch.cat([x, x.new_zeros((-n % EVAL_CHUNK, *INPUT_SHAPE))])  # (ceil(N / chunk) * chunk, 1, 28, 28)
        outs = [self._forward(x[i:i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)]
        return torch.cat([f for f, _ in outs])[:n], torch.cat([logits for _, logits in outs])[:n]

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.head(self.body(x))  # (N, 128)
        return features, self.classifier(self.drop(features))  # (N, 128), (N, n_classes)


def check_input_shape(x: torch.Tensor) -> None:
    """ConfigError unless x is a batch (N, 1, 28, 28)."""
    if x.dim() != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
        got = " x ".join(map(str, x.shape[1:])) if x.dim() == 4 else f"shape {tuple(x.shape)}"
        raise ConfigError(
            f"the MNIST-class feature networks take grayscale images of 1 x 28 x 28 (C x H x W), got {got}; "
            "evaluate 28-pixel single-channel data (no image_size resize, no RGB), or choose another "
            "feature network"
        )


def preprocess(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 1, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1] (the training conversion)."""
    check_input_shape(x)
    return to_model_range(x)


# ---------------------------------------------------------------------------------------------
# Loading, with the hash check
# ---------------------------------------------------------------------------------------------
def bundled_path(name: str) -> Path:
    """Where the bundled weights of `name` live inside the installed package."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def _restore_hint(name: str) -> str:
    return (f"Restore it by reinstalling ganland (pip install --force-reinstall ganland; in a git checkout, "
            f"git checkout -- src/ganland/metrics/weights/{name}.safetensors), or rebuild it with "
            "`python tools/train_feature_nets.py` (bit-identical only with the same CPU and torch build; "
            "otherwise use it through weights=PATH, which records its own hash)")


def _read_metadata(data: bytes, path: Path) -> dict[str, str]:
    """The `__metadata__` of a safetensors file held in `data` ({} when it has none)."""
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        return dict(header.get("__metadata__") or {})
    except (struct.error, ValueError, AttributeError, TypeError) as e:
        raise CheckpointError(f"{path}: not a safetensors file ({e})") from None


def load_classifier_cnn(name: str, weights: Optional[str | os.PathLike] = None) -> FeatureExtractor:
    """FeatureExtractor for the bundled net `name` (hash-checked), or for the file `weights`.

    With `weights`, the extractor keeps `name` but records that file's own SHA-256, so scores
    made with it are told apart from scores made with the bundled network by their protocol.
    """
    bundled = weights is None
    path = bundled_path(name) if bundled else Path(weights)
    try:
        data = path.read_bytes()  # hashed and loaded from the same bytes
    except FileNotFoundError:
        if bundled:
            raise CheckpointError(f"the bundled weights of {name} are missing ({path}). " + _restore_hint(name)) from None
        raise CheckpointError(f"{path}: no such weights file for {name}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it: {e}") from None
    digest = hashlib.sha256(data).hexdigest()
    if bundled and digest != BUNDLED_SHA256[name]:
        raise CheckpointError(
            f"{path} is corrupted or modified: its SHA-256 is {digest}, the bundled {name} has "
            f"{BUNDLED_SHA256[name]}. Scores made with it would not be comparable. " + _restore_hint(name)
        )

    meta = _read_metadata(data, path)
    if meta.get("net", name) != name:
        raise CheckpointError(f"{path} holds the weights of {meta['net']!r}, not {name!r}; "
                              f"load it as FEATURE_NETS.get({meta['net']!r})")
    try:
        state = load_safetensors(data)  # plain tensors, no pickle
    except Exception as e:  # safetensors raises its own SafetensorError on malformed files
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    module = ClassifierCNN(n_classes=len(CLASS_NAMES[name]))
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:  # missing/unexpected keys or wrong shapes
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path}: the weights do not fit the {name} architecture ({first})") from None
    for p in module.parameters():
        p.requires_grad_(False)
    return FeatureExtractor(name=name, sha256=digest, module=module.eval(), preprocess=preprocess,
                            feature_dim=FEATURE_DIM, n_classes=len(CLASS_NAMES[name]),
                            class_names=list(CLASS_NAMES[name]))


@FEATURE_NETS.register("fashion-mnist-cnn", help="small CNN trained on Fashion-MNIST (128-d features, 10 classes), bundled")
def load_fashion_mnist_cnn(weights: Optional[str] = None) -> FeatureExtractor:
    """The bundled Fashion-MNIST classifier: features (N, 128), probabilities (N, 10)."""
    return load_classifier_cnn("fashion-mnist-cnn", weights)


@FEATURE_NETS.register("mnist-cnn", help="small CNN trained on a 10k MNIST subset (128-d features, 10 classes), bundled")
def load_mnist_cnn(weights: Optional[str] = None) -> FeatureExtractor:
    """The bundled MNIST classifier: features (N, 128), probabilities (N, 10)."""
    return load_classifier_cnn("mnist-cnn", weights)
