"""Do ganland's scores rank generators the way an independent classifier does? (issue 3)

Trains an independent Fashion-MNIST classifier (its own architecture, seed and code: no part of
ganland's feature network), then for each generator (run folders or checkpoint files):
  - ganland's score: `ganland.evaluation.evaluate_run` (FID etc. with the bundled fashion-mnist-cnn)
  - the independent judge on the same 10,000 samples: the Frechet distance in the independent
    net's penultimate features against the test split, its Inception Score, and its mean
    top-class confidence
and prints the Spearman rank correlations between ganland's FID and each independent measure as
one JSON object (null with a single generator). Per generator it also reports how the judge
classifies the samples: the histogram over its 10 classes and the share it classifies with a top
probability of at least 0.9 (next to the same share on the real test split).

    python tools/rank_check.py RUN_OR_CHECKPOINT [...] [--n 10000] [--epochs 3]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import scipy.linalg
import scipy.stats
import torch
from torch import nn
import torch.nn.functional as F


class Judge(nn.Module):
    """conv5-32, pool, conv5-64, pool, FC 256 (features), FC 10. No batch norm, no dropout."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 5, padding=2)
        self.c2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc = nn.Linear(64 * 7 * 7, 256)
        self.out = nn.Linear(256, 10)

    def forward(self, x):  # x (N, 1, 28, 28) float in [0, 1]
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)
        f = F.relu(self.fc(h.flatten(1)))
        return f, self.out(f)


def as_input(images_u8: np.ndarray) -> torch.Tensor:
    """(N, 28, 28[, 1]) uint8 -> (N, 1, 28, 28) float in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images_u8)).float().div(255)
    return x.reshape(len(x), 1, 28, 28)


def train_judge(x_train, y_train, x_test, y_test, epochs: int, seed: int = 12345) -> tuple[Judge, float]:
    torch.manual_seed(seed)
    net = Judge()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n = len(x_train)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, 128):
            idx = perm[i:i + 128]
            _, logits = net(x_train[idx])
            loss = F.cross_entropy(logits, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    acc = (judge(net, x_test)[1].argmax(1) == y_test.numpy()).mean()
    return net, float(acc)


@torch.no_grad()
def judge(net: Judge, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """features (N, 256) float64, probabilities (N, 10) float64."""
    net.eval()
    fs, ps = [], []
    for i in range(0, len(x), 1000):
        f, logits = net(x[i:i + 1000])
        fs.append(f.double())
        ps.append(torch.softmax(logits.double(), 1))
    return torch.cat(fs).numpy(), torch.cat(ps).numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets a and b (written independently here)."""
    ma, mb = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb)
    return float(((ma - mb) ** 2).sum() + np.trace(ca + cb - 2 * np.real(root)))


def inception_score(p: np.ndarray) -> float:
    marginal = p.mean(0, keepdims=True)
    kl = (p * (np.log(p + 1e-12) - np.log(marginal + 1e-12))).sum(1)
    return float(np.exp(kl.mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("generators", nargs="+", help="run folders or checkpoint files (fashion-mnist, 28 px)")
    ap.add_argument("--n", type=int, default=10_000, help="samples per generator")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the independent classifier")
    ap.add_argument("--root", help="Fashion-MNIST folder")
    args = ap.parse_args()

    from ganland.api import load
    from ganland.build import build_dataset
    from ganland.config import load_config
    from ganland.evaluation import evaluate_run

    cfg = load_config(None, {"data.name": "fashion-mnist", "data.root": args.root})
    train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    t0 = time.perf_counter()
    net, acc = train_judge(train.x.float().div(255), train.y, test.x.float().div(255), test.y, args.epochs)
    train_seconds = time.perf_counter() - t0
    test_feats, test_probs = judge(net, test.x.float().div(255))

    rows = []
    for g in args.generators:
        score = evaluate_run(g, n=args.n, seed=0, record=False)
        images = load(g).sample(args.n, seed=0)["images"]  # the very samples ganland scored (same seed)
        feats, probs = judge(net, as_input(images))
        rows.append({"generator": g, "step": score.step, "ganland_fid": score.metrics["fid"],
                     "ganland_kid": score.metrics["kid"], "ganland_precision": score.metrics["precision"],
                     "ganland_recall": score.metrics["recall"], "ganland_is": score.metrics["is"],
                     "judge_fid": frechet(test_feats, feats), "judge_is": inception_score(probs),
                     "judge_confidence": float(probs.max(1).mean()),
                     "judge_confident_share": float((probs.max(1) >= 0.9).mean()),
                     "judge_class_histogram": np.bincount(probs.argmax(1), minlength=10).tolist()})

    fid = [r["ganland_fid"] for r in rows]

    def rho(values, sign):  # Spearman of ganland FID (low = good) vs a judge measure turned "low = good"
        if len(rows) < 2:
            return None  # a ranking needs at least two generators
        return float(scipy.stats.spearmanr(fid, [sign * v for v in values]).statistic)

    print(json.dumps({
        "tool": "rank_check", "n_samples": args.n,
        "judge": {"architecture": "conv5-32/pool/conv5-64/pool/fc256/fc10", "epochs": args.epochs,
                  "test_accuracy": round(acc, 4), "train_seconds": round(train_seconds, 1),
                  "on_the_real_test_split": {"confidence": float(test_probs.max(1).mean()),
                                             "confident_share": float((test_probs.max(1) >= 0.9).mean())}},
        "spearman_ganland_fid_vs": {
            "judge_fid": rho([r["judge_fid"] for r in rows], 1),
            "judge_is": rho([r["judge_is"] for r in rows], -1),
            "judge_confidence": rho([r["judge_confidence"] for r in rows], -1)},
        "generators": rows,
    }, indent=1))


if __name__ == "__main__":
    main()
