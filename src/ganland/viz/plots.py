"""Pictures of samples for each kind of data, chosen by the dataset's `plot` name.

grid: images, an 8 x 8 grid (one column per class for conditional models).
curves: seed 002's picture, 50 generated sine curves, next to 50 real ones.
hist: 1-D samples as a histogram over the target density.
scatter: 2-D samples over the real distribution and its modes, on D's logit surface.
Every plot takes `fake` (and `real`) as float numpy arrays in data units.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..registry import Registry
from .grid import save_grid


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass(frozen=True)
class Plot:
    n: int  # generated samples the picture shows
    draw: Callable  # draw(path, fake, real, dataset, title, critic) -> None
    suffix: str = ".png"


PLOTS: Registry[Plot] = Registry("plot")


def _grid(path, fake, real, dataset, title, critic=None, ncols=None):
    # fake: uint8 (N, C, H, W) here (the loop converts images with to_uint8 first). Conditional
    # grids (ncols given: one column per class) are labelled with the class names.
    names = getattr(dataset, "class_names", None)
    labels = [names[k] if names and k < len(names) else str(k) for k in range(ncols)] if ncols else None
    save_grid(path, np.ascontiguousarray(fake.transpose(0, 2, 3, 1)), ncols=ncols, title=title, column_labels=labels)


def _curves(path, fake, real, dataset, title, critic=None, ncols=None):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    t = np.arange(fake.shape[1])
    for ax, data, name in ((axes[0], real, "real"), (axes[1], fake, "generated")):
        if data is not None:
            for row in data[:50]:
                ax.plot(t, row, lw=1)
        ax.set_title(f"{name} ({min(50, 0 if data is None else len(data))} curves)")
        ax.set_ylim(-1, 1)
        ax.set_xlabel("i")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _hist(path, fake, real, dataset, title, critic=None, ncols=None):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    x = fake[:, 0]
    ref = real[:, 0] if real is not None else x
    lo, hi = np.percentile(np.concatenate([x, ref]), [0.5, 99.5])
    pad = 0.1 * (hi - lo + 1e-9)
    bins = np.linspace(lo - pad, hi + pad, 80)
    ax.hist(x, bins=bins, density=True, alpha=0.6, label=f"generated ({len(x)})")
    if dataset is not None and getattr(dataset, "density", None) is not None:
        grid = np.linspace(bins[0], bins[-1], 400)
        ax.plot(grid, dataset.density(grid), "k-", lw=2, label="target density")
    elif real is not None:
        ax.hist(ref, bins=bins, density=True, histtype="step", color="k", label="real")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _scatter(path, fake, real, dataset, title, critic: Optional[Callable] = None, ncols=None):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    pts = np.concatenate([fake, real]) if real is not None else fake
    lo, hi = np.percentile(pts, [0.5, 99.5], axis=0)
    span = (hi - lo).max() * 0.6 + 0.5
    mid = (hi + lo) / 2
    if critic is not None:  # D's logit surface behind the samples
        gx, gy = np.meshgrid(np.linspace(mid[0] - span, mid[0] + span, 120),
                             np.linspace(mid[1] - span, mid[1] + span, 120))
        logits = critic(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)).reshape(gx.shape)
        cs = ax.contourf(gx, gy, logits, levels=20, cmap="coolwarm", alpha=0.35)
        fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.04, label="D logit")
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=3, c="k", alpha=0.3, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:orange", alpha=0.6, label=f"generated ({len(fake)})")
    modes = (getattr(dataset, "target", None) or {}).get("modes")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], marker="x", s=40, c="k", label="modes")
    ax.set_xlim(mid[0] - span, mid[0] + span)
    ax.set_ylim(mid[1] - span, mid[1] + span)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


PLOTS.register("grid", help="8 x 8 grid of images")(Plot(64, _grid))
PLOTS.register("curves", help="50 generated curves next to 50 real ones (seed 002)")(Plot(50, _curves))
PLOTS.register("hist", help="histogram of 1-D samples over the target density")(Plot(5000, _hist))
PLOTS.register("scatter", help="2-D samples over the real data, its modes and D's surface")(Plot(2500, _scatter))


def loss_curves(stats: list[dict], path: Path, title: str = "") -> Path:
    """Plot loss_D and loss_G against the step from stats.jsonl records."""
    plt = _plt()
    rows = [r for r in stats if "loss_D" in r]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for key in ("loss_D", "loss_G"):
        ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=key)
    ax.set_xlabel("generator step")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def training_curves(stats: list[dict], path: Path, title: str = "") -> Path:
    """The run's health at a glance, from stats.jsonl's training records against the step:
    losses (and G's L1 term in image-to-image runs); what D says about real and fake batches (D(x) and D(G(z)) for probabilistic losses,
    else the mean logits); gradient norms of D and G (log scale)."""
    plt = _plt()
    rows = [r for r in stats if r.get("kind", "train") == "train" and ("loss_D" in r or "loss_G" in r)]
    step = [r["step"] for r in rows]
    judged = ("D_real", "D_fake") if rows and "D_real" in rows[-1] else ("real_logit", "fake_logit")
    panels = [(("loss_D", "loss_G", "l1"), "loss", False), (judged, "D(x), D(G(z))" if judged[0] == "D_real" else
              "mean logit", False), (("grad_norm_D", "grad_norm_G"), "gradient norm", True)]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, (keys, label, log) in zip(axes, panels):
        for key in keys:
            pts = [(s, r[key]) for s, r in zip(step, rows) if isinstance(r.get(key), (int, float))]
            if pts:
                ax.plot(*zip(*pts), lw=1, label=key)
        if log and ax.lines and all(y > 0 for line in ax.lines for y in line.get_ydata()):
            ax.set_yscale("log")
        ax.set_xlabel("generator step")
        ax.set_ylabel(label)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def quality_curve(scores: list, path: Path, metric: Optional[str] = None, floor: Optional[float] = None,
                  title: str = "", log_scale: bool = False) -> Path:
    """Plot one metric of in-training scores (`evaluation.Score`s with a step) against the step.

    metric: the evaluator's headline metric (`Evaluator.headline`); None = the first number of the
    first score. floor: a value to draw as a dashed line (the real-data floor of the same protocol).
    log_scale: a logarithmic axis (`Evaluator.log_scale`), when every value is positive.
    """
    rows = [s for s in scores if s.step is not None]
    if metric is None:
        first = rows[0].metrics if rows else {}
        metric = next((k for k, v in first.items() if isinstance(v, (int, float))), "fid")
    rows = [s for s in rows if isinstance(s.metrics.get(metric), (int, float))]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot([s.step for s in rows], [s.metrics[metric] for s in rows], "o-", ms=3, label=metric)
    if floor is not None:
        ax.axhline(floor, ls="--", c="gray", label="real-data floor")
    if log_scale and rows and min(s.metrics[metric] for s in rows) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("generator step")
    ax.set_ylabel(metric)
    if rows:
        p = rows[-1].protocol
        ax.set_title(title or f"{p.dataset}: {metric}, {p.n_generated} samples"
                     + (f", {p.feature_net}" if p.feature_net else ""), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
