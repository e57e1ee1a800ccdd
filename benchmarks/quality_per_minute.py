"""Quality per minute (issue 16): image recipes trained for the same CPU budget, one after the other
in one process on one machine, each scored with the full protocol (10,000 samples, the bundled
Fashion-MNIST network, the whole test split): FID, recall, classes covered, and for the small-data
pair D's held-out gap (its loss on held-out reals minus on training reals, at the last epoch).

    python benchmarks/quality_per_minute.py [--minutes 10] [--only sngan,dcgan-half] [--out runs/qpm]
        [--png docs/images/quality-per-minute.png]
    python benchmarks/quality_per_minute.py --replot printed.json --png ... [--x step]  # redraw the curves only
    python benchmarks/quality_per_minute.py --summarise a.json b.json --png ...  # runs made in separate processes
    python benchmarks/quality_per_minute.py --set train.device=cuda --eval-device cuda ...  # on a GPU

Each run also keeps a checkpoint every tenth of its budget, and each of those is scored afterwards
(FID of 10,000 samples, the same noise) for the learning curves, drawn into --png: FID against
training minutes; `fid_tail` is the mean FID of the curve points in the last fifth of the minutes,
steadier than one checkpoint's. Prints one JSON object per configuration, then a summary object; takes
minutes x configurations plus about two minutes of scoring each. Run it alone: two trainings on a
2-core machine slow each other down many times over, and the budget is wall-clock time. Or run the
two of a pair side by side, each in its own process with `--set speed.threads=1` (one core each, the
same conditions for both), and join their printed lines with `--summarise`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

NO_AUGMENTATION = {"train.augment": "none", "train.augment_target": None}
# DiffAugment's choice for little data: translation and cutout on every image (p = 1, no adaptation)
TRANSLATION_CUTOUT = {"train.augment": "translation,cutout", "train.augment_target": None}
SMALL = {"data.options": {"per_class": 100}}  # 1,000 images, the first 100 of each class
FULL = {"model.options": {"g_width": 64, "d_width": 64}, "optim.G.lr": 1.6e-3, "optim.D.lr": 1.6e-3}  # fashion-dcgan's
WIDE_D = {"model.options": {"g_width": 64, "d_width": 128}}


def conditional(g_cond_bn: bool = False, **settings) -> tuple[str, dict]:
    """fashion-dcgan with labels: a projection D at the recipe's width (and conditional batch norm
    in G with `g_cond_bn`), `settings` on top."""
    options = {"g_width": 64, "d_width": 64, "cond": "projection", **({"g_cond_bn": True} if g_cond_bn else {})}
    return "fashion-dcgan", {"model.conditional": True, "model.options": options, **settings}


# name -> (recipe, overrides). "small-*" train on 1,000 images (100 per class).
CONFIGS = {
    "dcgan": ("fashion-dcgan", {}),  # the default recipe (Adam 1.6e-3 since the sweep below)
    "dcgan-lr2": ("fashion-dcgan", {"optim.G.lr": 2e-4, "optim.D.lr": 2e-4}),  # the recipe before the sweep
    "dcgan-half": ("fashion-dcgan", {"model.options": {"g_width": 32, "d_width": 32}, "optim.G.lr": 2e-4,
                                     "optim.D.lr": 2e-4}),
    "dcgan-b128": ("fashion-dcgan", {"optim.G.lr": 2e-4, "optim.D.lr": 2e-4, "train.batch_size": 128}),
    "dcgan-ttur": ("fashion-dcgan", {"optim.G.lr": 2e-4, "optim.D.lr": 4e-4}),
    "dcgan-r1": ("fashion-dcgan", {"optim.G.lr": 2e-4, "optim.D.lr": 2e-4, "loss.r1_weight": 0.1}),
    "dcgan-ema9995": ("fashion-dcgan", {"optim.G.lr": 2e-4, "optim.D.lr": 2e-4, "train.ema": 0.9995}),
    "dcgan-ema998": ("fashion-dcgan", {"optim.G.lr": 2e-4, "optim.D.lr": 2e-4, "train.ema": 0.998}),
    "dcgan-lr4": ("fashion-dcgan", {"optim.G.lr": 4e-4, "optim.D.lr": 4e-4}),
    "dcgan-lr8": ("fashion-dcgan", {"optim.G.lr": 8e-4, "optim.D.lr": 8e-4}),
    "dcgan-lr16": ("fashion-dcgan", {"optim.G.lr": 1.6e-3, "optim.D.lr": 1.6e-3}),
    "dcgan-cond": conditional(),
    # the same with AC-GAN's auxiliary classifier on the projection D's class scores (loss.ac_weight)
    "dcgan-cond-ac": conditional(**{"loss.ac_weight": 1.0}),
    # ... with conditional batch norm in G as well (model.options.g_cond_bn), and with a light AC term
    "dcgan-cond-cbn": conditional(g_cond_bn=True),
    "dcgan-cond-ac01": ("fashion-dcgan-cond", {}),  # conditional(**{"loss.ac_weight": 0.1}), made a recipe
    "dcgan-cond-cbn-ac01": conditional(g_cond_bn=True, **{"loss.ac_weight": 0.1}),
    "dcgan-cond-ac02": conditional(**{"loss.ac_weight": 0.2}),
    "dcgan-cond-ac03": conditional(**{"loss.ac_weight": 0.3}),
    # half width at the recipe's learning rate: more steps a minute, for CPUs without bf16 units
    "dcgan-half-lr16": ("fashion-dcgan", {"model.options": {"g_width": 32, "d_width": 32}}),
    "dcgan-half-decay": ("fashion-dcgan", {"model.options": {"g_width": 32, "d_width": 32}, "optim.G.lr": 2e-4,
                                           "optim.D.lr": 2e-4,
                                           "optim.G.decay": "linear", "optim.D.decay": "linear"}),
    "dcgan-half-hinge-sn": ("fashion-dcgan", {"model.options": {"g_width": 32, "d_width": 32, "d_batch_norm": False},
                                              "optim.G.lr": 2e-4, "optim.D.lr": 2e-4,
                                              "model.spectral_norm": True, "loss.name": "hinge"}),
    "sngan": ("fashion-sngan", {}),
    "sngan-16": ("fashion-sngan", {"model.options": {"g_width": 16, "d_width": 16}}),
    "sngan-48": ("fashion-sngan", {"model.options": {"g_width": 48, "d_width": 48}}),
    "sngan-rpgan": ("fashion-sngan", {"loss.name": "rpgan", "loss.r1_weight": 0.1, "loss.r2_weight": 0.1}),
    "small-ada": ("fashion-small-ada", {}),
    "small-noaug": ("fashion-small-ada", {**NO_AUGMENTATION}),
    "small-diffaug": ("fashion-small-ada", {"train.augment_target": None}),  # DiffAugment: p = 1 always
    "small-diffaug-tc": ("fashion-small-ada", {**TRANSLATION_CUTOUT}),
    # the default recipe's width and learning rate on the 1,000 images: a D that memorises sooner
    "small-ada-full": ("fashion-small-ada", {**FULL}),
    "small-noaug-full": ("fashion-small-ada", {**FULL, **NO_AUGMENTATION}),
    # DiffAugment's choice for little data (translation and cutout, every image, p = 1) at full width
    "small-diffaug-tc-full": ("fashion-small-ada", {**FULL, **TRANSLATION_CUTOUT}),
    # ... and on all 60,000 training images: how far 60 times the data moves FID at this budget, the
    # most that augmentation (which stands in for more data) could be expected to recover
    "alldata-noaug-full": ("fashion-small-ada", {"data.options": {"per_class": None}, **FULL, **NO_AUGMENTATION}),
    # the ResNet recipe (hinge, spectral norm, TTUR) on the 1,000 images: the kind of D that the ADA and
    # DiffAugment papers saw memorise and drag G down, without and with translation and cutout
    "small-sngan-noaug": ("fashion-sngan", {**SMALL, **NO_AUGMENTATION}),
    "small-sngan-tc": ("fashion-sngan", {**SMALL, **TRANSLATION_CUTOUT}),
    # the full-width DCGAN with twice D's width: a D with more room to memorise the 1,000 images
    "small-noaug-wide-d": ("fashion-small-ada", {**FULL, **WIDE_D, **NO_AUGMENTATION}),
    "small-diffaug-tc-wide-d": ("fashion-small-ada", {**FULL, **WIDE_D, **TRANSLATION_CUTOUT}),
}


def unaugmented(name: str, among) -> str | None:
    """The configuration in `among` that is `name`'s recipe and settings with augmentation off."""
    recipe, overrides = CONFIGS[name]
    wanted = {**{k: v for k, v in overrides.items() if not k.startswith("train.augment")}, **NO_AUGMENTATION}
    return next((o for o in among if o != name and CONFIGS[o] == (recipe, wanted)), None)


