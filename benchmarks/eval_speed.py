"""How long `ganland eval` takes to score 10,000 generated 28x28 images (issue 3, item 10).

Scores 10,000 images against Fashion-MNIST's test split with the bundled fashion-mnist-cnn, the
full metric set (FID, KID, precision/recall, density/coverage, classifier IS, class coverage):
  cold  - the reference (test-split) features are not cached yet: they are computed and stored
  warm  - they are read from the cache, the normal case after the first evaluation
and times each stage of the warm path on its own. The images are 10,000 real training images,
slightly noised, so every metric works on realistic features (timing does not depend on where
images come from). Prints one JSON object.

    python benchmarks/eval_speed.py [--n 10000] [--repeats 3] [--root DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="generated images to score")
    ap.add_argument("--repeats", type=int, default=3, help="warm evaluations (median reported)")
    ap.add_argument("--root", help="Fashion-MNIST folder (default: ganland's usual search)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        os.environ["GANLAND_CACHE"] = cache  # an empty cache: the first evaluation is cold
        from ganland.build import build_dataset
        from ganland.evaluation import evaluate_samples, load_extractor, reference_features, samples_target
        from ganland.config import load_config
        from ganland.metrics import class_coverage, feature_statistics, frechet_distance, inception_score, kid, prdc

        target = samples_target("fashion-mnist", args.root)
        train = build_dataset(load_config(None, {"data.name": "fashion-mnist", "data.root": args.root}), "train")
        rng = np.random.default_rng(0)
        idx = rng.choice(len(train), args.n, replace=False)
        x = train.x[torch.from_numpy(idx)].permute(0, 2, 3, 1).numpy().astype(np.int16)
        fake = np.clip(x + rng.integers(-8, 9, x.shape), 0, 255).astype(np.uint8)  # (N, 28, 28, 1)

        t0 = time.perf_counter()
        score = evaluate_samples(fake, target, seed=0, source="benchmark")
        cold = time.perf_counter() - t0

        warm = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            evaluate_samples(fake, target, seed=0, source="benchmark")
            warm.append(time.perf_counter() - t0)

        # The warm path stage by stage.
        ex = load_extractor(None, "fashion-mnist-cnn", None)
        stages = {}

        def timed(name, fn):
            t = time.perf_counter()
            out = fn()
            stages[name] = round(time.perf_counter() - t, 3)
            return out

        real, _, _ = timed("load_cached_reference", lambda: reference_features(target.dataset.x, target.label, ex))
        feats, probs = timed("extract_generated_features", lambda: ex.extract(fake))
        timed("fid", lambda: frechet_distance(feature_statistics(real), feature_statistics(feats)))
        timed("kid", lambda: kid(real, feats, seed=0))
        timed("precision_recall_density_coverage", lambda: prdc(real, feats))
        timed("is_and_class_coverage", lambda: (inception_score(probs), class_coverage(probs, 10)))

    print(json.dumps({
        "benchmark": "eval_speed",
        "what": f"score {args.n} generated 28x28 images vs Fashion-MNIST test split, all metrics",
        "n_generated": args.n, "n_real": int(len(target.dataset)),
        "cold_seconds": round(cold, 3),
        "warm_seconds_median": round(statistics.median(warm), 3),
        "warm_seconds": [round(w, 3) for w in warm],
        "warm_stages_seconds": stages,
        "target_seconds": 60,
        "warm_share_of_target": round(statistics.median(warm) / 60, 3),
        "fid_of_noised_real_images": round(score.metrics["fid"], 4),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
    }, indent=1))


if __name__ == "__main__":
    main()
