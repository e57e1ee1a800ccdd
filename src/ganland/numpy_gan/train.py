"""Train seed 002's NumPy GAN on sine signals and write its run folder.

    from ganland.numpy_gan import train_sine
    result = train_sine(iterations=50_000, batch_size=1, seed=0, out="runs/numpy-sine")
    result.metrics["sine_share"]   # share of 1,000 generated curves that are sines in the data's ranges

The run folder has the layout of every ganland run, so `ganland eval`, `sample` and `compare`
read it: config.yaml (the settings, marked `engine: numpy-sine`), stats.jsonl (interval means of
the losses), metrics.jsonl (the final `sine_metrics` of 1,000 generated curves as a score with its
protocol, comparable with a torch `sine` run's), samples/latest.png (50 generated curves over 50
real ones, the seed's picture), samples/training.png (the losses), weights.npz (G.* and D.*
arrays), and metrics.json (the metrics with the training time) and samples.npz (the scored curves).
It trains in one go: it has no checkpoints to resume from.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import yaml

from ..config import check_value
from ..errors import ConfigError, GanlandError
from ..metrics.signals import SINE_RANGES, sine_metrics, sine_reference
from ..registry import close_match_hint
from .gan import NumpyGAN, build_discriminator, build_generator
from .layers import Sequential, as_dtype
from .losses import G_LOSSES
from .optim import OPTIMIZERS

DEFAULT_LR = {"sgd": 0.01, "adam": 0.001}  # used when lr_g / lr_d are None
ENGINE = "numpy-sine"  # the marker in a run folder's config.yaml


@dataclass
class SineConfig:
    """Every setting of a NumPy sine run; the defaults are seed 002's."""

    iterations: int = 50_000  # training iterations, each 2 D steps + 1 G step (seed: 50,000)
    batch_size: int = 1  # samples per step (seed: 1, one sample at a time)
    seed: int = 0  # seeds the init, data, noise and evaluation streams (numpy SeedSequence)
    optimizer: str = "sgd"  # "sgd" (seed) or "adam", for both networks
    lr_g: Optional[float] = None  # G step size; None: 0.01 for sgd (seed), 0.001 for adam
    lr_d: Optional[float] = None  # D step size; None: 0.01 for sgd (seed), 0.001 for adam
    momentum: float = 0.0  # SGD momentum; 0: plain SGD (seed)
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's (beta1, beta2); unused by sgd
    g_loss: str = "non-saturating"  # "non-saturating" -log D(G(z)) (the seed's intent) or "minimax"
    grad_clip: Optional[float] = 0.2  # max L2 norm of each weight gradient (seed: 0.2); None: off
    clip_bias_grads: bool = False  # also clip each bias gradient (seed: only weight matrices)
    weight_clip: Optional[float] = 0.25  # every parameter clamped to ±this after each step (seed: 0.25); None: off
    dtype: str = "float64"  # "float64" or "float32" for parameters and activations
    z_dim: int = 1  # noise size, z ~ N(0, 1) (seed: 1)
    g_hidden: int = 10  # units in each of G's two hidden layers (seed: 10)
    d_hidden: int = 10  # units in each of D's two hidden layers (seed: 10)
    n_points: int = 10  # points per sine signal, G's output size (seed: 10)
    slope: float = 0.2  # D's LeakyReLU slope for x < 0 (seed: 0.2)
    log_every: int = 100  # iterations per stats.jsonl record, losses averaged over them (seed prints every 100)
    eval_every: int = 0  # iterations between sine_metrics records in stats.jsonl; 0: only at the end
    n_eval: int = 1000  # generated curves scored by sine_metrics

    def resolved(self) -> "SineConfig":
        """A checked copy with the learning rates filled in; ConfigError says what to fix."""
        OPTIMIZERS.get(self.optimizer)
        G_LOSSES.get(self.g_loss)
        as_dtype(self.dtype)
        for key in ("iterations", "batch_size", "z_dim", "g_hidden", "d_hidden", "log_every"):
            value = getattr(self, key)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ConfigError(f"numpy-sine: {key} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.n_points, int) and self.n_points >= 4):
            raise ConfigError(f"numpy-sine: n_points must be an integer >= 4 (a sine fit has 3 parameters), "
                              f"got {self.n_points!r}")
        if not (isinstance(self.n_eval, int) and self.n_eval >= 2):
            raise ConfigError(f"numpy-sine: n_eval must be an integer >= 2, got {self.n_eval!r}")
        if not (isinstance(self.eval_every, int) and self.eval_every >= 0):
            raise ConfigError(f"numpy-sine: eval_every must be an integer >= 0 (0: only at the end), "
                              f"got {self.eval_every!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"numpy-sine: momentum must be in [0, 1), got {self.momentum!r}")
        if not (len(self.betas) == 2 and all(0.0 <= b < 1.0 for b in self.betas)):
            raise ConfigError(f"numpy-sine: betas must be two numbers in [0, 1), got {self.betas!r}")
        for key in ("grad_clip", "weight_clip"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ConfigError(f"numpy-sine: {key} must be > 0 (or null: off), got {value!r}")
        if not self.slope >= 0:
            raise ConfigError(f"numpy-sine: slope must be >= 0, got {self.slope!r}")
        lr = DEFAULT_LR[self.optimizer]
        return dataclasses.replace(
            self,
            lr_g=float(lr if self.lr_g is None else self.lr_g),
            lr_d=float(lr if self.lr_d is None else self.lr_d),
            betas=tuple(float(b) for b in self.betas),
        )


def make_config(**options) -> SineConfig:
    """SineConfig(**options), with a ConfigError naming a close key for a misspelt one."""
    known = [f.name for f in dataclasses.fields(SineConfig)]
    for key in options:
        if key not in known:
            raise ConfigError(f"numpy-sine: unknown setting {key!r}; known: {', '.join(known)}."
                              + close_match_hint(key, known))
    hints = typing.get_type_hints(SineConfig)
    options = {key: check_value(value, hints[key], f"numpy-sine: {key}") for key, value in options.items()}
    return SineConfig(**options).resolved()


@dataclass
class SineResult:
    """What `train_sine` returns."""

    metrics: dict  # sine_metrics of cfg.n_eval generated curves (sine_share, rmse_median, ...)
    stats: list[dict]  # the stats.jsonl records
    config: SineConfig  # resolved settings
    gan: NumpyGAN  # the trained networks (gan.G, gan.D)
    seconds: float  # training time (evaluation and files excluded)
    run_dir: Optional[Path] = None  # where the files are; None when out was None
    files: dict = field(default_factory=dict)  # {"curves": Path, ...}


# ---------------------------------------------------------------------------------------------
# Data and noise


def sine_batch(rng: np.random.Generator, n: int, n_points: int = 10) -> np.ndarray:
    """Seed 002's real samples: (n, n_points) float64, mult * sin(x0 + freq * i), i = 0..n_points-1,
    x0 ~ U(0, 1), freq ~ U(1.2, 1.5), mult ~ U(0.5, 0.8) (the ranges of metrics.signals)."""
    x0, freq, mult = (rng.uniform(*SINE_RANGES[k], size=(n, 1)) for k in ("x0", "freq", "mult"))
    return mult * np.sin(x0 + freq * np.arange(n_points))  # (n, 1) with (n_points,) -> (n, n_points)


def _blocks(draw: Callable[[int], np.ndarray], batch: int, dtype, block_samples: int = 8192) -> Iterator[np.ndarray]:
    """Endless batches (batch, dim) cut from blocks drawn `block_samples` at a time: one vectorised
    draw serves many iterations (at batch 1 a draw per iteration would cost more than the step)."""
    per_block = max(1, block_samples // batch)
    while True:
        block = draw(per_block * batch).astype(dtype, copy=False)  # (per_block * batch, dim)
        yield from block.reshape(per_block, batch, -1)


def build_gan(cfg: SineConfig, rng: np.random.Generator) -> NumpyGAN:
    """G and D with the seed's init (G drawn first, as the seed does) and the configured optimizers."""
    G = build_generator(rng, cfg.z_dim, cfg.g_hidden, cfg.n_points, cfg.dtype)
    D = build_discriminator(rng, cfg.n_points, cfg.d_hidden, cfg.slope, cfg.dtype)
    opt_cls = OPTIMIZERS.get(cfg.optimizer)
    extra = {"momentum": cfg.momentum} if cfg.optimizer == "sgd" else {"betas": cfg.betas}
    opt_G = opt_cls([G.flat], lr=cfg.lr_g, **extra)
    opt_D = opt_cls([D.flat], lr=cfg.lr_d, **extra)
    return NumpyGAN(G, D, opt_G, opt_D, cfg.g_loss, cfg.grad_clip, cfg.clip_bias_grads, cfg.weight_clip)


def generate(G: Sequential, z: np.ndarray) -> np.ndarray:
    """G(z) as a fresh array: z (N, z_dim) -> (N, n_points)."""
    return np.array(G.forward(z), copy=True)


# ---------------------------------------------------------------------------------------------
# Training


def fit(gan: NumpyGAN, cfg: SineConfig, data_rng: np.random.Generator, noise_rng: np.random.Generator,
        eval_z: np.ndarray, on_record: Optional[Callable[[dict], None]] = None) -> tuple[list[dict], float]:
    """Run cfg.iterations of the seed's iteration -> (stats records, training seconds).

    A record every cfg.log_every iterations holds the means over those iterations of loss_D_real,
    loss_D_fake, loss_D (their sum), loss_G, d_real (mean D(x)) and d_fake (mean D(G(z)) at the
    G step); every cfg.eval_every iterations it also holds sine_share of G(eval_z).
    """
    dtype = as_dtype(cfg.dtype)
    real = _blocks(lambda n: sine_batch(data_rng, n, cfg.n_points), cfg.batch_size, dtype)
    noise = _blocks(lambda n: noise_rng.standard_normal((n, cfg.z_dim)), cfg.batch_size, dtype)
    records: list[dict] = []
    sums = [0.0] * 5
    count, train_seconds = 0, 0.0
    start = time.perf_counter()
    for it in range(1, cfg.iterations + 1):
        out = gan.train_step(next(real), next(noise))
        for k in range(5):
            sums[k] += out[k]
        count += 1
        if it % cfg.log_every and it != cfg.iterations:
            continue
        train_seconds += time.perf_counter() - start
        records.append(_record(it, sums, count, train_seconds, cfg.batch_size))
        if cfg.eval_every and (it % cfg.eval_every == 0 or it == cfg.iterations):
            records[-1]["sine_share"] = sine_metrics(generate(gan.G, eval_z))["sine_share"]
        if on_record is not None:
            on_record(records[-1])
        sums, count = [0.0] * 5, 0
        start = time.perf_counter()
    return records, train_seconds


def _record(it: int, sums: list[float], count: int, seconds: float, batch: int) -> dict:
    loss_real, loss_fake, loss_g, d_real, d_fake = (s / count for s in sums)
    if not all(math.isfinite(v) for v in (loss_real, loss_fake, loss_g)):
        raise GanlandError(f"numpy-sine: the losses became NaN or infinite at iteration {it}; keep grad_clip and "
                           "weight_clip on, or lower lr_g / lr_d")
    return {"step": it, "loss_D_real": loss_real, "loss_D_fake": loss_fake, "loss_D": loss_real + loss_fake,
            "loss_G": loss_g, "d_real": d_real, "d_fake": d_fake, "samples_seen": it * batch,
            "seconds": round(seconds, 4)}


def train_sine(iterations: int = 50_000, batch_size: int = 1, seed: int = 0, out: Optional[str | Path] = None,
               on_record: Optional[Callable[[dict], None]] = None, **options) -> SineResult:
    """Train seed 002's GAN on sine signals -> SineResult (result.metrics["sine_share"], ...).

    options: any other SineConfig field (optimizer="adam", lr_g=..., dtype="float32", ...).
    out: a run folder to write (it must not exist or be empty); None writes no files.
    on_record: called with every stats record (e.g. to print progress).
    """
    cfg = make_config(iterations=iterations, batch_size=batch_size, seed=seed, **options)
    run_dir = _check_out(out)
    init_ss, data_ss, noise_ss, eval_ss = np.random.SeedSequence(cfg.seed).spawn(4)
    gan = build_gan(cfg, np.random.default_rng(init_ss))
    eval_rng = np.random.default_rng(eval_ss)
    eval_z = eval_noise(cfg.n_eval, cfg.z_dim, cfg.seed, cfg.dtype)  # (n_eval, z_dim): `ganland eval --seed` draws it too

    stats, seconds = fit(gan, cfg, np.random.default_rng(data_ss), np.random.default_rng(noise_ss), eval_z, on_record)
    curves = generate(gan.G, eval_z).astype(np.float32)  # (n_eval, n_points), as `ganland sample` gives them
    metrics = sine_metrics(curves)
    result = SineResult(metrics=metrics, stats=stats, config=cfg, gan=gan, seconds=seconds, run_dir=run_dir)
    if run_dir is not None:
        real = sine_batch(eval_rng, 50, cfg.n_points)
        result.files = write_run(run_dir, result, curves, real)
    return result


# ---------------------------------------------------------------------------------------------
# The run folder


def _check_out(out: Optional[str | Path]) -> Optional[Path]:
    if out is None:
        return None
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(f"run folder {path} already exists and is not empty; choose another --out")
    return path


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN (e.g. a spread over fewer than 2 passing curves) -> null
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_run(run_dir: Path, result: SineResult, curves: np.ndarray, real: np.ndarray) -> dict:
    """Write the run folder's files -> {name: path}."""
    from ..viz.plots import loss_curves

    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    cfg = result.config
    files = {name: run_dir / f for name, f in (
        ("config", "config.yaml"), ("stats", "stats.jsonl"), ("metrics", "metrics.json"),
        ("scores", "metrics.jsonl"), ("curves", "samples/latest.png"), ("loss", "samples/training.png"),
        ("weights", "weights.npz"), ("samples", "samples.npz"))}
    settings = {"engine": ENGINE, **_json_safe(dataclasses.asdict(cfg))}
    files["config"].write_text(yaml.safe_dump(settings, sort_keys=False))
    with open(files["stats"], "w") as f:
        for rec in result.stats:
            f.write(json.dumps(_json_safe(rec)) + "\n")
    summary = {
        "sine_metrics": result.metrics,
        "protocol": {"n_generated": int(curves.shape[0]), "z": f"N(0, 1), {cfg.z_dim}-D",
                     "seed": cfg.seed, "metric": "ganland.metrics.signals.sine_metrics"},
        "iterations": cfg.iterations, "batch_size": cfg.batch_size, "train_seconds": round(result.seconds, 3),
        "samples_per_second": round(cfg.iterations * cfg.batch_size / max(result.seconds, 1e-9), 1),
    }
    files["metrics"].write_text(json.dumps(_json_safe(summary), indent=2) + "\n")
    files["scores"].write_text(json.dumps(score_record(run_dir, result, len(curves))) + "\n")  # as append_score
    weights = {f"G.{k}": v for k, v in result.gan.G.state_dict().items()}
    weights.update({f"D.{k}": v for k, v in result.gan.D.state_dict().items()})
    np.savez(files["weights"], **weights)
    np.savez_compressed(files["samples"], samples=curves.astype(np.float32))
    title = (f"NumPy GAN, {cfg.optimizer}, batch {cfg.batch_size}, {cfg.iterations} iterations: "
             f"{100 * result.metrics['sine_share']:.0f}% sine-like")
    plot_curves(files["curves"], curves[:50], real, title)
    loss_curves(result.stats, files["loss"], title=f"NumPy GAN losses (means over {cfg.log_every} iterations)")
    return files


def score_record(run_dir: Path, result: SineResult, n: int) -> dict:
    """The final metrics as a metrics.jsonl record, under the protocol `ganland eval` gives a torch
    `sine` run (evaluator "sine", closed-form target, n generated curves), so `compare` takes both."""
    from ..version import __version__

    cfg = result.config
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "source": f"run {run_dir} step {cfg.iterations}",
            "step": cfg.iterations, "seconds": 0.0, "metrics": result.metrics,
            "protocol": {"evaluator": "sine", "dataset": "sine", "n_generated": n, "n_real": 0,
                         "reference": sine_reference(dict(SINE_RANGES, n_points=cfg.n_points)), "seed": cfg.seed,
                         "feature_net": None, "feature_net_sha256": None, "ganland_version": __version__}}


def plot_curves(path: Path, fake: np.ndarray, real: np.ndarray, title: str = "") -> Path:
    """Seed 002's picture: generated curves fake (n, n_points) drawn over real ones (m, n_points) in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    t = np.arange(fake.shape[1])
    for i, row in enumerate(real):
        ax.plot(t, row, color="0.75", lw=1.5, zorder=1, label=f"real ({len(real)})" if i == 0 else None)
    for i, row in enumerate(fake):
        ax.plot(t, row, lw=1, zorder=2, label=f"generated ({len(fake)})" if i == 0 else None)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("i")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def load_weights(path: str | Path, dtype=None) -> tuple[Sequential, Sequential]:
    """(G, D) rebuilt from a weights.npz written by train_sine (sizes read from the arrays).
    D's LeakyReLU slope is the seed's 0.2."""
    with np.load(Path(path)) as z:
        arrays = {k: z[k] for k in z.files}
    try:
        g = {k[2:]: v for k, v in arrays.items() if k.startswith("G.")}
        d = {k[2:]: v for k, v in arrays.items() if k.startswith("D.")}
        dt = dtype or g["0.W"].dtype
        rng = np.random.default_rng(0)  # placeholder init, overwritten below
        G = build_generator(rng, g["0.W"].shape[0], g["0.W"].shape[1], g["4.W"].shape[1], dt)
        D = build_discriminator(rng, d["0.W"].shape[0], d["0.W"].shape[1], 0.2, dt)
    except KeyError as e:
        raise ConfigError(f"{path}: no array {e} in it; give the weights.npz of a numpy-sine run") from None
    G.load_state_dict(g)
    D.load_state_dict(d)
    return G, D


# ---------------------------------------------------------------------------------------------
# A trained run, for `ganland eval` and `ganland sample`


def is_numpy_run(path: Path) -> bool:
    """Whether `path` is the folder of a numpy-sine run."""
    config = Path(path) / "config.yaml"
    if not (Path(path) / "weights.npz").is_file() or not config.is_file():
        return False
    try:
        return (yaml.safe_load(config.read_text()) or {}).get("engine") == ENGINE
    except (yaml.YAMLError, OSError, AttributeError):
        return False


def eval_noise(n: int, z_dim: int, seed: int, dtype) -> np.ndarray:
    """The noise a run is scored on: N(0, 1) (n, z_dim) from `seed`, the draws `ganland eval RUN
    --seed SEED` (and `ganland sample`) make, so the recorded score can be repeated exactly."""
    return np.random.default_rng(seed).standard_normal((n, z_dim)).astype(dtype)


class SineGenerator:
    """A numpy-sine run's generator, with what `ganland eval` and `ganland sample` ask of a model:
    `.sample(n, seed=...)` -> {"samples": float32 (n, n_points)}, and `.config`, a ganland Config
    of the sine target (so evaluation scores it like a torch `sine` run)."""

    is_image, n_classes, class_names = False, 0, None

    def __init__(self, run_dir: Path):
        from ..config import load_config

        settings = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
        settings.pop("engine", None)
        self.settings = make_config(**settings)
        self.G, _ = load_weights(Path(run_dir) / "weights.npz")
        self.step, self.shape = self.settings.iterations, (self.settings.n_points,)
        self.config = load_config(None, {"recipe": ENGINE, "data.name": "sine",
                                         "data.options": {"n_points": self.settings.n_points}, "model.name": "mlp",
                                         "model.z_dim": self.settings.z_dim, "train.steps": self.settings.iterations,
                                         "train.seed": self.settings.seed})

    def sample(self, n: int, classes=None, seed: int = 0, batch_size: int = 0, truncation=None) -> dict:
        if classes is not None or truncation is not None:
            raise ConfigError("a numpy-sine run is unconditional and draws plain N(0, 1) noise: no classes or "
                              "truncation")
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        z = eval_noise(n, self.settings.z_dim, seed, self.settings.dtype)
        return {"samples": generate(self.G, z).astype(np.float32)}

    def interpolate(self, *args, **kwargs) -> dict:
        raise ConfigError("latent walks are for ganland's torch models; a numpy-sine run samples only "
                          "(ganland sample RUN --n N --out FILE.npz)")