GAP_EPOCHS = 50  # epoch records averaged for the held-out gap: one epoch's estimate swings widely


def last_gap(run: Path):
    """D's held-out gap, heldout_loss_D_real - train_loss_D_real: at the newest epoch record, and
    its mean over the last GAP_EPOCHS records (few held-out batches make each epoch's noisy; on
    1,000 images the training loss alone swings between about 0.05 and 0.7 from epoch to epoch)."""
    rows = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines() if x.strip()]
    epochs = [r for r in rows if r.get("kind") == "epoch" and "heldout_loss_D_real" in r]
    if not epochs:
        return None
    r, recent = epochs[-1], epochs[-GAP_EPOCHS:]
    return {"epoch": r.get("epoch"), "heldout_loss_D_real": r["heldout_loss_D_real"],
            "train_loss_D_real": r["train_loss_D_real"], "gap": r["heldout_loss_D_real"] - r["train_loss_D_real"],
            "gap_mean": sum(e["heldout_loss_D_real"] - e["train_loss_D_real"] for e in recent) / len(recent),
            "gap_mean_epochs": len(recent)}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


CURVE_POINTS = 10  # checkpoints kept along each run for its learning curve


def trained_minutes(run: Path) -> float:
    """The training minutes of the checkpoint a resume of `run` starts from (0 without one)."""
    from ganland.errors import CheckpointError
    from ganland.training.checkpoint import latest_checkpoint

    try:
        return float(latest_checkpoint(run)["counters"]["seconds"]) / 60
    except CheckpointError:  # none, or none readable: the resume says so, with the reasons
        return 0.0


