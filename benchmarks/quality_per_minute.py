"""Quality per minute (issue 16): image recipes trained for the same CPU budget, one after the other
in one process on one machine, each scored with the full protocol (10,000 samples, the bundled
Fashion-MNIST network, the whole test split): FID, recall, classes covered, and for the small-data
pair D's held-out gap (its loss on held-out reals minus on training reals, at the last epoch).

    python benchmarks/quality_per_minute.py [--minutes 10] [--only sngan,dcgan-half] [--out runs/qpm]

Prints one JSON object per configuration, then a summary object; takes minutes x configurations
plus about a minute of scoring each. Run it alone: two trainings on a 2-core machine slow each
other down many times over, and the budget is wall-clock time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

# name -> (recipe, overrides). "small-*" train on 1,000 images (100 per class).
CONFIGS = {
    "dcgan": ("fashion-dcgan", {}),
    "dcgan-half": ("fashion-dcgan", {"model.options": {"g_width": 32, "d_width": 32}}),
    "dcgan-half-decay": ("fashion-dcgan", {"model.options": {"g_width": 32, "d_width": 32},
                                           "optim.G.decay": "linear", "optim.D.decay": "linear"}),
    "dcgan-half-hinge-sn": ("fashion-dcgan", {"model.options": {"g_width": 32, "d_width": 32, "d_batch_norm": False},
                                              "model.spectral_norm": True, "loss.name": "hinge"}),
    "sngan": ("fashion-sngan", {}),
    "sngan-16": ("fashion-sngan", {"model.options": {"g_width": 16, "d_width": 16}}),
    "sngan-48": ("fashion-sngan", {"model.options": {"g_width": 48, "d_width": 48}}),
    "sngan-rpgan": ("fashion-sngan", {"loss.name": "rpgan", "loss.r1_weight": 0.1, "loss.r2_weight": 0.1}),
    "small-ada": ("fashion-small-ada", {}),
    "small-noaug": ("fashion-small-ada", {"train.augment": "none", "train.augment_target": None}),
    "small-diffaug": ("fashion-small-ada", {"train.augment_target": None}),  # DiffAugment: p = 1 always
}


def last_gap(run: Path):
    """D's held-out gap at the newest epoch record: heldout_loss_D_real - train_loss_D_real."""
    rows = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines() if x.strip()]
    epochs = [r for r in rows if r.get("kind") == "epoch" and "heldout_loss_D_real" in r]
    if not epochs:
        return None
    r = epochs[-1]
    return {"epoch": r.get("epoch"), "heldout_loss_D_real": r["heldout_loss_D_real"],
            "train_loss_D_real": r["train_loss_D_real"], "gap": r["heldout_loss_D_real"] - r["train_loss_D_real"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget of each configuration")
    ap.add_argument("--only", default="dcgan-half,sngan,small-ada,small-noaug",
                    help=f"comma-separated configurations; known: {', '.join(CONFIGS)}")
    ap.add_argument("--out", default="runs/quality-per-minute", help="folder for the run folders")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from ganland.config import load_config
    from ganland.evaluation import evaluate_run
    from ganland.training.runs import train

    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    out = Path(args.out)
    results = []
    for name in names:
        recipe, overrides = CONFIGS[name]
        cfg = load_config(recipe, {**overrides, "train.minutes": args.minutes, "train.progress": False,
                                   "train.seed": args.seed, "train.checkpoint_every": 0})
        run = out / f"{name}-seed{args.seed}"
        started = time.time()
        result = train(cfg, str(run))
        score = evaluate_run(run, n=10_000, seed=0)
        m = score.metrics
        row = {"config": name, "recipe": recipe, "overrides": overrides, "minutes": args.minutes,
               "steps": result.step, "images_per_s": round(result.step * cfg.train.batch_size * cfg.train.n_critic
                                                            / max(result.seconds, 1e-9), 1),
               "fid": round(m["fid"], 2), "recall": round(m["recall"], 3), "precision": round(m["precision"], 3),
               "classes": round(m.get("class_coverage", float("nan")) * 10),
               "conditional_accuracy": m.get("conditional_accuracy"),
               "heldout": last_gap(run), "wall_s": round(time.time() - started, 1), "run": str(run)}
        print(json.dumps(row), flush=True)
        results.append(row)
    by = {r["config"]: r for r in results}
    summary = {"benchmark": "quality_per_minute", "machine": platform.processor() or platform.machine(),
               "cores": os.cpu_count(), "minutes": args.minutes,
               "table": [{k: r[k] for k in ("config", "steps", "fid", "recall", "classes")} for r in results]}
    if "small-ada" in by and "small-noaug" in by:
        a, b = by["small-ada"]["fid"], by["small-noaug"]["fid"]
        summary["small_data_fid_reduction"] = round(1 - a / b, 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
