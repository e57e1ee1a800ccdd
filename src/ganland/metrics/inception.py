"""The Inception-v3 of the reference FID code, from a local weights file (`inception-v3-fid`).

FID is defined on the pool3 features (2048-d, after the last average pool) of the Inception-v3
graph TensorFlow published in 2015 (`inception-2015-12-05.tgz`). The `pytorch-fid` package ships
those weights as `pt_inception-2015-12-05-6726825d.pth` and builds a network around them that
differs from torchvision's ImageNet Inception-v3 in four places, all reproduced here:

- the average-pool branches of the A, C and first E blocks ignore the zero padding
  (`count_include_pad=False`, as TensorFlow's average pool does);
- the pool branch of the last E block (Mixed_7c) uses a max pool, not an average pool;
- no auxiliary classifier; the classifier has 1008 outputs (class 0 is a background class and
  1001-1007 are unused);
- every BatchNorm has eps = 0.001 (as torchvision's Inception too).

The module and parameter names are those of that weights file, so it loads with strict=True.
Nothing here downloads: the user provides the file (see `docs/inception.md`).

Class probabilities: softmax over all 1008 outputs of pool3 @ fc.weight.T, *without* the fc
bias, exactly as the original Inception Score code (openai/improved-gan, `inception_score/
model.py`) computes them from the same graph; an Inception Score computed from them is the
standard IS, up to the resize difference explained in `fid_inception_preprocess`.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..data.sources import cache_root, sha256_file
from ..errors import ConfigError
from .features import FEATURE_NETS, FeatureExtractor

NAME = "inception-v3-fid"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_FILE
# torch.hub convention: the name ends in "-<first hex digits of the file's SHA-256>.pth". The full
# digest (and the size, 95,628,359 bytes) is the one several independent projects pin for this file;
# torch-fidelity's `weights-inception-2015-12-05-6726825d.pth` is reported to be the same bytes.
WEIGHTS_SHA256_PREFIX = "6726825d"
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
TORCH_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"
ENV_VAR = "GANLAND_INCEPTION_WEIGHTS"
INPUT_SIZE = 299  # pixels; the network's input is (N, 3, 299, 299)
FEATURE_DIM = 2048  # pool3
N_CLASSES = 1008  # outputs of the classifier in the weights file (0 = background, 1001-1007 unused)
BN_EPS = 1e-3  # BatchNorm epsilon of the TensorFlow graph


# ----------------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------------

class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm(eps 0.001) -> ReLU; parameters `conv.weight`, `bn.*`."""

    def __init__(self, c_in: int, c_out: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3_same(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's SAME average pool divides by the number of real (unpadded) pixels in the window.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool_3x3_same(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 -> 224 + pool_features channels."""

    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_avg_pool_3x3_same(x))
        return torch.cat([a, b, c, d], dim=1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2 -> 480 + c_in channels."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], dim=1)


class InceptionC(nn.Module):
    """17x17 block (Mixed_6b..e) with factorised 7x7 convolutions -> 768 channels."""

    def __init__(self, c_in: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = conv(c)
        d = self.branch_pool(_avg_pool_3x3_same(x))
        return torch.cat([a, b, c, d], dim=1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2 -> 512 + c_in channels."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], dim=1)


class InceptionE(nn.Module):
    """8x8 block (Mixed_7b, Mixed_7c) with split 1x3/3x1 convolutions -> 2048 channels.

    pool: "avg" (Mixed_7b, padding-excluding average) or "max" (Mixed_7c of the FID graph).
    """

    def __init__(self, c_in: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = _avg_pool_3x3_same if pool == "avg" else _max_pool_3x3_same
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], dim=1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], dim=1)
        d = self.branch_pool(self.pool(x))
        return torch.cat([a, b, c, d], dim=1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 of TensorFlow's FID graph. forward(x (N, 3, 299, 299) in [-1, 1]) ->
    (pool3 features (N, 2048), logits (N, 1008) without the fc bias, see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, N_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # stem: (N, 3, 299, 299) -> (N, 192, 35, 35)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (N, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (N, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 192, 35, 35)
        # inception blocks
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))  # (N, 288, 35, 35)
        x = self.Mixed_6a(x)  # (N, 768, 17, 17)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))  # (N, 768, 17, 17)
        x = self.Mixed_7a(x)  # (N, 1280, 8, 8)
        x = self.Mixed_7c(self.Mixed_7b(x))  # (N, 2048, 8, 8)
        features = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (N, 2048) pool3
        # The original Inception Score multiplies pool3 by the softmax weights only (no bias).
        logits = features @ self.fc.weight.t()  # (N, 1008)
        return features, logits


# ----------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------

def fid_inception_preprocess(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W), C = 1 or 3 -> float32 (N, 3, 299, 299) in [-1, 1].

    As pytorch-fid: x / 255, grayscale tiled to 3 channels, bilinear resize to 299 x 299 with
    `F.interpolate(align_corners=False)` (half-pixel centres, no antialiasing), then 2x - 1.
    TensorFlow's original FID graph instead resizes the 0..255 image with TF1's
    `resize_bilinear(align_corners=False)` (source coordinate = dst * in/out, no half-pixel offset)
    and maps v -> (v - 128) / 128; the two give slightly different features and FIDs.
    """
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise ConfigError(f"expected uint8 images (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
    if x.shape[1] not in (1, 3):
        raise ConfigError(f"{NAME} takes 1- or 3-channel images, got {x.shape[1]} channels")
    x = x.float() / 255.0  # (N, C, H, W) in [0, 1]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)  # grayscale tiled to RGB (tiling commutes with the resize)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2.0 * x - 1.0  # (N, 3, 299, 299) in [-1, 1]


# ----------------------------------------------------------------------------------------------
# Weights file
# ----------------------------------------------------------------------------------------------

def default_weights_path() -> Path:
    """Where ganland looks for the weights file: <cache>/inception/pt_inception-2015-12-05-6726825d.pth."""
    return cache_root() / "inception" / WEIGHTS_FILE


def _torch_hub_candidates() -> list[Path]:
    """The file where pytorch-fid, torch-fidelity and torchmetrics leave it after their own
    download: torch.hub's checkpoint folder ($TORCH_HOME/hub/checkpoints, ~/.cache/torch/...)."""
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return [hub / WEIGHTS_FILE, hub / TORCH_FIDELITY_FILE]


def how_to_get_weights() -> str:
    """The instructions every 'weights not found' error carries."""
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return (f"Download {WEIGHTS_URL} (95.6 MB; the weights pytorch-fid uses) and put it at "
            f"{default_weights_path()}, or pass its path with --inception-weights PATH (config key "
            f"eval.inception_weights) or the environment variable {ENV_VAR}. ganland never downloads it. "
            f"If you have used pytorch-fid, torch-fidelity or torchmetrics' FID, the same file may already be "
            f"in torch.hub's cache as {hub / WEIGHTS_FILE} or {hub / TORCH_FIDELITY_FILE} "
            "(ganland looks there too).")


def find_weights(weights: Optional[str | os.PathLike] = None) -> Path:
    """The weights file: `weights` if given, else $GANLAND_INCEPTION_WEIGHTS, else the ganland
    cache path, else torch.hub's cache. A path that was asked for but does not exist is an error."""
    for asked, origin in ((weights, "given"), (os.environ.get(ENV_VAR) or None, f"${ENV_VAR}")):
        if asked is not None:
            path = Path(asked).expanduser()
            if not path.is_file():
                raise ConfigError(f"Inception weights file {path} ({origin}) does not exist. " + how_to_get_weights())
            return path
    for path in [default_weights_path(), *_torch_hub_candidates()]:
        if path.is_file():
            return path
    raise ConfigError(f"{NAME}: the Inception-v3 FID weights file was not found. " + how_to_get_weights())


def _first_line(e: BaseException) -> str:
    """'Type: the informative line' of an exception (for the weights_only refusal, the line naming
    the refused global, not torch's advice to load untrusted files without the safeguard)."""
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if ln.strip()]
    line = next((ln for ln in lines if "WeightsUnpickler error" in ln), lines[0] if lines else "")
    return f"{type(e).__name__}: {line.split('. ')[0].rstrip('.')}"


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .pth state dict, loaded with weights_only=True (no pickled code runs)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (bad zip), EOFError, ...
        raise ConfigError(
            f"{path} is not a loadable PyTorch state dict ({_first_line(e)}). ganland loads weights with "
            f"torch.load(weights_only=True), which refuses files holding pickled Python objects. Use the "
            f"reference file, {WEIGHTS_URL}") from None
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                       for k, v in obj.items()):
        what = "a dict with non-tensor entries" if isinstance(obj, dict) and obj else f"a {type(obj).__name__}"
        raise ConfigError(f"{path} does not hold a state dict (a dict of name -> tensor) but {what}. "
                          f"Use the reference file, {WEIGHTS_URL}")
    return dict(obj)


