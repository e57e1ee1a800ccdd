"""Every loss on the 2-D mixtures: modes captured, high-quality share and reverse KL.

Trains the `ring` (8 Gaussians, 5,000 steps) and `grid` (25 Gaussians, 10,000 steps) recipes with
each of ganland's six losses (Wasserstein twice: clipped and with the gradient penalty, so seven
games), same models, several seeds, and scores each run with the
mixture protocol (2,500 samples; a sample is high quality within 3 standard deviations of a
mode; a mode is captured when one high-quality sample lands on it; reverse KL of the histogram of
high-quality samples over the modes, 0 = balanced). Prints one JSON line per run and a summary
JSON object (medians over seeds) at the end, and draws seed 0's samples of every game as a PNG.

The games and their optimiser settings (the recipes' Adam 2e-4 / (0.5, 0.999) where not said):
  minimax          the saturating game of Goodfellow et al. 2014
  non-saturating   the recipes' default
  least-squares    LSGAN (Mao et al. 2017)
  hinge            SNGAN's hinge loss for D, -E D(G(z)) for G
  wgan-clip        Wasserstein critic, weights clipped to 0.01, RMSprop 5e-5, 5 critic steps
                   (Arjovsky et al. 2017's settings)
  wgan-gp          Wasserstein critic, gradient penalty weight 0.1, Adam 1e-4 / (0.5, 0.9), 5 critic
                   steps (Gulrajani et al. 2017's settings for their 2-D toys)
  rpgan            relativistic pairing (Jolicoeur-Martineau 2019), the plain game: no R1 or R2
Steps count G updates, so the Wasserstein games see 5x as many D updates (and take longer).

    python benchmarks/loss_comparison.py [--datasets ring grid] [--seeds 0 1 2] [--losses ...]
    python benchmarks/loss_comparison.py --replot printed.json   # redraw the PNG only
About 10 minutes per seed on `ring` and 20 on `grid` on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

GAMES: dict[str, dict] = {
    "minimax": {"loss.name": "minimax"},
    "non-saturating": {"loss.name": "non-saturating"},
    "least-squares": {"loss.name": "least-squares"},
    "hinge": {"loss.name": "hinge"},
    "wgan-clip": {"loss.name": "wasserstein", "optim.D.weight_clip": 0.01, "train.n_critic": 5,
                  "optim.G.name": "rmsprop", "optim.D.name": "rmsprop", "optim.G.lr": 5e-5, "optim.D.lr": 5e-5},
    "wgan-gp": {"loss.name": "wasserstein", "loss.gp_weight": 0.1, "train.n_critic": 5,
                "optim.G.lr": 1e-4, "optim.D.lr": 1e-4, "optim.G.betas": [0.5, 0.9], "optim.D.betas": [0.5, 0.9]},
    "rpgan": {"loss.name": "rpgan"},
}
SCORES = ("modes_captured", "high_quality", "reverse_kl")


def run_one(dataset: str, game: str, seed: int, out: Path, steps: int | None = None,
            overrides: dict | None = None) -> dict:
    """Train `dataset` (a recipe) with `overrides` (default: the game's settings) and score it."""
    import ganland

    folder = out / f"{dataset}-{game}-seed{seed}"
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's epoch lines: stdout stays JSON
        result = ganland.train(dataset, {**(GAMES[game] if overrides is None else overrides), "train.seed": seed,
                                         "train.progress": False, "train.checkpoint_every": 0,
                                         "train.sample_every": 0},
                               steps=steps, out=str(folder))
    seconds = time.perf_counter() - t0
    score = ganland.evaluate(result.run_dir, seed=0)
    kl = score.metrics["reverse_kl"]  # inf when no sample is high quality: JSON has no inf
    return {"dataset": dataset, "game": game, "seed": seed, "steps": result.step, "seconds": round(seconds, 1),
            **{k: score.metrics[k] for k in SCORES[:2]},
            "reverse_kl": none_if_inf(kl), "counts": list(score.metrics["counts"]),
            "run": str(result.run_dir)}


def inf_if_none(x):
    return math.inf if x is None else x


def none_if_inf(x):
    return x if math.isfinite(x) else None


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for game in dict.fromkeys(r["game"] for r in rows):
            mine = [r for r in rows if r["dataset"] == dataset and r["game"] == game]
            if not mine:
                continue
            out.append({"dataset": dataset, "game": game, "seeds": len(mine),
                        **{f"{k}_median": statistics.median(r[k] for r in mine) for k in SCORES[:2]},
                        "reverse_kl_median": none_if_inf(statistics.median(inf_if_none(r["reverse_kl"]) for r in mine)),
                        "modes_captured_each": [r["modes_captured"] for r in mine],
                        "high_quality_each": [round(r["high_quality"], 3) for r in mine],
                        "seconds_median": statistics.median(r["seconds"] for r in mine)})
    return out


def draw(rows: list[dict], png: Path) -> None:
    """Seed 0 (or the lowest seed) of each game: rows = datasets, columns = games."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import ganland
    from ganland.config import load_config
    from ganland.build import build_dataset

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    games = list(dict.fromkeys(r["game"] for r in rows))
    fig, axes = plt.subplots(len(datasets), len(games), figsize=(max(2.3 * len(games), 3.4), 2.75 * len(datasets)),
                             squeeze=False)
    for i, dataset in enumerate(datasets):
        modes = build_dataset(load_config(dataset), "train").target["modes"]
        lim = np.abs(modes).max() + 0.6
        for j, game in enumerate(games):
            ax = axes[i][j]
            mine = sorted((r for r in rows if r["dataset"] == dataset and r["game"] == game), key=lambda r: r["seed"])
            ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_xticks([]), ax.set_yticks([])
            ax.set_aspect("equal")
            if not mine:
                continue
            r = mine[0]
            x = ganland.sample(r["run"], n=2500, seed=0)["samples"]
            ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.35, color="tab:blue", rasterized=True)
            ax.scatter(modes[:, 0], modes[:, 1], s=12, marker="x", color="tab:red", linewidths=0.8)
            ax.set_title(f"{game}\n{r['modes_captured']}/{len(modes)} modes, HQ {r['high_quality']:.2f}", fontsize=8)
            if j == 0:
                ax.set_ylabel(dataset)
    fig.suptitle("2,500 samples of each game (seed 0)\nred: the true modes", fontsize=9)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["ring", "grid"], choices=["ring", "grid"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--losses", nargs="+", default=list(GAMES), choices=list(GAMES))
    ap.add_argument("--steps", type=int, help="G steps per run instead of the recipe's (a quick look)")
    ap.add_argument("--out", default=f"runs/loss-comparison-{time.strftime('%Y%m%d-%H%M%S')}", help="folder for the runs")
    ap.add_argument("--png", default="docs/images/losses.png", help="where the picture goes")
    ap.add_argument("--replot", metavar="JSON", help="only redraw the PNG from this benchmark's printed summary JSON")
    args = ap.parse_args()

    if args.replot:
        draw(json.loads(Path(args.replot).read_text())["runs"], Path(args.png))
        return
    out = Path(args.out)
    rows = []
    for dataset in args.datasets:  # games innermost: a cut-off run still compares them all
        for seed in args.seeds:
            for game in args.losses:
                rows.append(run_one(dataset, game, seed, out, args.steps))
                print(json.dumps(rows[-1]), flush=True)
    draw(rows, Path(args.png))
    import torch

    print(json.dumps({"benchmark": "loss_comparison", "machine": f"{platform.processor() or platform.machine()}, "
                      f"{torch.get_num_threads()} threads, torch {torch.__version__}",
                      "summary": summarise(rows), "png": args.png, "runs": rows}))


if __name__ == "__main__":
    main()
