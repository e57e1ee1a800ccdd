"""Evaluation end to end: protocols, the reference cache, runs, real floors, foreign samples."""
import json

import numpy as np
import pytest

import ganland
from ganland.cli import main
from ganland.config import load_config
from ganland.errors import ConfigError
from ganland.evaluation import (Protocol, Score, compare, evaluate_real, evaluate_run, evaluate_samples,
                                read_scores, samples_target)
from ganland.training.runs import resume, train


def tiny_mnist(fake_mnist, **extra):
    return load_config(None, {"data.name": "mnist", "data.root": str(fake_mnist), "model.z_dim": 8,
                              "model.options": {"g_width": 4, "d_width": 4}, "train.batch_size": 16,
                              "train.progress": False, "train.heldout_batches": 1, **extra})


@pytest.mark.e2e
def test_toy_run_is_scored_and_recorded(tmp_path):
    run = train(load_config("gaussian-1d", {"train.steps": 3, "train.progress": False}), str(tmp_path / "g")).run_dir
    score = evaluate_run(run, n=500)
    assert {"mean", "std", "ks", "w1"} <= set(score.metrics)
    assert score.protocol.evaluator == "normal-1d" and score.protocol.n_generated == 500
    rec = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert rec["protocol"]["reference"] == "N(10, 0.1^2)" and rec["step"] == 3


def test_real_floor_of_a_mixture_is_perfect():
    cfg = load_config("ring")
    s = evaluate_real(cfg, n=2500)
    # A 2-D Gaussian puts 1 - exp(-9/2) = 98.89 % of its mass within 3 standard deviations.
    assert s.metrics["modes_captured"] == 8
    assert s.metrics["high_quality"] == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    assert s.protocol.n_generated == 2500


def test_image_scores_rank_real_above_noise(fake_mnist):
    cfg = tiny_mnist(fake_mnist)
    floor = evaluate_real(cfg, n=64)
    target = samples_target("mnist", str(fake_mnist))
    noise = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    bad = evaluate_samples(noise, target, seed=0, source="noise")
    assert floor.protocol == bad.protocol  # same protocol: comparable
    assert floor.metrics["fid"] < bad.metrics["fid"]
    assert floor.metrics["precision"] > bad.metrics["precision"]
    assert {"kid", "recall", "density", "coverage", "is"} <= set(bad.metrics)
    compare([floor, bad])


def test_float_samples_are_accepted_and_wrong_shapes_refused(fake_mnist):
    target = samples_target("mnist", str(fake_mnist))
    x = np.random.default_rng(1).uniform(-1, 1, (32, 28, 28)).astype(np.float32)  # no channel axis, [-1, 1]
    assert np.isfinite(evaluate_samples(x, target).metrics["fid"])
    with pytest.raises(ConfigError, match="shape"):
        evaluate_samples(np.zeros((8, 32, 32, 3), np.uint8), target)


def test_reference_features_are_cached(fake_mnist, monkeypatch):
    target = samples_target("mnist", str(fake_mnist))
    x = np.zeros((16, 28, 28, 1), np.uint8)
    first = evaluate_samples(x, target)
    from ganland import evaluation

    calls = []
    real = evaluation.reference_features

    def spy(images, label, extractor, batch_size=500):
        calls.append(extractor.extract)
        monkeypatch.setattr(extractor, "extract", _no_real_extraction(extractor.extract, len(images)))
        return real(images, label, extractor, batch_size)

    monkeypatch.setattr(evaluation, "reference_features", spy)
    second = evaluate_samples(x, target)
    assert calls and first.metrics["fid"] == pytest.approx(second.metrics["fid"], rel=1e-9)


def _no_real_extraction(extract, n_real):
    def guarded(images, batch_size=500, device="cpu"):
        assert len(images) != n_real, "the reference features were recomputed instead of read from the cache"
        return extract(images, batch_size, device)

    return guarded


def test_compare_refuses_different_protocols():
    a = Score(Protocol("images", "mnist", 100, 2000, "test split x", 0, "mnist-cnn", "abc"), {"fid": 1.0}, "a")
    b = Score(Protocol("images", "mnist", 200, 2000, "test split x", 0, "mnist-cnn", "abc"), {"fid": 2.0}, "b")
    with pytest.raises(ConfigError, match="n_generated: 100 vs 200"):
        compare([a, b])
    assert compare([a, a]) == [a, a]


@pytest.mark.e2e
def test_in_training_evaluation_and_exact_resume(fake_mnist, tmp_path):
    extra = {"eval.every": 2, "eval.n_samples": 20, "train.log_every": 2, "train.checkpoint_every": 3}
    full = train(tiny_mnist(fake_mnist, **{"train.steps": 8, **extra}), str(tmp_path / "full")).run_dir
    part = train(tiny_mnist(fake_mnist, **{"train.steps": 5, **extra}), str(tmp_path / "part")).run_dir
    resume(part, {"train.steps": 8})
    a, b = read_scores(full), read_scores(part)
    assert [s.step for s in a] == [2, 4, 6, 8]
    assert [(s.step, s.metrics) for s in a] == [(s.step, s.metrics) for s in b]
    assert all(s.protocol.n_generated == 20 for s in a)
    assert (full / "samples" / "quality.png").stat().st_size > 0  # the quality curve picture