def _optional(key: str) -> bool:
    # BatchNorm's step counter: absent from files converted directly from TensorFlow (torch fills it in).
    return key.endswith(".num_batches_tracked")


def check_state_dict(state: dict[str, torch.Tensor], model: nn.Module, path: Path) -> None:
    """ConfigError naming `path` unless `state` has exactly the model's keys and shapes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state and not _optional(k)]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {expected[k]})"
             for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if not (missing or unexpected or wrong):
        return
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("with a wrong shape", wrong)):
        if items:
            parts.append(f"{len(items)} {label} (e.g. {', '.join(items[:3])})")
    hint = ""
    if any(k.startswith("AuxLogits.") for k in state) or tuple(state.get("fc.weight", torch.empty(0)).shape) == (1000, 2048):
        hint = (" It looks like torchvision's ImageNet Inception-v3 (1000 classes, auxiliary head), which is a "
                "different network with different weights, not the FID one.")
    elif any(k.startswith("module.") for k in state):
        hint = " Its keys start with 'module.' (saved from a DataParallel wrapper)."
    raise ConfigError(f"{path} is not the FID Inception-v3 weights: its keys do not match the network: "
                      + "; ".join(parts) + "." + hint + f" Use the reference file, {WEIGHTS_URL}")


def load_fid_inception(path: Path) -> FIDInceptionV3:
    """FIDInceptionV3 in eval mode with the weights of `path` (checked), gradients off."""
    state = read_state_dict(path)
    model = FIDInceptionV3()
    check_state_dict(state, model, path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # e.g. a tensor that cannot be copied (complex, wrong dtype)
        raise ConfigError(f"{path}: the weights do not load into the FID Inception-v3 ({_first_line(e)})") from None
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


@FEATURE_NETS.register(NAME, help="Inception-v3 of the reference FID code (pool3, 2048-d), from a local weights file")
def load_inception_v3_fid(weights: Optional[str] = None) -> FeatureExtractor:
    """FeatureExtractor of the FID Inception-v3: features (N, 2048) pool3, probabilities (N, 1008).

    weights: path of `pt_inception-2015-12-05-6726825d.pth`; None = $GANLAND_INCEPTION_WEIGHTS, else
    the ganland cache (`default_weights_path()`), else torch.hub's cache. Never downloads.
    """
    path = find_weights(weights)
    model = load_fid_inception(path)  # first, so that a broken file gets one clear error and no warning
    digest = sha256_file(path)
    if digest != WEIGHTS_SHA256:
        what = ("its SHA-256 does not start with " + WEIGHTS_SHA256_PREFIX if not digest.startswith(WEIGHTS_SHA256_PREFIX)
                else "its SHA-256 differs from the reference file's")
        warnings.warn(f"{path} is not the reference FID Inception weights file ({what}: {digest[:16]}...); "
                      "FIDs computed with it are not comparable with published ones.", stacklevel=2)
    return FeatureExtractor(name=NAME, sha256=digest, module=model, preprocess=fid_inception_preprocess,
                            feature_dim=FEATURE_DIM, n_classes=N_CLASSES, class_names=None)
