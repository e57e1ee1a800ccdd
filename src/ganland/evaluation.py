"""Evaluation: score samples under a recorded protocol (`ganland eval`, `ganland.evaluate`).

Images are judged through a feature network (the bundled Fashion-MNIST / MNIST CNNs, or the
reference Inception-v3 when the user has its weights) against the features of the dataset's
test split, computed once and cached per dataset content and feature-network hash; the metrics
come from a registry (IMAGE_METRICS) the evaluator loops over. Toy data are judged by their own
metrics: modes for 2-D mixtures, moments and distances for the 1-D normal, least-squares sine
fits for signals, and distances to fresh real draws for the rest (the swiss roll). Each dataset
names its evaluator (`dataset.evaluator`).

Every score carries its protocol: evaluator, dataset, feature network and hash, numbers of real
and generated samples, reference split (and a hash of its pixels), seed, ganland version.
Scores under different protocols are never compared (`compare` refuses).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from .version import __version__
from .errors import ConfigError
from .registry import Registry

REFERENCE_SPLIT = "test"


@dataclass(frozen=True)
class Protocol:
    """Everything that must be equal for two scores to be comparable."""

    evaluator: str  # a name in EVALUATORS: "images", "normal-1d", "sine", "mixture", "two-sample"
    dataset: str  # dataset name, with the image size when resized ("mnist@32px")
    n_generated: int  # generated samples scored
    n_real: int  # real samples they are scored against; 0 when the target is known in closed form
    reference: str  # "test split <hash of its pixels>" or the closed-form target
    seed: int  # seed of the generated noise and of the metrics' random subsets
    feature_net: Optional[str] = None  # feature network (images only)
    feature_net_sha256: Optional[str] = None  # SHA-256 of its weights
    ganland_version: str = __version__

    def key(self) -> tuple:
        """The fields that decide comparability (only the major.minor part of the version)."""
        d = asdict(self)
        d["ganland_version"] = ".".join(self.ganland_version.split(".")[:2])
        return tuple(sorted(d.items()))

    def differences(self, other: "Protocol") -> list[str]:
        a, b = dict(self.key()), dict(other.key())
        return [f"{k}: {a[k]!r} vs {b[k]!r}" for k in a if a[k] != b[k]]


@dataclass
class Score:
    """Metrics of one sample set under one protocol."""

    protocol: Protocol
    metrics: dict  # name -> number (histograms as lists)
    source: str = ""  # what was scored: "run ... step N", a samples file, "real training images"
    seconds: float = 0.0  # how long the evaluation took
    step: Optional[int] = None  # the generator step, for runs
    world_size: int = 1  # processes the work was split over (the score is the same; docs/distributed.md)

    def to_json(self) -> dict:
        return {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "source": self.source, "step": self.step,
                "seconds": round(self.seconds, 3), "world_size": self.world_size, "protocol": asdict(self.protocol),
                "metrics": self.metrics}

    @staticmethod
    def from_json(d: dict) -> "Score":
        return Score(Protocol(**d["protocol"]), d["metrics"], d.get("source", ""), d.get("seconds", 0.0), d.get("step"),
                     int(d.get("world_size", 1)))

    def summary(self) -> str:
        """The metrics as aligned 'name value' lines (histograms on one line)."""
        lines, width = [], max(map(len, self.metrics), default=0)
        for k, v in self.metrics.items():
            shown = " ".join(_shown(x, "g") for x in v) if isinstance(v, list) else _shown(v, ".6g")
            lines.append(f"  {k:<{width}} {shown}")
        return "\n".join(lines)


def _shown(value, spec: str) -> str:
    """A metric as text; a negative zero prints as 0."""
    return format(value + 0.0, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def append_score(path: Path, score: Score) -> None:
    """Add one JSON line to a metrics.jsonl file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(score.to_json()) + "\n")


