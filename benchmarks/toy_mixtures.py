"""The 2-D mixtures over many seeds: does every seed find every mode, and how sharp are the samples?

Issue 16's toy targets, beyond the published results (PacGAN4 on the grid: 24.8 of 25 modes,
93.6 % high quality; VEEGAN on the ring: 8 modes, 52.9 %): the grid with 25 of 25 modes on every
one of 10 seeds and at least 95 % high-quality samples on average; the ring with 8 of 8 and at
least 95 %. Same protocol as `loss_comparison.py` (2,500 samples, high quality within 3 standard
deviations of a mode, a mode captured when one high-quality sample lands on it).

    python benchmarks/toy_mixtures.py [--recipes ring grid] [--settings recipe fourier] [--seeds 0 1 ... 9]

A setting is a set of recipe overrides (SETTINGS below); "recipe" is the recipe as it stands. Prints
one JSON line per run, then a summary (per recipe and setting: modes of every seed, mean and least
high-quality share, whether the target holds) and draws seed 0 of each into --png.
About 1 minute per ring run and 1-2 per grid run on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from loss_comparison import draw, none_if_inf, run_one

SETTINGS: dict[str, dict] = {
    "recipe": {},
    # the recipes' own D on raw coordinates, but with random Fourier features of its input
    "fourier": {"model.options.d_fourier": 128, "model.options.d_fourier_scale": 2.0},
    # the recipe's G with a discrete code beside its noise: z_0 picks one of 100 learned codes
    # (models.mlp.LatentComponents), z_1, z_2 stay continuous
    "components": {"model.z_dim": 3, "model.options.g_components": 100},
}
TARGETS = {"grid": (25, 0.95), "ring": (8, 0.95)}  # modes on every seed, mean high-quality share


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for recipe in dict.fromkeys(r["dataset"] for r in rows):
        for setting in dict.fromkeys(r["game"] for r in rows):
            mine = [r for r in rows if r["dataset"] == recipe and r["game"] == setting]
            if not mine:
                continue
            hq = [r["high_quality"] for r in mine]
            modes = [r["modes_captured"] for r in mine]
            n_modes = len(mine[0]["counts"])
            goal = TARGETS.get(recipe.split("-")[0], (n_modes, 0.95))
            out.append({"recipe": recipe, "setting": setting, "seeds": len(mine), "modes_each": modes,
                        "all_modes_every_seed": min(modes) == n_modes, "high_quality_mean": round(statistics.mean(hq), 4),
                        "high_quality_min": round(min(hq), 4), "high_quality_each": [round(h, 3) for h in hq],
                        "reverse_kl_median": none_if_inf(statistics.median(
                            float("inf") if r["reverse_kl"] is None else r["reverse_kl"] for r in mine)),
                        "target": {"modes": goal[0], "high_quality_mean": goal[1]},
                        "target_met": min(modes) >= goal[0] and statistics.mean(hq) >= goal[1],
                        "seconds_median": statistics.median(r["seconds"] for r in mine)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="+", default=["ring", "grid"], help="2-D mixture recipes (ring, grid)")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    ap.add_argument("--steps", type=int, help="G steps per run instead of the recipe's (a quick look)")
    ap.add_argument("--out", default=f"runs/toy-mixtures-{time.strftime('%Y%m%d-%H%M%S')}", help="folder for the runs")
    ap.add_argument("--png", default="docs/images/toy-mixtures.png", help="where the picture goes")
    args = ap.parse_args()

    out, rows = Path(args.out), []
    for recipe in args.recipes:
        for seed in args.seeds:  # settings innermost: a cut-off run still compares them
            for setting in args.settings:
                rows.append(run_one(recipe, setting, seed, out, args.steps, SETTINGS[setting]))
                print(json.dumps(rows[-1]), flush=True)
    draw(rows, Path(args.png))
    import platform

    import torch

    print(json.dumps({"benchmark": "toy_mixtures", "machine": f"{platform.processor() or platform.machine()}, "
                      f"torch {torch.__version__}", "summary": summarise(rows), "png": args.png, "runs": rows}))


if __name__ == "__main__":
    main()
