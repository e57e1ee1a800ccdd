"""Time to quality: FID of the default recipe after 10 and 30 minutes of training (issue 5).

1. Trains `fashion-dcgan` (ganland's defaults) for the first budget (10 minutes) with in-training
   evaluation every --eval-every steps (FID on 2,000 samples: the curve), then scores the run
   with the full protocol (10,000 samples, bundled fashion-mnist-cnn, test split).
2. With --compare (default on): trains the same recipe and seed for the same 10 minutes with the
   speed settings off (`speed.reuse_fake=false speed.channels_last=false`: fp32 eager, one G forward
   per step as before) and scores it the same way: the defaults must not buy speed with quality.
3. Resumes the default run to the second budget (30 minutes in all) and scores it again.
Writes the curve (FID against minutes, both runs, with the real-data floors) as a PNG and prints
one JSON object. Takes about 50 minutes on a 2-core CPU.

    python benchmarks/time_to_quality.py [--minutes 10,30] [--out runs/ttq] [--png docs/images/time-to-quality.png]
    python benchmarks/time_to_quality.py --replot printed.json   # redraw the PNG only
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

FAST_OFF = {"speed.reuse_fake": False, "speed.channels_last": False}
AGAINST = {"speed-off": ("speed_off", FAST_OFF),  # the speed settings must not buy speed with quality
           "fp32": ("fp32", {"speed.amp": "fp32"})}  # nor may bf16, where the machine's choice takes it


def train_run(out: Path, minutes: float, eval_every: int, overrides: dict, resume: bool = False):
    from ganland.config import load_config
    from ganland.training.runs import resume as resume_run, train

    if resume:
        return resume_run(out, {"train.minutes": minutes})
    cfg = load_config("fashion-dcgan", {"train.minutes": minutes, "train.progress": False, "eval.every": eval_every,
                                        "train.checkpoint_every": 0, **overrides})
    return train(cfg, str(out))


def curve(run: Path) -> list[dict]:
    """In-training scores with the training minutes at which they were taken (from stats.jsonl)."""
    from ganland.evaluation import read_scores

    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if line.strip()]
    minutes_at = {r["step"]: r.get("seconds", 0) / 60 for r in stats if r.get("kind") == "train"}
    out = []
    for s in read_scores(run):
        if s.source.startswith("in-training"):
            out.append({"step": s.step, "minutes": minutes_at.get(s.step), "fid": s.metrics["fid"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="10,30", help="one or two training budgets, comma-separated (the "
                                                     "default run is resumed to the second)")
    ap.add_argument("--against", choices=sorted(AGAINST), default="speed-off",
                    help="the comparison run: speed settings off (default), or fp32 where the defaults chose bf16")
    ap.add_argument("--eval-every", type=int, default=500, help="steps between in-training FIDs (2,000 samples)")
    ap.add_argument("--out", default="runs/time-to-quality", help="folder for the runs")
    ap.add_argument("--png", default="docs/images/time-to-quality.png", help="where the curve goes")
    ap.add_argument("--no-compare", action="store_true", help="skip the speed-settings-off run")
    ap.add_argument("--replot", metavar="JSON", help="only redraw the PNG from this benchmark's printed JSON")
    args = ap.parse_args()
    if args.replot:
        text = Path(args.replot).read_text()
        _plot(json.loads(text[text.index("{"):]), Path(args.png))
        return
    budgets = [float(m) for m in args.minutes.split(",")]
    first, second = budgets[0], (budgets[1] if len(budgets) > 1 else None)
    out = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")

    from ganland.evaluation import evaluate_real, evaluate_run
    from ganland.config import load_config

    report = {"benchmark": "time_to_quality", "recipe": "fashion-dcgan", "machine":
              {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}, "runs": {}}
    floor_cfg = load_config(None, {"data.name": "fashion-mnist"})
    report["floor_fid_10k"] = evaluate_real(floor_cfg).metrics["fid"]
    report["floor_fid_2k"] = evaluate_real(floor_cfg, n=2000).metrics["fid"]

    def score(run):
        s = evaluate_run(run)
        return {k: s.metrics[k] for k in ("fid", "kid", "precision", "recall", "is", "class_coverage")} | \
            {"step": s.step}

    runs = [("defaults", {})] + ([] if args.no_compare else [AGAINST[args.against]])
    for name, overrides in runs:
        res = train_run(out / name, first, args.eval_every, overrides)
        at = score(res.run_dir) | {"images_per_s": round(res.step * 64 / res.seconds, 1)}  # batch 64
        report["runs"][name] = {"overrides": overrides, f"at_{first:g}_min": at}
        print(f"{name} after {first:g} min: FID {report['runs'][name][f'at_{first:g}_min']['fid']:.2f}",
              flush=True)
    if second is not None:
        res = train_run(out / "defaults", second, args.eval_every, {}, resume=True)
        report["runs"]["defaults"][f"at_{second:g}_min"] = score(res.run_dir)
    for name, _ in runs:  # the threads and precision each run trained with (ganland's choice or the override)
        setup = [json.loads(line) for line in (out / name / "stats.jsonl").read_text().splitlines()
                 if '"setup"' in line]
        report["runs"][name]["speed"] = {k: setup[0][k] for k in ("threads", "amp", "speed_source")} if setup else None
    for name, _ in runs:
        report["runs"][name]["curve"] = curve(out / name)

    _plot(report, Path(args.png))
    report["png"] = args.png
    print(json.dumps(report, indent=1))


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, run in report["runs"].items():
        pts = [p for p in run["curve"] if p["minutes"] is not None]
        ax.plot([p["minutes"] for p in pts], [p["fid"] for p in pts], "o-", ms=2.5,
                label=f"{name}: FID, 2,000 samples")
        for key, v in run.items():
            if key.startswith("at_"):
                m = float(key[3:].split("_")[0])
                ax.plot([m], [v["fid"]], "s", ms=6, c="k" if name == "defaults" else "gray")
                other = name != "defaults"  # labels of the comparison above its point, of the defaults below
                ax.annotate(f"{name} {v['fid']:.1f} (10k)", (m, v["fid"]), textcoords="offset points",
                            xytext=(5, 6) if other else (-30, -20), fontsize=8, color="dimgray" if other else "k")
    ax.axhline(report["floor_fid_2k"], ls="--", c="gray", lw=0.8, label="real-data floor, 2,000 samples")
    ax.set_yscale("log")
    ax.set_xlabel("training minutes (2-core CPU)")
    ax.set_ylabel("FID (fashion-mnist-cnn)")
    ax.set_title("fashion-dcgan: time to quality", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