def read_scores(path: Path) -> list[Score]:
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise ConfigError(f"no scores at {path}: evaluate first (ganland eval RUN)")
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(Score.from_json(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by a kill
    return out


# ---------------------------------------------------------------------------------------------
# The reference: the dataset's test split, and its features cached on disk


def _cache_dir() -> Path:
    from .data.sources import cache_root

    return cache_root() / "reference-features"


def content_hash(x: torch.Tensor) -> str:
    """SHA-256 of a uint8 image tensor's bytes (identifies the reference set exactly)."""
    return hashlib.sha256(np.ascontiguousarray(x.numpy()).tobytes()).hexdigest()


def reference_features(images: torch.Tensor, label: str, extractor, batch_size: int = 500):
    """(features (N, F), probs (N, K) or None, content hash) of uint8 images (N, C, H, W),
    cached under the images' hash and the feature network's hash."""
    content = content_hash(images)
    path = _cache_dir() / f"{label}-{content[:16]}-{extractor.name}-{extractor.sha256[:16]}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return z["features"], (z["probs"] if z["probs"].size else None), content
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache entry is recomputed
    print(f"ganland: computing the {extractor.name} features of {label}'s {REFERENCE_SPLIT} split ({len(images):,} "
          f"images), once: they are cached in {path.parent}", file=sys.stderr, flush=True)
    feats, probs = extractor.extract(images, batch_size=batch_size, progress=f"{label} features")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"  # several processes may write the same entry
    with open(tmp, "wb") as f:
        np.savez(f, features=feats, probs=probs if probs is not None else np.zeros(0))
    tmp.replace(path)
    return feats, probs, content


@dataclass
class Target:
    """What samples are judged against: the reference split of a dataset."""

    dataset: object  # ArrayDataset (images: its test split) or SamplerDataset (toys)
    label: str  # dataset name in the protocol
    shape: tuple  # one sample's shape in model layout


def dataset_label(cfg) -> str:
    """The dataset in a protocol: "mnist", "mnist@32px"; image-to-image runs add the degradation
    that makes their inputs ("fashion-mnist+downsample(factor=4)")."""
    label = cfg.data.name + (f"@{cfg.data.image_size}px" if cfg.data.image_size else "")
    from .build import build_degradation
    from .data.degrade import degrade_name

    if degrade_name(cfg) != "none":
        label += "+" + build_degradation(degrade_name(cfg), cfg.data.degrade_options).spec()
    return label


def build_target(cfg) -> Target:
    """The reference split of the configured dataset."""
    from .build import build_dataset

    ref = build_dataset(cfg, REFERENCE_SPLIT)
    return Target(ref, dataset_label(cfg), tuple(ref.shape))


# ---------------------------------------------------------------------------------------------
# Image metrics: a registry the image evaluator loops over, in registration order


@dataclass
class ImageFeatures:
    """What the image metrics read: features of both sides, the fake side's class probabilities."""

    real: np.ndarray  # (N, F) float64 features of the reference split
    fake: np.ndarray  # (M, F) float64 features of the generated images
    fake_probs: Optional[np.ndarray]  # (M, K) class probabilities, or None (no classifier head)
    extractor: object  # the FeatureExtractor (its n_classes and class_names)
    labels: Optional[np.ndarray]  # (M,) the classes the images were generated for, or None
    seed: int  # seed of the metrics' random subsets


@dataclass(frozen=True)
class ImageMetric:
    fn: Callable[[ImageFeatures], dict]  # features -> {name: value}
    applies: Callable[[ImageFeatures], bool] = lambda f: True  # noqa: E731
    full_only: bool = False  # computed only for full evaluations (`ganland eval`; in training with eval.full)


IMAGE_METRICS: Registry[ImageMetric] = Registry("image metric")


def _fid(f: ImageFeatures) -> dict:
    from .metrics import feature_statistics, frechet_distance

    return {"fid": frechet_distance(feature_statistics(f.real), feature_statistics(f.fake))}


def _kid(f: ImageFeatures) -> dict:
    from .metrics import kid

    mean, std = kid(f.real, f.fake, seed=f.seed)
    return {"kid": mean, "kid_std": std}


def _prdc(f: ImageFeatures) -> dict:
    from .metrics import prdc

    return prdc(f.real, f.fake)


def _inception_score(f: ImageFeatures) -> dict:
    from .metrics import inception_score

    mean, std = inception_score(f.fake_probs, n_splits=min(10, len(f.fake_probs)))
    return {"is": mean, "is_std": std}


def _class_coverage(f: ImageFeatures) -> dict:
    from .metrics import class_coverage

    cov = class_coverage(f.fake_probs, f.extractor.n_classes)
    return {"class_coverage": cov["coverage"], "class_coverage_1pct": cov["coverage_min_share"],
            "class_entropy": cov["entropy"], "class_histogram": cov["histogram"]}


def _conditional_accuracy(f: ImageFeatures) -> dict:
    from .metrics import conditional_accuracy, conditional_accuracy_by_class

    return {"conditional_accuracy": conditional_accuracy(f.fake_probs, f.labels),
            "conditional_accuracy_by_class": [None if a is None else round(a, 4)
                                              for a in conditional_accuracy_by_class(f.fake_probs, f.labels)]}


def _has_classifier(f: ImageFeatures) -> bool:
    return f.fake_probs is not None and bool(f.extractor.n_classes)


def _has_dataset_classes(f: ImageFeatures) -> bool:
    # Class metrics only where the network's classes are the dataset's (the bundled CNNs);
    # ImageNet classes say nothing about which garment or digit an image shows.
    return f.fake_probs is not None and f.extractor.class_names is not None


IMAGE_METRICS.register("fid", help="Fréchet distance of the feature statistics")(ImageMetric(_fid))
IMAGE_METRICS.register("kid", help="kernel inception distance (unbiased MMD^2, subsets)")(
    ImageMetric(_kid, full_only=True))
IMAGE_METRICS.register("prdc", help="precision/recall (k=3), density/coverage (k=5)")(
    ImageMetric(_prdc, full_only=True))
IMAGE_METRICS.register("is", help="Inception Score with the feature network's classifier")(
    ImageMetric(_inception_score, _has_classifier))
IMAGE_METRICS.register("class-coverage", help="classes generated, their histogram and entropy")(
    ImageMetric(_class_coverage, _has_dataset_classes))
IMAGE_METRICS.register("conditional-accuracy", help="share of images classified as the class asked for")(
    ImageMetric(_conditional_accuracy, lambda f: _has_dataset_classes(f) and f.labels is not None))


# ---------------------------------------------------------------------------------------------
# Evaluators, one per kind of data; each dataset names its own (`dataset.evaluator`).
# fn(samples, labels, target, seed, full, feature_net, weights) -> (metrics dict, Protocol)


@dataclass(frozen=True)
class Evaluator:
    fn: Callable
    n_default: int  # generated samples scored by default (the literature's protocol)
    doc: str
    headline: str  # the metric a quality curve shows
    log_scale: bool = False  # whether the curve's axis is logarithmic (a distance that falls by orders)


EVALUATORS: Registry[Evaluator] = Registry("evaluator")


def evaluator_for(target: Target) -> str:
    """The name of the evaluator the target's dataset names (checked against the registry)."""
    name = target.dataset.evaluator
    EVALUATORS.get(name)  # an unknown name fails here with the known ones listed
    return name


def load_extractor(dataset, feature_net: Optional[str], weights: Optional[str]):
    """The feature network `feature_net`, or the one the dataset names, or Inception-v3 (FID)."""
    from .metrics.features import FEATURE_NETS

    name = feature_net or getattr(dataset, "feature_net", None) or "inception-v3-fid"
    return FEATURE_NETS.get(name)(weights=weights)


def _images(samples: np.ndarray, labels, target: Target, seed: int, full: bool, feature_net=None, weights=None,
            extractor=None):
    from .metrics.features import to_uint8_images

    fake = to_uint8_images(samples)  # (N, H, W, C) uint8
    c, h, w = target.shape
    if fake.shape[1:] != (h, w, c):
        raise ConfigError(f"samples have shape {fake.shape[1:]} (H, W, C) but {target.label} images are "
                          f"{(h, w, c)}; generate at the dataset's size (or set data.image_size to match)")
    extractor = extractor or load_extractor(target.dataset, feature_net, weights)
    real_feats, _, content = reference_features(target.dataset.x, target.label, extractor)
    fake_feats, fake_probs = extractor.extract(fake)
    features = ImageFeatures(real_feats, fake_feats, fake_probs, extractor, labels, seed)
    m: dict = {}
    for _, metric in IMAGE_METRICS.items():
        if (full or not metric.full_only) and metric.applies(features):
            m.update(metric.fn(features))
    protocol = Protocol("images", target.label, len(fake), len(real_feats), f"{REFERENCE_SPLIT} split {content[:16]}",
                        seed, extractor.name, extractor.sha256)
    return m, protocol


def _restoration(samples: np.ndarray, labels, target: Target, seed: int, full: bool, feature_net=None, weights=None,
                 extractor=None):
    """Image-to-image outputs: samples[i] is the model's output for the input of test image i
    (inputs from `PairedDataset.inputs` with this seed). Distortion against the truth (PSNR, SSIM)
    and, in the feature network's space, the distance of the outputs' distribution to the test
    split's (FID and the other image metrics): the perception-distortion pair."""
    from .metrics.features import to_uint8_images
    from .metrics.restoration import psnr_per_image, ssim_per_image

    data = target.dataset
    fake = to_uint8_images(samples)
    if len(fake) > len(data):
        raise ConfigError(f"{len(fake)} outputs for a test split of {len(data)} images: score at most {len(data)}")
    truth = data.x[: len(fake)].permute(0, 2, 3, 1).numpy()  # the targets of the first n test inputs
    if fake.shape != truth.shape:
        raise ConfigError(f"outputs have shape {fake.shape[1:]} (H, W, C) but the targets are {truth.shape[1:]}")
    base = target.label.split("+")[0]  # the image dataset's own reference features (shared cache)
    m, images = _images(fake, None, Target(data.base, base, target.shape), seed, full, feature_net, weights,
                        extractor)
    p, q = psnr_per_image(fake, truth), ssim_per_image(fake, truth)
    out = {"psnr": float(p.mean()), "ssim": float(q.mean())}
    if full:
        out.update(psnr_std=float(p.std()), ssim_std=float(q.std()))
    out.update(m)
    protocol = Protocol("restoration", target.label, len(fake), images.n_real,
                        f"{images.reference}; inputs of its first {len(fake)} images, seed {seed}", seed,
                        images.feature_net, images.feature_net_sha256)
    return out, protocol


def restoration_n(target: Target, n: Optional[int]) -> int:
    """How many test images a restoration score takes: n (None: the protocol's), at most the split."""
    return min(n or EVALUATORS.get("restoration").n_default, len(target.dataset))


def restoration_inputs(target: Target, n: Optional[int], seed: int) -> torch.Tensor:
    """The fixed inputs (n, *cond_shape) that restoration scores are made of: those of the first n
    test images, their randomness from `seed` (n None: the evaluator's protocol, at most the split)."""
    return target.dataset.inputs(torch.arange(restoration_n(target, n)), seed)


def _normal_1d(samples, labels, target: Target, seed, full, **_):
    from .metrics import normal_1d_stats

    t = target.dataset.target
    m = normal_1d_stats(np.asarray(samples, dtype=np.float64).reshape(-1), t["mean"], t["std"])
    return m, Protocol("normal-1d", target.label, len(samples), 0, f"N({t['mean']:g}, {t['std']:g}^2)", seed)


def _sine(samples, labels, target: Target, seed, full, **_):
    from .metrics import sine_metrics
    from .metrics.signals import sine_reference

    m = sine_metrics(np.asarray(samples, dtype=np.float64))
    return m, Protocol("sine", target.label, len(samples), 0, sine_reference(target.dataset.target), seed)


def _mixture(samples, labels, target: Target, seed, full, **_):
    from .metrics import mode_stats

    t = target.dataset.target
    m = mode_stats(np.asarray(samples, dtype=np.float64), t["modes"], t["std"])
    ref = f"{len(t['modes'])} Gaussian modes, std {t['std']:g}"
    return m, Protocol("mixture", target.label, len(samples), 0, ref, seed)


def _two_sample(samples, labels, target: Target, seed, full, **_):
    """Vectors against as many real ones: fresh draws of a sampler (seeded), or the test split."""
    from .metrics import energy_distance, prdc

    fake = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    data = target.dataset
    if data.finite:
        real = data.x.double().numpy().reshape(len(data), -1)
        reference = f"{REFERENCE_SPLIT} split {content_hash(data.x)[:16]}"
    else:  # a stream offset from the training draws' seeds, so the reference is never a training batch
        real = data.draw(len(fake), torch.Generator().manual_seed(1_000_003 + seed)).double().numpy()
        reference = f"{len(fake)} fresh draws, seed {1_000_003 + seed}"
    m = {"energy_distance": energy_distance(real, fake)}
    m.update(prdc(real, fake))
    return m, Protocol("two-sample", target.label, len(fake), len(real), reference, seed)


EVALUATORS.register("images", help="FID, KID, precision/recall, density/coverage, IS, class coverage")(
    Evaluator(_images, 10_000, "feature-network metrics against the test split", "fid", log_scale=True))
EVALUATORS.register("restoration", help="PSNR and SSIM against the truth, and FID etc. of the outputs (image-to-image)")(
    Evaluator(_restoration, 10_000, "distortion to the targets, feature-network distances to the test split", "fid",
              log_scale=True))
EVALUATORS.register("normal-1d", help="mean, std, Kolmogorov-Smirnov and 1-Wasserstein to the target normal")(
    Evaluator(_normal_1d, 10_000, "moments and distances to N(mean, std)", "w1", log_scale=True))
EVALUATORS.register("sine", help="share of curves fitted as sines in the data's ranges; residuals; spreads")(
    Evaluator(_sine, 1_000, "least-squares sine fits", "sine_share"))
EVALUATORS.register("mixture", help="modes captured, high-quality share, reverse KL (2,500 samples)")(
    Evaluator(_mixture, 2_500, "VEEGAN/PacGAN mode statistics", "high_quality"))
EVALUATORS.register("two-sample", help="energy distance, precision/recall, density/coverage against real samples")(
    Evaluator(_two_sample, 2_500, "distances to as many real samples", "energy_distance", log_scale=True))


# ---------------------------------------------------------------------------------------------
# Public entry points


def evaluate_samples(samples: np.ndarray, target: Target, seed: int = 0, labels: Optional[np.ndarray] = None,
                     full: bool = True, feature_net: Optional[str] = None, weights: Optional[str] = None,
                     source: str = "", extractor=None) -> Score:
    """Score an array of samples (images (N, H, W[, C]) uint8 or float; vectors (N, D)) against `target`."""
    t0 = time.perf_counter()
    ev = EVALUATORS.get(evaluator_for(target))
    kwargs = {"feature_net": feature_net, "weights": weights}
    if extractor is not None:
        kwargs["extractor"] = extractor
    metrics, protocol = ev.fn(samples, labels, target, seed, full, **kwargs)
    return Score(protocol, _plain(metrics), source, time.perf_counter() - t0)


def evaluate_run(run: str | Path, n: Optional[int] = None, seed: Optional[int] = None,
                 feature_net: Optional[str] = None, weights: Optional[str] = None, record: bool = True,
                 device: str = "cpu", world=None) -> Score:
    """Score the newest checkpoint of a run folder (or a checkpoint file, or an exported generator)
    and append the score to the run's metrics.jsonl.

    Every setting defaults to the run's own, so offline and in-training scores are comparable: the
    feature network and its weights (`eval.feature_net`, `eval.inception_weights`), and, for a run
    that evaluated itself while training (`eval.every` > 0), the number of samples and the noise
    seed (`eval.n_samples`, `eval.seed`; the same noise gives the same samples, so the score of the
    step it last evaluated is repeated exactly). Otherwise n is the evaluator's protocol (10,000
    images, 2,500 2-D points, ...) and the seed 0.

    world: several processes (torchrun) split the generating and the feature network's work; the
    score is the one-process score, and rank 0 records it."""
    from .generator import Generator, load
    from .training.distributed import World, sharded

    world = world or World.single()

    run = Path(run)
    model = load(run, device=device)
    e = model.config.eval
    feature_net, weights = feature_net or e.feature_net, weights or e.inception_weights
    target = build_target(model.config)
    n = n or (e.n_samples if e.every else EVALUATORS.get(evaluator_for(target)).n_default)
    seed = seed if seed is not None else (e.seed if e.every else 0)
    run_dir = run if run.is_dir() else (run.parent.parent if run.parent.name == "checkpoints" else None)
    if isinstance(model, Generator) and model.paired:  # image-to-image: the outputs of the fixed test inputs
        parts = []  # chunk by chunk (each process translating its share of each): the memory stays small
        for inputs in target.dataset.iter_inputs(torch.arange(restoration_n(target, n)), seed):
            parts += world.gather(model.translate(inputs[world.chunk(len(inputs))]))
        out = {"images": np.concatenate(parts)}
    elif world.active and isinstance(model, Generator):  # each process makes its share of the same samples
        z, labels, mine = model.noise(n, seed), model.labels(n), world.chunk(n)
        parts = world.gather(model.outputs(z[mine], labels[mine] if labels is not None else None))
        out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    else:
        out = model.sample(n, seed=seed)
    samples = out["images"] if model.is_image else out["samples"]
    extractor = sharded(load_extractor(target.dataset, feature_net, weights), world) if model.is_image else None
    score = evaluate_samples(samples, target, seed, out.get("labels"), True, feature_net, weights,
                             f"run {run_dir or run} step {model.step}", extractor=extractor)
    score.step, score.world_size = model.step, world.size
    if record and run_dir is not None and world.main:
        append_score(run_dir / "metrics.jsonl", score)
    return score


def evaluate_real(cfg, n: Optional[int] = None, seed: int = 0, feature_net: Optional[str] = None,
                  weights: Optional[str] = None, full: bool = True) -> Score:
    """The real-data floor: n real *training* samples scored as if generated, same protocol.

    For image-to-image data (data.degrade) the floor is the inputs themselves, restored by nothing:
    for super-resolution that is bicubic upsampling, for inpainting the grey holes, for denoising
    the noisy images; a model has to beat it."""
    from .build import build_dataset
    from .data import to_uint8

    target = build_target(cfg)
    deg = getattr(target.dataset, "degradation", None)
    if deg is not None:
        inputs = restoration_inputs(target, n, seed)
        samples = to_uint8(inputs[:, : target.shape[0]]).permute(0, 2, 3, 1).numpy()
        return evaluate_samples(samples, target, seed, None, full, feature_net, weights,
                                f"the inputs themselves ({deg.baseline})")
    n = n or EVALUATORS.get(evaluator_for(target)).n_default
    train = build_dataset(cfg, "train")
    gen = torch.Generator().manual_seed(seed)
    if train.finite:
        if n > len(train):
            raise ConfigError(f"asked for {n} real samples but the training split holds {len(train)}: pass "
                              f"--n {len(train)} or fewer (n=... from Python), and score generated samples with "
                              f"the same n so that the scores stay comparable")
        idx = torch.randperm(len(train), generator=gen)[:n]
        x = train.x[idx]
        samples = x.permute(0, 2, 3, 1).numpy() if train.is_image else x.numpy()
        labels = train.y[idx].numpy() if train.y is not None else None
    else:
        samples, labels = train.draw(n, gen).numpy(), None
    return evaluate_samples(samples, target, seed, labels, full, feature_net, weights, "real training samples")


def samples_target(dataset: str, root: Optional[str] = None, image_size: Optional[int] = None) -> Target:
    """The reference of a named dataset (for scoring foreign samples)."""
    from .config import load_config

    return build_target(load_config(None, {"data.name": dataset, "data.root": root, "data.image_size": image_size}))


def compare(scores: list[Score]) -> list[Score]:
    """The scores, after checking that they share one protocol; raises ConfigError otherwise."""
    if not scores:
        raise ConfigError("nothing to compare")
    first = scores[0]
    for s in scores[1:]:
        diff = first.protocol.differences(s.protocol)
        if diff:
            raise ConfigError(f"refusing to compare {first.source or 'score 1'} with {s.source or 'another score'}: "
                              f"their protocols differ ({'; '.join(diff)}). {_how_to_match(first.protocol, s.protocol)}")
    return scores


# The `ganland eval` flag that sets each protocol field; the other fields follow from the data.
EVAL_FLAGS = {"n_generated": "--n", "seed": "--seed", "feature_net": "--feature-net"}


def _how_to_match(a: Protocol, b: Protocol) -> str:
    differ = {k for k, _, _ in (d.partition(":") for d in a.differences(b))}
    flags = [f"{EVAL_FLAGS[k]} {getattr(a, k)}" for k in ("n_generated", "seed", "feature_net")
             if k in differ and k in EVAL_FLAGS]
    if differ - set(EVAL_FLAGS) - {"feature_net_sha256"}:
        return ("They were scored against different data or by a different evaluator or version: no flag makes them "
                "comparable; evaluate both runs again with one ganland, on one dataset.")
    return f"Evaluate them with the same settings, e.g. `ganland eval RUN {' '.join(flags)}` for each run."


def _plain(metrics: dict) -> dict:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, (np.floating, np.integer)):
            v = v.item()
        out[k] = v
    return out
