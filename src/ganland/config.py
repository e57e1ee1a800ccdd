"""Run configuration: nested dataclasses, YAML recipes and dotted overrides, strictly checked.

Every hyperparameter has exactly one typed default here, with a comment giving its unit and
what `None` or 0 means. Unknown keys and wrong types fail with the key's dotted name and a
close match (`ConfigError`). Component-specific settings (a dataset's or a model family's own
keyword arguments) live in `options` mappings and are checked against the component's
signature when the run is built (`ganland.build.check_config`).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import yaml

from .errors import ConfigError
from .registry import close_match_hint

RECIPE_DIR = Path(__file__).parent / "recipes"


def setting(default: Any = dataclasses.MISSING, *, factory: Optional[Callable[[], Any]] = None,
            at_least: Optional[float] = None, above: Optional[float] = None, below: Optional[float] = None,
            one_of: Optional[tuple[str, ...]] = None, resume: bool = False, stop: bool = False,
            check: Optional[Callable[[Any, Any], Optional[str]]] = None) -> Any:
    """A config field with the rules that govern it, read by one generic pass (`check_rules`).

    at_least / above / below: bounds of a number, inclusive / exclusive / exclusive (applied to each
    element of a tuple; a null value passes). one_of: the allowed strings. resume: the value may
    change when a run is resumed. stop: a stopping rule; one given as an override replaces the
    recipe's others. check(section, value) -> an error message or None, for a rule that involves
    other fields of the same section; the message may name "{key}" and "{section}".
    """
    rules = {"at_least": at_least, "above": above, "below": below, "one_of": one_of, "resume": resume,
             "stop": stop, "check": check}
    metadata = {k: v for k, v in rules.items() if v is not None and v is not False}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


DECAYS = ("none", "linear")  # learning-rate schedules (ganland.training.schedule.DECAY holds their formulas)


@dataclass
class DataConfig:
    name: str = "fashion-mnist"  # dataset name (`ganland datasets` lists them)
    root: Optional[str] = None  # folder holding the dataset's files; None = the standard places
    download: bool = True  # fetch the official files into ~/.cache/ganland when none are found
    image_size: Optional[int] = setting(None, above=0)  # image side in pixels; None = the dataset's native size
    options: dict = setting(factory=dict)  # the dataset's own keyword arguments
    degrade: str = "none"  # image-to-image: "downsample", "mask" or "noise" makes each image's input (docs/image-to-image.md); "none" = noise-to-image
    degrade_options: dict = setting(factory=dict)  # the degradation's own settings (factor, shape, sigma...)


@dataclass
class ModelConfig:
    name: str = "dcgan"  # model family (`ganland models` lists them)
    z_dim: int = setting(100, at_least=1)  # length of the noise vector z
    z_prior: str = setting("normal", one_of=("normal", "uniform"))  # "normal": z ~ N(0, I); "uniform": z ~ U(-1, 1)
    conditional: bool = False  # feed class labels to G and D (needs a labelled dataset)
    spectral_norm: bool = False  # spectral normalisation of every weight in D
    options: dict = setting(factory=dict)  # the family's own keyword arguments (widths...)


def _gp_target_needs_gp(loss: "LossConfig", target: float) -> Optional[str]:
    if target != 1.0 and loss.gp_weight == 0:
        return ("{key} is %g but {section}.gp_weight is 0, so there is no gradient penalty to aim; set "
                "{section}.gp_weight (e.g. 10) or leave gp_target at 1" % target)
    return None


@dataclass
class LossConfig:
    name: str = "non-saturating"  # adversarial loss pair (`ganland losses` lists them)
    gp_weight: float = setting(0.0, at_least=0)  # gradient penalty lambda on real/fake interpolates (WGAN-GP: 10); 0 = off
    gp_target: float = setting(1.0, check=_gp_target_needs_gp)  # gradient norm the penalty pulls towards (1 in WGAN-GP)
    r1_weight: float = setting(0.0, at_least=0)  # R1 penalty gamma on real data, gamma/2 * |grad D(x)|^2; 0 = off
    r2_weight: float = setting(0.0, at_least=0)  # R2 penalty gamma on generated data, gamma/2 * |grad D(G(z))|^2; 0 = off
    l1_weight: float = setting(0.0, at_least=0)  # image-to-image: weight of G's L1 distance to the target (pix2pix: 100); 0 = off
    adv_weight: float = setting(1.0, at_least=0)  # image-to-image: weight of G's adversarial loss; 0 = no D at all (the L1-only baseline); other runs keep 1
    cr_weight: float = setting(0.0, at_least=0)  # consistency regularisation lambda * (D(x) - D(T(x)))^2, T a translation of the reals; 0 = off
    ac_weight: float = setting(0.0, at_least=0)  # auxiliary classifier (AC-GAN) on a projection D's class scores: D names the class of reals, G's fakes must be named as asked; 0 = off


def _momentum_not_for_adam(o: "OptimizerConfig", momentum: float) -> Optional[str]:
    if o.name == "adam" and momentum != 0:
        return ("{key} applies to sgd and rmsprop, not adam (Adam's momentum is betas[0]); remove it or set "
                "{section}.name=sgd")
    return None


def _per_tensor_needs_limit(o: "OptimizerConfig", per_tensor: bool) -> Optional[str]:
    if per_tensor and o.grad_clip is None:
        return "{key} is true but {section}.grad_clip is null: set the norm limit, e.g. {section}.grad_clip=1.0"
    return None


@dataclass
class OptimizerConfig:
    name: str = "adam"  # "adam", "sgd" or "rmsprop"
    lr: float = setting(2e-4, above=0)  # learning rate (step size)
    betas: tuple[float, float] = setting((0.5, 0.999), at_least=0, below=1)  # Adam's (beta1, beta2); ignored by sgd/rmsprop
    momentum: float = setting(0.0, at_least=0, check=_momentum_not_for_adam)  # sgd/rmsprop momentum; 0 = none
    weight_decay: float = setting(0.0, at_least=0)  # L2 coefficient added to the gradient before the update; 0 = none
    grad_clip: Optional[float] = setting(None, above=0)  # largest gradient norm allowed; None = no clipping
    grad_clip_per_tensor: bool = setting(False, check=_per_tensor_needs_limit)  # clip each parameter tensor's norm on its own (seed 002)
    weight_clip: Optional[float] = setting(None, above=0)  # clamp every parameter into [-c, c] after each step; None = off
    decay: str = setting("none", one_of=DECAYS)  # learning-rate schedule: "none" (constant) or "linear" (to 0 over the step budget; docs/training.md)


@dataclass
class OptimConfig:
    G: OptimizerConfig = setting(factory=OptimizerConfig)  # generator's optimizer
    D: OptimizerConfig = setting(factory=OptimizerConfig)  # discriminator's optimizer


def _saturation_needs_guard(t: "TrainConfig", steps: int) -> Optional[str]:
    if steps and not t.guard:
        return ("{key} is %d but {section}.guard is false, so nothing checks for saturation; set "
                "{section}.guard=true or {key}=0" % steps)
    return None


def _p_not_with_target(t: "TrainConfig", p: float) -> Optional[str]:
    if p > 1:
        return "{key} is %g, but it is a probability: give a number from 0 to 1" % p
    if t.augment_target is not None and p != 1.0:
        return ("{key} is %g but {section}.augment_target is set, which makes the probability adaptive (it starts "
                "at 0): remove one of them" % p)
    return None


def _target_needs_augment(t: "TrainConfig", target: Optional[float]) -> Optional[str]:
    if target is not None and t.augment.strip().lower() in ("", "none"):
        return ("{key} is set but {section}.augment is off, so there is nothing to adapt; set {section}.augment "
                "(e.g. default) or remove {key}")
    return None


@dataclass
class TrainConfig:
    batch_size: int = setting(64, at_least=1)  # samples per batch, real and fake alike
    n_critic: int = setting(1, at_least=1)  # discriminator steps per generator step
    steps: Optional[int] = setting(None, above=0, stop=True, resume=True)  # generator steps to train; None = no step limit
    epochs: Optional[float] = setting(None, above=0, stop=True, resume=True)  # passes over the training data by D; None = no epoch limit
    minutes: Optional[float] = setting(None, above=0, stop=True, resume=True)  # wall-clock limit in minutes; None = no time limit
    seed: int = 0  # seeds every random stream (noise, data order, init); same seed = same run on CPU
    device: str = setting("auto", resume=True)  # "auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:1", "mps"
    ema: Optional[float] = setting(None, above=0, below=1)  # decay of an exponential moving average of G, e.g. 0.999; None = off
    log_every: int = setting(50, at_least=1, resume=True)  # generator steps per stats.jsonl line (losses are means over those steps)
    sample_every: int = setting(500, at_least=0, resume=True)  # generator steps between sample pictures; 0 = only at the end
    checkpoint_every: int = setting(1000, at_least=0, resume=True)  # generator steps between checkpoints; 0 = only at the end
    checkpoint_minutes: float = setting(10.0, at_least=0, resume=True)  # also checkpoint after this many minutes without one; 0 = off
    keep_checkpoints: int = setting(2, at_least=1, resume=True)  # newest checkpoints kept on disk (older ones are deleted)
    heldout_batches: int = setting(10, at_least=0)  # test-split batches scored by D at each epoch's end; 0 = skip
    augment: str = "none"  # differentiable augmentation of what D sees: "none", "default" or ops such as "translation,cutout" (docs/augmentation.md)
    augment_p: float = setting(1.0, at_least=0, check=_p_not_with_target)  # probability of each op per sample (fixed)
    augment_target: Optional[float] = setting(None, above=0, below=1, check=_target_needs_augment)  # adaptive p (ADA): the wanted E[sign(D(x_real))], e.g. 0.6; None = fixed p
    augment_kimg: float = setting(100.0, above=0)  # adaptive p: thousands of real images for p to move from 0 to 1
    progress: bool = setting(True, resume=True)  # show a progress bar with live losses and ETA
    dist_timeout: float = setting(300.0, above=0, resume=True)  # seconds a process waits for the others (torchrun) before it stops with an error
    tensorboard: bool = setting(False, resume=True)  # also write TensorBoard events to RUN/tensorboard (pip install 'ganland[tensorboard]')
    guard: bool = setting(True, resume=True)  # divergence guard: NaN/inf checks at logging and checkpoint steps, rollback on failure
    guard_retries: int = setting(2, at_least=0, resume=True)  # rollbacks to the last good checkpoint (each halves both learning rates); 0 = stop at once
    guard_saturation_steps: int = setting(0, at_least=0, resume=True, check=_saturation_needs_guard)  # D steps in a row with a saturated D that count as divergence; 0 = off


@dataclass
class EvalConfig:
    every: int = setting(0, at_least=0, resume=True)  # generator steps between in-training evaluations (into metrics.jsonl); 0 = off
    n_samples: int = setting(2000, at_least=2, resume=True)  # generated samples each in-training evaluation scores
    seed: int = setting(0, resume=True)  # seed of the fixed noise those samples come from
    feature_net: Optional[str] = setting(None, resume=True)  # feature network for images; None = the dataset's default
    inception_weights: Optional[str] = setting(None, resume=True)  # path of the Inception-v3 FID weights (feature_net inception-v3-fid)
    full: bool = setting(False, resume=True)  # also KID, precision/recall and density/coverage during training (slower)


@dataclass
class SpeedConfig:
    """How fast a step runs: none changes the model, the data or the losses (docs/performance.md),
    so each may change when a run is resumed. Some change the random numbers or the rounding
    (reuse_fake, amp, channels_last, threads): a run resumed with another value goes on from the
    same state but is not bit for bit the run it would have been."""

    reuse_fake: bool = setting(True, resume=True)  # with n_critic 1, G's step reuses the D step's fake batch (one G forward less)
    channels_last: Optional[bool] = setting(None, resume=True)  # NHWC memory layout; None = auto (on for image models)
    amp: str = setting("auto", one_of=("auto", "bf16", "fp32"), resume=True)  # mixed precision: auto (bf16 on CUDA; on a CPU with bf16 units, for images, the faster of bf16 and fp32 timed at the start of a run of a minute or more; else fp32), bf16, fp32
    compile: bool = setting(False, resume=True)  # torch.compile G and D (minutes of compilation on a small CPU)
    threads: int = setting(0, at_least=0, resume=True)  # CPU threads for torch; 0 = torch's default (one per core)


@dataclass
class Config:
    recipe: Optional[str] = None  # name of the recipe this run started from (informational)
    description: str = ""  # one line shown by `ganland recipes`
    data: DataConfig = setting(factory=DataConfig)
    model: ModelConfig = setting(factory=ModelConfig)
    loss: LossConfig = setting(factory=LossConfig)
    optim: OptimConfig = setting(factory=OptimConfig)
    train: TrainConfig = setting(factory=TrainConfig)
    eval: EvalConfig = setting(factory=EvalConfig)
    speed: SpeedConfig = setting(factory=SpeedConfig)

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


# ---------------------------------------------------------------------------------------------
# YAML with floats the way people write them (PyYAML reads "2e-4" as a string otherwise).


class _Loader(yaml.SafeLoader):
    pass


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


YAML_VALUES_MAX = 100_000  # values in one YAML document once its aliases are expanded (far above any config)


def yaml_load(text: str, source: str = "<string>") -> Any:
    """YAML text as plain data. Every failure is a ConfigError naming `source`. Anchors and
    aliases (&name, *name) are expanded into independent copies, so changing one copy (an
    override) leaves the others alone; a document that would expand to more than
    YAML_VALUES_MAX values (a "billion laughs" bomb), or refers to itself, is refused."""
    try:
        tree = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from None
    except (ValueError, TypeError, OverflowError) as e:  # scalars PyYAML matches but cannot build: "0b_", "2001-02-30"
        raise ConfigError(f"{source}: not valid YAML: {type(e).__name__}: {e}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML: nested too deeply") from None
    return _unshare(tree, source)


def _unshare(tree: Any, source: str) -> Any:
    """`tree` with every list and mapping copied, so no two places share one object."""
    count = 0
    active: set[int] = set()  # containers on the path from the root to the current value

    def copy(value: Any) -> Any:
        nonlocal count
        count += 1
        if count > YAML_VALUES_MAX:
            raise ConfigError(f"{source}: more than {YAML_VALUES_MAX} values once its aliases (*name) are "
                              "expanded; a configuration needs far fewer (a YAML bomb?)")
        if not isinstance(value, (dict, list, tuple)):
            return value
        if id(value) in active:
            raise ConfigError(f"{source}: an alias (*name) refers to a value containing itself")
        active.add(id(value))
        try:
            if isinstance(value, dict):
                return {k: copy(v) for k, v in value.items()}
            return [copy(v) for v in value] if isinstance(value, list) else tuple(copy(v) for v in value)
        finally:
            active.discard(id(value))

    try:
        return copy(tree)
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML: nested too deeply") from None


# ---------------------------------------------------------------------------------------------
# Strict conversion of plain mappings to the dataclasses above.


def _plain(obj: Any) -> Any:
    """Tuples -> lists, recursively, so the result is plain YAML."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(type_name(a) for a in args) + " or null"
    if origin in (tuple, list):
        args = typing.get_args(tp)
        inner = ", ".join(type_name(a) for a in args if a is not Ellipsis)
        return f"list of {inner}" if origin is list or Ellipsis in args else f"list of {len(args)} {inner}"
    return getattr(tp, "__name__", str(tp))