def extension(run: Path, minutes: float, common: dict) -> dict:
    """The settings that continue `run` to `minutes` of training in all (--extend): the
    checkpoints so far stay for the curve and CURVE_POINTS more come, spread over the minutes
    still to go (not over the whole budget, which would leave a short extension one point)."""
    done = trained_minutes(run)
    if minutes <= done:
        raise SystemExit(f"{run} has trained {done:.1f} minutes already; --extend needs a larger --minutes "
                         "(a total, counted from the start)")
    kept = len(list((run / "checkpoints").glob("step_*.pt")))
    return {**{k: v for k, v in common.items() if k.startswith("train.")}, "train.minutes": minutes,
            "train.progress": False, "train.checkpoint_minutes": (minutes - done) / CURVE_POINTS,
            "train.keep_checkpoints": kept + CURVE_POINTS + 2}


def curve(run: Path, final, device: str = "cpu") -> list[dict]:
    """FID (10,000 samples, noise seed 0) of each checkpoint of a run, oldest first, and the
    conditional accuracy of a conditional model; the last point is the run's full score. Fewer
    metrics than the final score, same protocol."""
    from ganland.evaluation import build_target, evaluate_samples
    from ganland.generator import load
    from ganland.training.checkpoint import load_checkpoint

    points = []
    for path in sorted((run / "checkpoints").glob("step_*.pt")):
        ck = load_checkpoint(path)
        seconds, step = float(ck["counters"]["seconds"]), int(ck["counters"]["step"])
        if step == 0 or step >= final.step:
            continue
        model = load(path, device=device)
        out = model.sample(10_000, seed=0)
        score = evaluate_samples(out["images"], build_target(model.config), 0, out.get("labels"), full=False)
        points.append(point(step, seconds, score.metrics))
    rows = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines() if x.strip()]
    seconds = max((r["seconds"] for r in rows if "seconds" in r), default=0.0)
    points.append(point(final.step, seconds, final.metrics))
    return points


