"""Metrics on a classifier's outputs for generated samples: Inception Score, class coverage,
conditional accuracy.

Inputs are class probabilities (N, K) (rows of a softmax) or, where stated, predicted labels (N,).
With a domain classifier instead of Inception-v3 these are "classifier" scores: compare them only
between runs that use the same classifier (its hash is part of the protocol).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError

_ROW_SUM_TOL = 1e-3  # largest accepted |sum of a probability row - 1| (float32 softmax is ~1e-6 off)


def _as_probs(probs, name: str) -> np.ndarray:
    """Check probabilities (N, K): finite, >= 0, rows summing to 1; returned renormalised, float64."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ConfigError(f"{name}: expected class probabilities (N, K), got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ConfigError(f"{name}: probabilities contain NaN or inf")
    if (p < 0).any():
        raise ConfigError(f"{name}: probabilities must be >= 0 (softmax outputs, not logits)")
    sums = p.sum(axis=1)
    worst = float(np.abs(sums - 1.0).max())
    if worst > _ROW_SUM_TOL:
        raise ConfigError(f"{name}: rows must sum to 1 (softmax outputs, not logits); worst is off by {worst:.3g}")
    return p / sums[:, None]


def inception_score(probs, n_splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))) of probs (N, K) -> (mean, std) over n_splits splits.

    As in Salimans et al. 2016: the rows are cut in order into n_splits nearly equal parts
    (1 <= n_splits <= N), p(y) is the mean row of each part, and mean/std (ddof = 0) are taken
    over the parts' scores. It lies in [1, K]: K for confident predictions spread evenly over K
    classes, 1 when every row is the same.
    """
    p = _as_probs(probs, "inception_score")
    n_splits = int(n_splits)
    if not 1 <= n_splits <= p.shape[0]:
        raise ConfigError(f"inception_score: n_splits must be in [1, N={p.shape[0]}], got {n_splits}")
    scores = []
    for part in np.array_split(p, n_splits, axis=0):  # (n_i, K)
        py = part.mean(axis=0, keepdims=True)  # (1, K), the split's marginal p(y)
        # p log(p / p(y)) with 0 log 0 = 0; p(y) > 0 wherever p > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0)
        scores.append(np.exp(terms.sum(axis=1).mean()))
    scores = np.asarray(scores)
    return float(scores.mean()), float(scores.std())


def _labels(probs_or_labels, n_classes: int, name: str) -> np.ndarray:
    """Predicted labels (N,) from probabilities (N, K) (argmax) or labels (N,)."""
    n_classes = int(n_classes)
    if n_classes < 1:
        raise ConfigError(f"{name}: n_classes must be >= 1, got {n_classes}")
    arr = np.asarray(probs_or_labels)
    if arr.ndim == 2:
        if arr.shape[1] != n_classes:
            raise ConfigError(f"{name}: probabilities have {arr.shape[1]} classes, n_classes is {n_classes}")
        return _as_probs(arr, name).argmax(axis=1)
    if arr.ndim != 1:
        raise ConfigError(f"{name}: expected probabilities (N, K) or labels (N,), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr)):
            raise ConfigError(f"{name}: labels must be integers, got dtype {arr.dtype}")
    labels = arr.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ConfigError(f"{name}: labels must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]")
    return labels


def class_histogram(probs_or_labels, n_classes: int) -> np.ndarray:
    """Counts (n_classes,) int64 of predicted classes, from probs (N, K) (argmax) or labels (N,)."""
    labels = _labels(probs_or_labels, n_classes, "class_histogram")
    return np.bincount(labels, minlength=int(n_classes)).astype(np.int64)


def class_coverage(probs_or_labels, n_classes: int, min_share: float = 0.01) -> dict:
    """Which classes a generator produces, from probs (N, K) or predicted labels (N,), N >= 1.

    Returns
      coverage            share of classes predicted for at least one sample
      coverage_min_share  share of classes predicted for at least min_share of the samples
                          (min_share = 0.01: classes holding >= 1 % of the samples)
      min_share           the threshold used
      entropy             entropy of the class histogram / log(n_classes), in [0, 1]: 1 when
                          every class is equally frequent, 0 when one class takes everything
      histogram           counts (n_classes,) as a list of ints
    """
    if not 0.0 <= float(min_share) <= 1.0:
        raise ConfigError(f"class_coverage: min_share must be in [0, 1], got {min_share}")
    if int(n_classes) < 2:
        raise ConfigError(f"class_coverage: needs n_classes >= 2, got {n_classes}")
    counts = class_histogram(probs_or_labels, n_classes)  # (K,)
    n = int(counts.sum())
    if n == 0:
        raise ConfigError("class_coverage: no samples")
    share = counts / n
    nz = share > 0
    entropy = float(-(share[nz] * np.log(share[nz])).sum() / np.log(len(counts))) + 0.0  # + 0.0: never "-0"
    return {
        "coverage": float((counts > 0).mean()),
        "coverage_min_share": float((share >= float(min_share)).mean()),
        "min_share": float(min_share),
        "entropy": entropy,
        "histogram": counts.tolist(),
    }


def _hits(probs, requested_labels, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(whether each sample's argmax class is the one asked for (N,), the requested labels (N,), K)."""
    p = _as_probs(probs, name)
    requested = _labels(requested_labels, p.shape[1], f"{name} requested_labels")
    if requested.shape[0] != p.shape[0]:
        raise ConfigError(f"{name}: {p.shape[0]} probability rows but {requested.shape[0]} requested labels")
    return p.argmax(axis=1) == requested, requested, p.shape[1]


def conditional_accuracy(probs, requested_labels) -> float:
    """Share of samples whose argmax class equals the class they were generated for.

    probs (N, K) from the classifier, requested_labels (N,) integers in [0, K).
    """
    return float(_hits(probs, requested_labels, "conditional_accuracy")[0].mean())


def conditional_accuracy_by_class(probs, requested_labels) -> list:
    """conditional_accuracy for each requested class: a list of K shares, None where no sample
    asked for that class. Where a conditional G falls short: set beside the classifier's own
    accuracy per class on real images (some garments are hard for it too)."""
    hit, requested, n_classes = _hits(probs, requested_labels, "conditional_accuracy_by_class")
    return [float(hit[requested == k].mean()) if (requested == k).any() else None for k in range(n_classes)]
