"""Image-to-image against its baselines (issue 17): for each task, the inputs themselves (for 4x
super-resolution that is bicubic upsampling), the U-Net trained with L1 only (loss.adv_weight=0),
and the GAN (the recipe: L1 + adversarial, PatchGAN D), the two trainings at the same CPU budget,
one after the other in one process on one machine. Every method is scored under one protocol: the
outputs for the fixed inputs of all 10,000 Fashion-MNIST test images (seed 0) against their truth
(PSNR, SSIM) and, in the bundled Fashion-MNIST network's feature space, against the test split (FID).

    python benchmarks/image_to_image.py [--minutes 5] [--tasks sr4,inpaint] [--out runs/i2i]
        [--png-dir docs/images] [--n 10000]

Prints one JSON object per method and task, then a summary with the table; draws, per task,
image-to-image-TASK.png: test images (rows) through every method (columns: input, [bicubic,]
L1-only, GAN, truth). Run it alone: the budget is wall-clock time on a shared 2-core machine.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_per_minute import cpu_name  # noqa: E402

TASKS = {"sr4": "fashion-sr4", "inpaint": "fashion-inpaint"}
SHOWN = 8  # test images in each picture
PICTURE_ITEMS = (0, 1, 2, 3, 4, 5, 6, 7)  # which test images (their fixed inputs are seed 0's)


def metrics_row(task: str, method: str, score, extra: dict) -> dict:
    m = score.metrics
    return {"task": task, "method": method, "psnr": round(m["psnr"], 2), "ssim": round(m["ssim"], 4),
            "fid": round(m["fid"], 2), "precision": round(m.get("precision", float("nan")), 3),
            "recall": round(m.get("recall", float("nan")), 3), "n": score.protocol.n_generated,
            "protocol": score.protocol.dataset, **extra}


def picture(path: Path, task: str, columns: list[tuple[str, np.ndarray]]) -> None:
    """Rows: test images; columns: the methods' images (uint8 (SHOWN, H, W, C) each)."""
    from ganland.viz import save_grid

    images = np.stack([col[i] for i in range(SHOWN) for _, col in columns])
    save_grid(path, images, ncols=len(columns), min_cell=84, title=f"fashion-{task}: same test images, every method",
              column_labels=[name for name, _ in columns])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="training budget of each trained method")
    ap.add_argument("--tasks", default="sr4,inpaint", help=f"comma-separated; known: {', '.join(TASKS)}")
    ap.add_argument("--out", default="runs/image-to-image", help="folder for the run folders")
    ap.add_argument("--png-dir", default="docs/images", help="where image-to-image-TASK.png go")
    ap.add_argument("--n", type=int, default=10_000, help="test images scored (all 10,000 by default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gan-l1", default="", help="comma-separated loss.l1_weight values of the GAN runs (default: the "
                                                "recipe's); each is a method 'GAN (l1 W)'")
    ap.add_argument("--methods", default="input,L1-only,GAN", help="which of input, L1-only, GAN to run")
    args = ap.parse_args()

    import torch

    from ganland.build import build_dataset
    from ganland.config import load_config
    from ganland.data import to_model_range, to_uint8
    from ganland.evaluation import evaluate_real, evaluate_run
    from ganland.generator import load
    from ganland.training.runs import train

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    rows = []
    for task in tasks:
        recipe = TASKS[task]
        base = load_config(recipe, {"train.minutes": args.minutes, "train.progress": False, "train.seed": args.seed})
        test = build_dataset(base, "test")
        idx = torch.tensor(PICTURE_ITEMS)
        shown_inputs = test.inputs(idx, 0)
        hwc = lambda t: to_uint8(t).permute(0, 2, 3, 1).numpy()  # noqa: E731
        columns = []
        deg = test.degradation
        if deg.name == "downsample":  # what the camera recorded, enlarged without smoothing
            small = deg.shrink(to_model_range(test.x[idx]))
            big = torch.nn.functional.interpolate(small, scale_factor=deg.factor, mode="nearest")
            columns.append((f"input ({small.shape[-1]} px)", hwc(big.clamp(-1, 1))))
            columns.append(("bicubic", hwc(shown_inputs[:, :test.shape[0]])))
        else:
            columns.append(("input", hwc(shown_inputs[:, :test.shape[0]])))

        if "input" in args.methods:
            floor = evaluate_real(base, n=args.n, seed=0)  # the inputs as outputs: bicubic for SR
            name = "bicubic" if test.degradation.name == "downsample" else "input"
            row = metrics_row(task, name, floor, {"steps": 0, "minutes": 0})
            print(json.dumps(row), flush=True)
            rows.append(row)
        wanted = {m.strip() for m in args.methods.split(",")}
        methods = [("L1-only", {"loss.adv_weight": 0.0})] if "L1-only" in wanted else []
        if "GAN" in wanted:
            weights = [float(w) for w in args.gan_l1.split(",") if w.strip()]
            methods += ([(f"GAN (l1 {w:g})", {"loss.l1_weight": w}) for w in weights] if weights else [("GAN", {})])
        for method, overrides in methods:
            cfg = load_config(recipe, {**overrides, "train.minutes": args.minutes, "train.progress": False,
                                       "train.seed": args.seed})
            slug = method.lower().replace(" (l1 ", "-l1-").replace(")", "")
            run = Path(args.out) / f"{task}-{slug}-seed{args.seed}"
            started = time.time()
            with contextlib.redirect_stdout(sys.stderr):  # the trainer's lines: stdout stays JSON
                result = train(cfg, str(run))
            score = evaluate_run(run, n=args.n, seed=0)
            row = metrics_row(task, method, score, {
                "steps": result.step, "minutes": args.minutes, "l1_weight": cfg.loss.l1_weight,
                "adv_weight": cfg.loss.adv_weight, "wall_s": round(time.time() - started, 1), "run": str(run)})
            print(json.dumps(row), flush=True)
            rows.append(row)
            columns.append((method, load(run).translate(shown_inputs)))
        columns.append(("truth", test.x[idx].permute(0, 2, 3, 1).numpy()))
        png = Path(args.png_dir) / f"image-to-image-{task}.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        picture(png, task, columns)

    summary = {"benchmark": "image_to_image", "machine": cpu_name(), "cores": os.cpu_count(),
               "minutes_per_trained_method": args.minutes, "n_test_images": args.n,
               "table": [{k: r[k] for k in ("task", "method", "steps", "psnr", "ssim", "fid")} for r in rows]}
    for task in tasks:
        by = {r["method"]: r for r in rows if r["task"] == task}
        for gan in (m for m in by if m.startswith("GAN") and "L1-only" in by):
            summary[f"{task}: {gan} vs L1-only"] = {
                "fid_ratio": round(by[gan]["fid"] / by["L1-only"]["fid"], 3),
                "psnr_change_db": round(by[gan]["psnr"] - by["L1-only"]["psnr"], 2)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