def point(step: int, seconds: float, metrics: dict) -> dict:
    """One point of a learning curve: FID and, for a conditional model, its conditional accuracy."""
    p = {"step": step, "minutes": round(seconds / 60, 2), "fid": round(metrics["fid"], 2)}
    if metrics.get("conditional_accuracy") is not None:
        p["conditional_accuracy"] = round(metrics["conditional_accuracy"], 4)
    return p


TAIL = 0.2  # fid_tail: the curve points in this last fraction of the training minutes


def tail_fid(points: list[dict]) -> dict | None:
    """Mean FID over the curve points in the last TAIL of the minutes (and how many there were):
    one checkpoint's FID moves by about +-0.5 from the next, so a pair is also compared on this."""
    if not points:
        return None
    end = max(p["minutes"] for p in points)
    tail = [p["fid"] for p in points if p["minutes"] >= (1 - TAIL) * end]
    return {"fid": round(sum(tail) / len(tail), 2), "points": len(tail), "from_minutes": round((1 - TAIL) * end, 2)}


def summarise(results: list[dict], common, png: str, machine: str | None = None) -> dict:
    """The summary object: the table, and for each augmented small-data run the FID reduction against
    its unaugmented twin (issue 16 asks for >= 0.3), at the end and over the curves' tails."""
    by = {r["config"]: r for r in results}
    if machine is None:
        machine = cpu_name()
        if str(common.get("train.device", "")).startswith("cuda"):
            import torch

            machine += f", {torch.cuda.get_device_name(0)}"
    summary = {"benchmark": "quality_per_minute", "machine": machine,
               "cores": os.cpu_count(), "minutes": max((r["minutes"] for r in results), default=0), "settings": common,
               "table": [{k: r[k] for k in ("config", "steps", "fid", "recall", "classes")} for r in results],
               "png": png, "runs": results}
    for name in by:
        base = unaugmented(name, by) if name.startswith("small-") else None
        if base is not None:
            key = "small_data_fid_reduction_" + name[len("small-"):].replace("-", "_")
            summary[key] = round(1 - by[name]["fid"] / by[base]["fid"], 3)
            tails = [(by[n].get("fid_tail") or tail_fid(by[n].get("curve") or [])) for n in (name, base)]
            if all(tails):
                summary[key + "_tail"] = round(1 - tails[0]["fid"] / tails[1]["fid"], 3)
        if name.startswith("alldata-noaug") and (small := name.replace("alldata", "small")) in by:
            key = "all_data_fid_reduction" + name[len("alldata-noaug"):].replace("-", "_")
            summary[key] = round(1 - by[name]["fid"] / by[small]["fid"], 3)  # 60,000 images against 1,000
    return summary


def printed_rows(paths: list[str]) -> list[dict]:
    """The per-configuration objects this benchmark printed, from the files its output went to (the
    summary objects and any other lines are skipped)."""
    rows = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and "config" in obj and "curve" in obj:
                rows.append(obj)
    if not rows:
        raise SystemExit(f"no runs printed by this benchmark in {', '.join(paths)}")
    names = [r["config"] for r in rows]
    if len(set(names)) < len(names):
        raise SystemExit(f"a configuration appears twice in {', '.join(paths)}: {sorted(names)}")
    return rows


