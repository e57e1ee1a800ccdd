"""Turn a checked Config into components: datasets, models, loss, optimizers.

Component-specific settings (`data.options`, `model.options`) are checked here against the
signature of the component's builder: unknown names fail with a close match, values are
type-checked with the same rules as the rest of the configuration.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from .config import Config, OptimizerConfig, check_value, stop_keys, stop_rules
from .data import DATASETS
from .data.degrade import DEGRADATIONS, Degradation, PairedDataset, degrade_name
from .device import autocast_for, resolve_device
from .errors import ConfigError
from .losses import LOSSES, AdversarialLoss
from .models import MODELS
from .models.layers import apply_spectral_norm
from .registry import Registry, close_match_hint


def call_with_options(fn: Callable, fixed: dict, options: dict, where: str) -> Any:
    """fn(**fixed, **options) after checking every option name and type against fn's signature."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    settable = [n for n in sig.parameters if n not in fixed]
    kwargs = dict(fixed)
    for key, value in (options or {}).items():
        if key not in settable:
            raise ConfigError(
                f"unknown option {where}.{key}; valid options: {', '.join(settable) or 'none'}."
                + close_match_hint(key, settable)
            )
        kwargs[key] = check_value(value, hints.get(key, Any), f"{where}.{key}")
    return fn(**kwargs)


def option_defaults(fn: Callable, skip: tuple[str, ...]) -> dict:
    """The settable options of a builder and their defaults (for `ganland models`/`datasets`)."""
    return {n: p.default for n, p in inspect.signature(fn).parameters.items()
            if n not in skip and p.default is not inspect.Parameter.empty}


def build_dataset(cfg: Config, split: str = "train"):
    """The configured dataset's `split` ("train" or "test")."""
    fn = DATASETS.get(cfg.data.name)
    params = inspect.signature(fn).parameters
    fixed: dict = {"split": split}
    # Common settings go to builders that take them; setting one a builder ignores is an error.
    for key in ("root", "download", "image_size"):
        value = getattr(cfg.data, key)
        if key in params:
            fixed[key] = value
        elif value is not None and key != "download":
            raise ConfigError(f"data.{key} does not apply to dataset {cfg.data.name!r}; remove it")
    return paired(call_with_options(fn, fixed, cfg.data.options, "data.options"), cfg)


def build_degradation(name: str, options: dict) -> Degradation:
    """The registered degradation `name` with its options checked (ConfigError on a bad one)."""
    return call_with_options(DEGRADATIONS.get(name), {}, options, "data.degrade_options")


def paired(dataset, cfg: Config):
    """The dataset as (target, input) pairs when `data.degrade` is set (else unchanged)."""
    name = degrade_name(cfg)
    if name == "none":
        if cfg.data.degrade_options:
            raise ConfigError("data.degrade_options is set but data.degrade is none; set data.degrade (downsample, "
                              "mask, noise) or remove the options")
        return dataset
    return PairedDataset(dataset, build_degradation(name, cfg.data.degrade_options))


def build_models(cfg: Config, shape: tuple[int, ...], n_classes: int,
                 cond_shape: Optional[tuple[int, ...]] = None) -> tuple[nn.Module, nn.Module]:
    """(G, D) for samples of `shape`; conditional on `n_classes` when model.conditional is set, on input
    images of `cond_shape` for image-to-image runs (data.degrade)."""
    if cfg.model.conditional and cond_shape is not None:
        raise ConfigError(f"model.conditional with data.degrade={cfg.data.degrade}: an image-to-image model is "
                          "conditioned on its input image, not on class labels; set model.conditional=false")
    if cfg.model.conditional and n_classes < 2:
        raise ConfigError(
            f"model.conditional is true but dataset {cfg.data.name!r} has no class labels; "
            "set model.conditional=false or use a labelled dataset (mnist, fashion-mnist, cifar10, "
            "an image-folder with class sub-folders)"
        )
    fn = MODELS.get(cfg.model.name)
    fixed = {"shape": tuple(shape), "z_dim": cfg.model.z_dim, "n_classes": n_classes if cfg.model.conditional else 0}
    if "cond_shape" in inspect.signature(fn).parameters:
        fixed["cond_shape"] = tuple(cond_shape) if cond_shape is not None else None
    elif cond_shape is not None:
        raise ConfigError(f"data.degrade={cfg.data.degrade} makes an image-to-image run, and model {cfg.model.name!r} "
                          "makes images from noise: set model.name=unet (or data.degrade=none)")
    if "z_prior" in inspect.signature(fn).parameters:  # a model whose input layer depends on z's distribution
        fixed["z_prior"] = cfg.model.z_prior
    G, D = call_with_options(fn, fixed, cfg.model.options, "model.options")
    if cfg.loss.ac_weight > 0 and not getattr(D, "gives_class_scores", False):
        raise ConfigError(f"loss.ac_weight={cfg.loss.ac_weight:g} trains D's class scores, which a conditional "
                          f"projection D gives: set model.conditional=true and, for model.name=dcgan, "
                          f"model.options.cond=projection (model.name=resnet always projects); or loss.ac_weight=0")
    if cfg.model.spectral_norm:
        apply_spectral_norm(D)
    return G, D