def _show(value: Any, limit: int = 120) -> str:
    """repr(value) for an error message, shortened (and safe for ints too long to print)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _OutOfRange(ConfigError):
    """A number of the right type that no setting can hold."""


INT_LIMIT = 2**63  # integer settings are counts, sizes and seeds: they must fit in a signed 64-bit integer


def check_value(value: Any, tp: Any, key: str) -> Any:
    """`value` converted to type `tp`, or a ConfigError naming `key`. Accepts int for float,
    integral floats for int, and lists for tuples; nothing else is coerced."""
    if tp is Any or tp is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return check_value(value, a, key)
            except _OutOfRange:  # the right type, but too large: that message is the clearer one
                raise
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {type_name(tp)}, got {_show(value)}")
    if origin in (tuple, list):
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected {type_name(tp)}, got {_show(value)}")
        if origin is tuple and args and Ellipsis not in args:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {type_name(tp)}, got {len(value)} values {_show(value)}")
            return tuple(check_value(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        out = [check_value(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {_show(value)}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if not -INT_LIMIT <= value < INT_LIMIT:
                raise _OutOfRange(f"{key}: {_show(value, 40)} is out of range (at most 2**63 - 1 in size)")
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise _OutOfRange(f"{key}: {_show(value, 40)} is too large for a floating-point number") from None
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: expected {type_name(tp)}, got {_show(value)} ({type(value).__name__})")


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping, checking every key and type."""
    where = prefix.rstrip(".") or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(
                f"unknown key '{prefix}{key}' in {where}; valid keys: {', '.join(names)}."
                + close_match_hint(key, names)
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(tp, value, f"{prefix}{key}.")
        else:
            kwargs[key] = check_value(value, tp, f"{prefix}{key}")
    return cls(**kwargs)


def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    """tree[a][b][c] = value for dotted = "a.b.c", creating mappings on the way."""
    if not isinstance(dotted, str):
        raise ConfigError(f"override key {_show(dotted)}: override keys are dotted strings, e.g. optim.D.lr")
    keys = dotted.split(".")
    if not all(keys):
        raise ConfigError(f"override {dotted!r}: empty key part; write e.g. optim.D.lr=1e-4")
    node = tree
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {k!r} holds a value, not a section")
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """"optim.D.lr=1e-4" -> ("optim.D.lr", 1e-4); the value is read as YAML."""
    if not isinstance(text, str):
        raise ConfigError(f"override {_show(text)}: expected a KEY=VALUE string, e.g. train.batch_size=128")
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. train.batch_size=128")
    key, raw = text.split("=", 1)
    return key.strip(), yaml_load(raw, f"override {key.strip()}") if raw.strip() else ""


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def read_recipe(name_or_path: str) -> tuple[dict, str | None]:
    """The raw mapping of a recipe name or a YAML file path, and the recipe name (or None)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or _is_there(path):
        if not _is_there(path, file=True):
            raise ConfigError(f"config file {str(path)!r} not found")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {str(path)!r} cannot be read as UTF-8 text: {e}") from None
        tree, name = yaml_load(text, str(path)), None
    else:
        path = RECIPE_DIR / f"{name_or_path}.yaml"
        if not _is_there(path, file=True):
            names = recipe_names()
            raise ConfigError(
                f"unknown recipe {name_or_path!r}; recipes: {', '.join(names)} "
                f"(or give a path to a YAML file)." + close_match_hint(name_or_path, names)
            )
        tree, name = yaml_load(path.read_text(), str(path)), name_or_path
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return tree, name


def _is_there(path: Path, file: bool = False) -> bool:
    """Path.exists / is_file, False also for names the system refuses (too long, ...)."""
    try:
        return path.is_file() if file else path.exists()
    except (OSError, ValueError):
        return False


def load_config(recipe: str | dict | None = None, overrides: dict | list[str] | None = None) -> Config:
    """Resolve a recipe name, YAML path or mapping, plus overrides, into a checked Config.

    overrides: {"optim.D.lr": 1e-4, ...} or ["optim.D.lr=1e-4", ...].
    """
    if recipe is None:
        tree, name = {}, None
    elif isinstance(recipe, dict):
        tree, name = _plain(_unshare(recipe, "config")), recipe.get("recipe")
    elif isinstance(recipe, (str, Path)):
        tree, name = read_recipe(str(recipe))
    else:
        raise ConfigError(f"config: expected a recipe name, a YAML path or a mapping, got {_show(recipe)}")
    if overrides is not None and not isinstance(overrides, (dict, list, tuple)):
        raise ConfigError(f"overrides: expected a list of KEY=VALUE strings or a mapping, got {_show(overrides)}")
    if name is not None:
        tree.setdefault("recipe", name)
    items = list(overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides or []))
    stops = stop_keys()
    if any(key in stops for key, _ in items):  # a stopping rule given as an override replaces the recipe's
        items = [(key, None) for key in stops] + items
    for key, value in items:
        set_dotted(tree, key, value)
    cfg = from_dict(Config, tree)
    check_rules(cfg)
    return cfg


def fields_of(obj: Any, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any, Any]]:
    """(dotted key, field, value, the section holding it) of every setting, depth first."""
    for f in dataclasses.fields(obj):
        v, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(v):
            yield from fields_of(v, key + ".")
        else:
            yield key, f, v, obj


def _bounds_text(rules: dict, nullable: bool) -> str:
    lo, above, below = rules.get("at_least"), rules.get("above"), rules.get("below")
    if lo is not None and below is not None:
        text = f"lie in [{lo:g}, {below:g})"
    elif above is not None and below is not None:
        text = f"lie strictly between {above:g} and {below:g}"
    elif lo == 0:
        text = "be 0 or more"
    elif lo is not None:
        text = f"be at least {lo:g}"
    elif above == 0:
        text = "be positive"
    else:
        text = f"be above {above:g}" if above is not None else f"be below {below:g}"
    return text + (" (or null)" if nullable else "")


def _in_bounds(x: float, rules: dict) -> bool:
    return ((rules.get("at_least") is None or x >= rules["at_least"]) and (rules.get("above") is None or x > rules["above"])
            and (rules.get("below") is None or x < rules["below"]))


def check_rules(cfg: Config) -> None:
    """The one pass over every setting's own rules (`setting(...)`): finite numbers, bounds, allowed
    values, then the rules that involve other settings of the same section."""
    checks = []
    for key, f, v, section in fields_of(cfg):
        numbers = [x for x in (v if isinstance(v, tuple) else (v,)) if isinstance(x, (int, float))
                   and not isinstance(x, bool)]
        if any(isinstance(x, float) and not math.isfinite(x) for x in numbers):
            raise ConfigError(f"{key} must be a finite number, got {_show(list(v) if isinstance(v, tuple) else v)}")
        rules = f.metadata
        if any(r in rules for r in ("at_least", "above", "below")) and not all(_in_bounds(x, rules) for x in numbers):
            nullable = type(None) in typing.get_args(typing.get_type_hints(type(section))[f.name])
            shown = list(v) if isinstance(v, tuple) else v
            raise ConfigError(f"{key} must {_bounds_text(rules, nullable)}, got {_show(shown)}")
        if "one_of" in rules and v not in rules["one_of"]:
            raise ConfigError(f"{key} must be one of {', '.join(rules['one_of'])}; got {_show(v)}."
                              + close_match_hint(v, rules["one_of"]))
        if "check" in rules:
            checks.append((key, rules["check"], v, section))
    for key, check, v, section in checks:
        message = check(section, v)
        if message:
            raise ConfigError(message.format(key=key, section=key.rsplit(".", 1)[0]))


def stop_keys() -> list[str]:
    """The settings that are stopping rules (train.steps, train.epochs, train.minutes)."""
    return [key for key, f, _, _ in fields_of(Config()) if f.metadata.get("stop")]


def stop_rules(cfg: Config) -> dict[str, Any]:
    """{key: value} of the stopping rules that are set (None values left out)."""
    return {key: v for key, f, v, _ in fields_of(cfg) if f.metadata.get("stop") and v is not None}


def stop_overrides(steps: Optional[int] = None, epochs: Optional[float] = None,
                   minutes: Optional[float] = None) -> dict:
    """The overrides of a stopping rule given by name (--steps, steps=...); {} when none is."""
    given = {"steps": steps, "epochs": epochs, "minutes": minutes}
    return {key: v for key in stop_keys() if (v := given[key.split(".")[-1]]) is not None}


def resume_changes(saved: Config, new: Config) -> list[str]:
    """The settings that differ between a run's saved config and `new` and may not change when
    the run resumes (each as "key: old -> new"); an unchanged value is always accepted."""
    old = {key: v for key, _, v, _ in fields_of(saved)}
    return [f"{key}: {_show(old[key], 40)} -> {_show(v, 40)}" for key, f, v, _ in fields_of(new)
            if v != old[key] and not f.metadata.get("resume")]


def resumable_keys() -> list[str]:
    return [key for key, f, _, _ in fields_of(Config()) if f.metadata.get("resume")]


def resumable_text() -> str:
    """The settings that may change on resume, a section written "eval.*" when all of it may."""
    keys, out = resumable_keys(), []
    sections = {key.rsplit(".", 1)[0] for key in keys}
    whole = {sec for sec in sections if all(k in keys for k, *_ in fields_of(Config()) if k.rsplit(".", 1)[0] == sec)}
    for key in keys:
        sec = key.rsplit(".", 1)[0]
        shown = f"{sec}.*" if sec in whole else key
        if shown not in out:
            out.append(shown)
    return ", ".join(out)