def draw(rows: list[dict], png: Path, machine: str, x: str = "minutes") -> None:
    """FID against training minutes (or steps: `x`), one line per configuration (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in rows:
        pts = r.get("curve") or []
        if pts:
            ax.plot([p[x] for p in pts], [p["fid"] for p in pts], marker="o", ms=3,
                    label=f"{r['config']} ({r['fid']:.1f})")
    ax.set_yscale("log")
    ax.set_xlabel("training minutes (wall clock)" if x == "minutes" else "training steps (generator updates)")
    ax.set_ylabel("FID, 10,000 samples (bundled net)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    what = "quality per minute" if x == "minutes" else "FID by step"
    ax.set_title(f"Fashion-MNIST {what}{', ' + machine if machine else ''}", fontsize=9)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget of each configuration")
    ap.add_argument("--only", default="dcgan-lr2,dcgan,sngan,small-ada,small-noaug",
                    help=f"comma-separated configurations; known: {', '.join(CONFIGS)}")
    ap.add_argument("--out", default="runs/quality-per-minute", help="folder for the run folders")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extend", action="store_true",
                    help="continue the run folders already in --out (same names and seed) until --minutes in all "
                         "instead of starting afresh: exact resume makes it the same as one longer run")
    ap.add_argument("--png", default="docs/images/quality-per-minute.png", help="where the learning curves go")
    ap.add_argument("--replot", metavar="JSON", help="only redraw the curves from this benchmark's printed summary")
    ap.add_argument("--summarise", metavar="JSON", nargs="+",
                    help="only join the runs printed by separate processes (a pair run side by side) into one "
                         "summary and one picture")
    ap.add_argument("--x", choices=("minutes", "step"), default="minutes",
                    help="the curves' x axis (step: for runs that moved between machines, whose minutes differ)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for every configuration, e.g. data.root=DIR or train.device=cuda (repeatable)")
    ap.add_argument("--eval-device", default="cpu", help="where the scored samples are generated (cpu, cuda)")
    args = ap.parse_args()
    if args.replot:
        summary = json.loads(Path(args.replot).read_text())
        draw(summary["runs"], Path(args.png), summary.get("machine", ""), args.x)
        return
    if args.summarise:
        rows = printed_rows(args.summarise)
        cpus = sorted({r.get("cpu", cpu_name()) for r in rows})  # rows printed before "cpu" was added: this one's
        settings = {json.dumps(r.get("settings"), sort_keys=True) for r in rows}  # null: rows printed before
        common = json.loads(settings.pop()) if len(settings) == 1 else "different for each run (see runs)"
        summary = summarise(rows, common, args.png, f"{' / '.join(cpus)}, separate processes")
        draw(summary["runs"], Path(args.png), summary["machine"], args.x)
        print(json.dumps(summary))
        return

    from ganland.config import load_config, parse_override
    from ganland.evaluation import evaluate_run
    from ganland.training.runs import resume, train

    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    out = Path(args.out)
    common = dict(parse_override(s) for s in args.set)
    results = []
    for name in names:
        recipe, overrides = CONFIGS[name]
        cfg = load_config(recipe, {**overrides, **common, "train.minutes": args.minutes, "train.progress": False,
                                   "train.seed": args.seed, "train.checkpoint_every": 0,
                                   "train.checkpoint_minutes": args.minutes / CURVE_POINTS,
                                   "train.keep_checkpoints": CURVE_POINTS + 2})
        run = out / f"{name}-seed{args.seed}"
        started = time.time()
        with contextlib.redirect_stdout(sys.stderr):  # the trainer's epoch lines: stdout stays JSON
            if args.extend:
                result = resume(run, extension(run, args.minutes, common))
            else:
                result = train(cfg, str(run))
        score = evaluate_run(run, n=10_000, seed=0, device=args.eval_device)
        m = score.metrics
        # images_per_s: over the whole run, so for a run extended on another machine, a blend of both
        row = {"config": name, "recipe": recipe, "overrides": overrides, "minutes": args.minutes,
               "steps": result.step, "images_per_s": round(result.step * cfg.train.batch_size * cfg.train.n_critic
                                                            / max(result.seconds, 1e-9), 1),
               "fid": round(m["fid"], 2), "recall": round(m["recall"], 3), "precision": round(m["precision"], 3),
               "classes": round(m.get("class_coverage", float("nan")) * 10),
               "conditional_accuracy": m.get("conditional_accuracy"),
               "heldout": last_gap(run), "curve": (points := curve(run, score, args.eval_device)),
               "fid_tail": tail_fid(points),
               "wall_s": round(time.time() - started, 1), "run": str(run), "cpu": cpu_name(),
               "settings": common}
        print(json.dumps(row), flush=True)
        results.append(row)
    summary = summarise(results, common, args.png)
    draw(results, Path(args.png), summary["machine"])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