def build_loss(cfg: Config) -> AdversarialLoss:
    return LOSSES.get(cfg.loss.name)


OPTIMIZERS: Registry = Registry("optimizer")


@OPTIMIZERS.register("adam")
def _adam(params, o: OptimizerConfig, fast: bool):
    """Adam (Kingma & Ba 2015) with coupled L2 weight decay (as Chainer's WeightDecay hook).

    fast: torch's fused kernel where the parameters allow it (3.8x faster than foreach for the
    fashion-dcgan update on the CPU, benchmarks/optimizer_step.py), else foreach."""
    params = list(params)
    fused = fast and bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    kind = {"fused": True} if fused else {"foreach": fast}
    return torch.optim.Adam(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay, **kind)


@OPTIMIZERS.register("sgd")
def _sgd(params, o: OptimizerConfig, fast: bool):
    """Plain stochastic gradient descent (seed 002), optional momentum."""
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, foreach=fast)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(params, o: OptimizerConfig, fast: bool):
    """RMSprop (WGAN's choice), optional momentum."""
    return torch.optim.RMSprop(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, foreach=fast)


def build_optimizer(module: nn.Module, o: OptimizerConfig, fast: bool = True) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(o.name)(module.parameters(), o, fast)


def _check_tensorboard() -> None:
    """train.tensorboard needs the optional package; say how to get it before anything trains."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError("train.tensorboard is true but TensorBoard is not installed: pip install "
                          "'ganland[tensorboard]' (or pip install tensorboard), or set train.tensorboard=false") from None


def _check_augment(cfg: Config, train) -> None:
    """train.augment and loss.cr_weight transform images: refused for other data, policy checked."""
    from .augment import parse_policy

    on = cfg.train.augment.strip().lower() not in ("", "none")
    for key, used in (("train.augment", on), ("loss.cr_weight", cfg.loss.cr_weight > 0)):
        if used and not train.is_image:
            raise ConfigError(f"{key} transforms images, and dataset {train.name!r} gives samples of shape "
                              f"{tuple(train.shape)}; turn it off for this dataset")
    if on:
        try:
            parse_policy(cfg.train.augment, train.shape[0])
        except ConfigError as e:
            raise ConfigError(f"train.augment={cfg.train.augment!r}: {e}") from None


def _check_pairs(cfg: Config, train) -> None:
    """The settings of image-to-image runs (data.degrade), and those that only they take."""
    paired = getattr(train, "cond_shape", None) is not None
    lo = cfg.loss
    if not paired:
        for key, used in (("loss.l1_weight", lo.l1_weight > 0), (f"loss.adv_weight={lo.adv_weight:g}", lo.adv_weight != 1)):
            if used:
                raise ConfigError(f"{key} applies to image-to-image runs, which compare G's output with a target; "
                                  "set data.degrade (downsample, mask, noise) and model.name=unet, or remove it")
        return
    if lo.adv_weight == 0 and lo.l1_weight == 0:
        raise ConfigError("loss.adv_weight=0 and loss.l1_weight=0 leave G with nothing to learn from: set "
                          "loss.l1_weight (e.g. 10), loss.adv_weight (e.g. 1), or both")
    if lo.adv_weight == 0 and cfg.train.n_critic > 1:
        raise ConfigError(f"train.n_critic={cfg.train.n_critic} with loss.adv_weight=0: no D is trained, so every "
                          "G step would skip n_critic - 1 batches; set train.n_critic=1")
    for key, used in (("train.augment", cfg.train.augment.strip().lower() not in ("", "none")),
                      ("loss.cr_weight", lo.cr_weight > 0)):
        if used:
            raise ConfigError(f"{key} moves D's images, and an image-to-image D judges an output beside its input: "
                              "a moved output no longer lines up with its input. Turn it off for data.degrade runs")


@dataclass
class Checked:
    """What `check_config` found out while validating (reused by the trainer)."""

    shape: tuple[int, ...]
    n_classes: int


def check_config(cfg: Config, dataset=None, models: tuple[nn.Module, nn.Module] | None = None) -> Checked:
    """Validate the combination of components without training (used by --dry-run and train).

    Builds the dataset and the models unless given, so every option is checked for real.
    """
    train = dataset if dataset is not None else build_dataset(cfg, "train")
    loss = build_loss(cfg)
    G, D = models if models is not None else build_models(cfg, train.shape, train.n_classes,
                                                          getattr(train, "cond_shape", None))
    for net in ("G", "D"):
        OPTIMIZERS.get(getattr(cfg.optim, net).name)
    _check_pairs(cfg, train)
    if loss.needs_lipschitz and cfg.loss.gp_weight == 0 and cfg.optim.D.weight_clip is None \
            and not cfg.model.spectral_norm and cfg.loss.adv_weight > 0:  # (adv_weight 0: no D is trained)
        raise ConfigError(
            f"loss {loss.name} needs a Lipschitz constraint on D: set optim.D.weight_clip=0.01 (WGAN), "
            "loss.gp_weight=10 (WGAN-GP) or model.spectral_norm=true"
        )
    if cfg.loss.gp_weight > 0 and cfg.optim.D.weight_clip is not None:
        raise ConfigError(
            f"loss.gp_weight={cfg.loss.gp_weight:g} with optim.D.weight_clip={cfg.optim.D.weight_clip:g}: the gradient "
            "penalty replaces weight clipping (Gulrajani et al. 2017), and clipped weights keep D's gradient norm "
            "from reaching the penalty's target. Keep one: optim.D.weight_clip=null (WGAN-GP) or loss.gp_weight=0 (WGAN)."
        )
    t = cfg.train
    pack = getattr(D, "pack", 1)
    if pack > 1 and t.batch_size % pack:
        raise ConfigError(f"train.batch_size={t.batch_size} with model.options.pack={pack}: D judges packs of {pack} "
                          f"samples, so the batch size must be a multiple of {pack} (e.g. {t.batch_size // pack * pack or pack})")
    if pack > 1 and (cfg.loss.gp_weight > 0 or cfg.loss.r1_weight > 0):
        raise ConfigError(f"loss.gp_weight / loss.r1_weight with model.options.pack={pack}: the penalties take one "
                          "gradient norm per sample, but a packed D's input is a pack of samples. Use pack 1 with a "
                          "penalty, or weight clipping / spectral norm with packing.")
    if cfg.loss.gp_weight > 0 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules()):
        raise ConfigError(
            "loss.gp_weight > 0 with batch norm in D: the gradient penalty is defined per sample and batch "
            "norm mixes samples. Set model.options.d_batch_norm=false (dcgan) or use another model."
        )
    _check_augment(cfg, train)
    if train.finite and len(train) < t.batch_size:
        raise ConfigError(f"dataset {train.name!r} holds {len(train)} training samples, fewer than "
                          f"train.batch_size={t.batch_size}; lower the batch size")
    autocast_for(cfg.speed.amp, resolve_device(t.device))  # the device exists here, and takes this precision
    if t.tensorboard:
        _check_tensorboard()
    if not stop_rules(cfg):
        raise ConfigError(f"no stopping rule: set one of {', '.join(stop_keys())} "
                          "(or --steps / --epochs / --minutes)")
    return Checked(tuple(train.shape), train.n_classes)
