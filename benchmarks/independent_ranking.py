"""Do ganland's scores rank runs as a scorer that shares nothing with them would?

Issue 16 asks that an independent classifier rank the new recipes as ganland does. This script
builds one that shares no code or weights with ganland's metrics: a small convolutional classifier
of another shape than the bundled `fashion-mnist-cnn` (two 5x5 conv layers, max pooling, a
128-unit hidden layer, dropout), trained here from its own seed on the Fashion-MNIST training
split, and a Fréchet distance written here from NumPy and SciPy on its 128-unit features. It
scores 10,000 samples of each run (noise seed 0) against the whole test split, with the classifier's
accuracy on the test split and the share of samples in each class, and compares the order of the
runs with the order of ganland's FID from each run's metrics.jsonl (Kendall's tau, Spearman's rho).

    python benchmarks/independent_ranking.py [RUN ...] [--epochs 3] [--seed 0]

Prints one JSON object per run, then a summary. About 2 minutes for the classifier on 2 cores,
then half a minute per run.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def classifier():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),       # 28 -> 24 -> 12
        nn.Conv2d(20, 40, 5), nn.ReLU(), nn.MaxPool2d(2),      # 12 -> 8 -> 4
        nn.Flatten(), nn.Linear(40 * 4 * 4, 128), nn.ReLU(),  # the features: 128 units
        nn.Dropout(0.3), nn.Linear(128, 10),
    )


def as_input(images: np.ndarray):
    """uint8 (N, 28, 28[, 1]) or (N, 1, 28, 28) -> float tensor (N, 1, 28, 28) in [0, 1]."""
    import torch

    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    x = x.reshape(len(x), 1, 28, 28)
    return torch.from_numpy(x.astype(np.float32) / 255.0)


def train(x_train, y_train, epochs: int, seed: int):
    import torch

    torch.manual_seed(seed)
    net = classifier()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x_train), generator=gen).split(128):
            loss = torch.nn.functional.cross_entropy(net(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def features(net, x, batch: int = 1000):
    """(penultimate features (N, 128), predicted classes (N,))"""
    import torch

    feats, preds = [], []
    with torch.no_grad():
        for part in x.split(batch):
            h = net[:9](part)
            feats.append(h.numpy().astype(np.float64))
            preds.append(net[9:](h).argmax(1).numpy())
    return np.concatenate(feats), np.concatenate(preds)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of Gaussians fitted to two feature sets (N, d)."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(ca @ cb)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * np.real(root)))


def ganland_fid(run: Path):
    """FID of the newest full-protocol score (10,000 samples) in the run's metrics.jsonl."""
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    full = [r for r in rows if r.get("protocol", {}).get("n_generated") == 10_000 and "fid" in r.get("metrics", {})]
    return full[-1]["metrics"]["fid"] if full else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", help="run folders of Fashion-MNIST recipes, each scored by `ganland eval` "
                    "(default: those quality_per_minute.py left in runs/quality-per-minute)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from scipy import stats

    import ganland
    from ganland.build import build_dataset
    from ganland.config import load_config

    runs = [Path(r) for r in args.runs] or sorted(p.parent for p in Path("runs/quality-per-minute").glob("*/metrics.jsonl"))
    if not runs:
        raise SystemExit("no runs given and none in runs/quality-per-minute: run benchmarks/quality_per_minute.py "
                         "first, or name run folders")
    t0 = time.perf_counter()
    cfg = load_config("fashion-dcgan")
    tr, te = build_dataset(cfg, "train"), build_dataset(cfg, "test")  # only to read the IDX files
    x_train, y_train = as_input(tr.x.numpy()), tr.y.long()
    x_test, y_test = as_input(te.x.numpy()), te.y.numpy()
    net = train(x_train, y_train, args.epochs, args.seed)
    f_test, p_test = features(net, x_test)
    accuracy = float((p_test == y_test).mean())
    rows = []
    for run in runs:
        out = ganland.sample(run, n=10_000, seed=0)
        f, p = features(net, as_input(out["images"]))
        share = np.bincount(p, minlength=10) / len(p)
        row = {"run": str(run), "independent_fid": round(frechet(f, f_test), 3), "ganland_fid": ganland_fid(run),
               "classes_over_1pct": int((share > 0.01).sum()), "class_share_min": round(float(share.min()), 4)}
        if out.get("labels") is not None:
            row["conditional_accuracy"] = round(float((p == np.asarray(out["labels"])).mean()), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    scored = [r for r in rows if r["ganland_fid"] is not None]
    summary = {"benchmark": "independent_ranking", "classifier_test_accuracy": round(accuracy, 4),
               "real_train_vs_test_fid": round(frechet(features(net, x_train[:10_000])[0], f_test), 3),
               "runs": len(rows), "seconds": round(time.perf_counter() - t0, 1), "torch": torch.__version__}
    if len(scored) >= 2:
        a, b = [r["ganland_fid"] for r in scored], [r["independent_fid"] for r in scored]
        summary["kendall_tau"] = round(float(stats.kendalltau(a, b).statistic), 3)
        summary["spearman_rho"] = round(float(stats.spearmanr(a, b).statistic), 3)
        summary["same_order"] = [r["run"] for r in sorted(scored, key=lambda r: r["ganland_fid"])] == \
                                [r["run"] for r in sorted(scored, key=lambda r: r["independent_fid"])]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