@pytest.mark.e2e
def test_cli_eval_real_samples_and_compare(fake_mnist, tmp_path, capsys):
    out = tmp_path / "scores.jsonl"
    assert main(["eval", "--real", "--dataset", "mnist", "--root", str(fake_mnist), "--n", "64", "--out",
                 str(out)]) == 0
    assert "fid" in capsys.readouterr().out
    npz = tmp_path / "foreign.npz"
    np.savez(npz, images=np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8))
    assert main(["eval", "--samples", str(npz), "--dataset", "mnist", "--root", str(fake_mnist), "--out",
                 str(out)]) == 0
    assert len(read_scores(out)) == 2
    run = train(tiny_mnist(fake_mnist, **{"train.steps": 2}), str(tmp_path / "run")).run_dir
    assert main(["eval", str(run), "--n", "64"]) == 0
    capsys.readouterr()
    assert main(["compare", str(run), str(run)]) == 0
    assert "fid" in capsys.readouterr().out
    np.savez(npz, pictures=np.zeros((2, 28, 28)))
    assert main(["eval", "--samples", str(npz), "--dataset", "mnist", "--root", str(fake_mnist)]) == 2
    assert "expected an array named 'images'" in capsys.readouterr().err


@pytest.mark.e2e
def test_api_evaluate(tmp_path):
    run = ganland.train("ring", {"train.progress": False, "train.batch_size": 10}, steps=2,
                        out=str(tmp_path / "r")).run_dir
    score = ganland.evaluate(run)
    assert score.protocol.n_generated == 2500 and "modes_captured" in score.metrics


@pytest.mark.e2e
def test_swiss_roll_names_its_evaluator_and_ganland_eval_scores_it(tmp_path, capsys):
    cfg = load_config(None, {"data.name": "swiss-roll", "model.name": "mlp", "train.steps": 3,
                             "train.progress": False})
    run = train(cfg, str(tmp_path / "roll")).run_dir
    assert main(["eval", str(run), "--n", "400"]) == 0
    out = capsys.readouterr().out
    assert "protocol: two-sample on swiss-roll, 400 generated vs 400 real (400 fresh draws, seed 1000003)" in out
    score = read_scores(run)[-1]
    assert {"energy_distance", "precision", "recall", "density", "coverage"} <= set(score.metrics)
    floor = evaluate_real(cfg, n=400)  # real against real: far closer than an untrained generator
    assert floor.metrics["energy_distance"] < 0.2 * score.metrics["energy_distance"]
    assert floor.metrics["recall"] > 0.9 and floor.protocol.evaluator == "two-sample"


def test_image_metrics_come_from_the_registry_in_order(fake_mnist):
    from ganland.evaluation import IMAGE_METRICS

    assert [name for name, _ in IMAGE_METRICS.items()] == ["fid", "kid", "prdc", "is", "class-coverage",
                                                           "conditional-accuracy"]
    target = samples_target("mnist", str(fake_mnist))
    x = np.random.default_rng(2).integers(0, 256, (40, 28, 28, 1), dtype=np.uint8)
    cheap = evaluate_samples(x, target, full=False)  # what the in-training evaluation computes by default
    full = evaluate_samples(x, target, labels=np.arange(40) % 10)
    assert list(cheap.metrics)[:3] == ["fid", "is", "is_std"] and "kid" not in cheap.metrics
    assert list(full.metrics)[:5] == ["fid", "kid", "kid_std", "precision", "recall"]
    assert "conditional_accuracy" in full.metrics and "conditional_accuracy" not in cheap.metrics
    by_class = full.metrics["conditional_accuracy_by_class"]  # 4 samples asked for each class
    assert len(by_class) == 10 and all(a in (0, 0.25, 0.5, 0.75, 1) for a in by_class)
    assert np.isclose(np.mean(by_class), full.metrics["conditional_accuracy"])
    assert cheap.metrics["fid"] == full.metrics["fid"]


@pytest.mark.e2e
def test_eval_of_a_self_evaluating_run_uses_its_settings_and_compare_says_how_to_match(fake_mnist, tmp_path, capsys):
    extra = {"eval.every": 4, "eval.n_samples": 40, "eval.seed": 3, "train.steps": 4}
    a = train(tiny_mnist(fake_mnist, **extra), str(tmp_path / "a")).run_dir
    b = train(tiny_mnist(fake_mnist, **{**extra, "eval.n_samples": 30}), str(tmp_path / "b")).run_dir
    assert ganland.evaluate(a, record=False).protocol.seed == 3  # the API takes the run's settings too
    assert main(["eval", str(a)]) == 0  # n and seed from the run: the same samples as its step-4 evaluation
    in_training, offline = read_scores(a)
    assert offline.protocol.n_generated == 40 and offline.protocol.seed == 3
    assert offline.metrics["fid"] == in_training.metrics["fid"]
    assert "FID from 40 samples is biased upwards" in capsys.readouterr().err
    assert main(["compare", str(a), str(b)]) == 2  # a's offline score against b's in-training one
    err = capsys.readouterr().err
    assert f"with {b}: in-training, step 4" in err and "n_generated: 40 vs 30" in err
    assert "`ganland eval RUN --n 40` for each run" in err
    assert main(["eval", str(b), "--n", "40", "--seed", "3"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    assert f"run {b} step 4" in capsys.readouterr().out


def test_a_negative_zero_prints_as_zero():
    score = Score(Protocol("images", "x", 2, 2, "r", 0), {"class_entropy": -0.0, "class_histogram": [-0.0, 1.0]})
    assert score.summary().split() == ["class_entropy", "0", "class_histogram", "0", "1"]


def test_building_the_reference_features_says_so(fake_mnist, capsys):
    target = samples_target("mnist", str(fake_mnist))
    x = np.zeros((8, 28, 28, 1), np.uint8)
    evaluate_samples(x, target)
    assert "computing the mnist-cnn features of mnist's test split (64 images), once: they are cached in" in \
        capsys.readouterr().err
    evaluate_samples(x, target)
    assert "computing" not in capsys.readouterr().err  # the cache
