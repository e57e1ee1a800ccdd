"""The benchmarks stay runnable: `make bench` / `make bench-quality` list every script, and the
quick mode of the loss comparison prints strict JSON (the numbers themselves are the benchmark's)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_make_targets_list_every_benchmark():
    make = (ROOT / "Makefile").read_text()
    listed = set()
    for var in ("SPEED_BENCH", "QUALITY_BENCH"):
        m = re.search(rf"^{var}\s*:=\s*(.*)$", make, re.M)
        assert m, var
        listed |= set(m.group(1).split())
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
    assert scripts == listed, (scripts - listed, listed - scripts)


@pytest.mark.e2e
def test_loss_comparison_quick_mode_prints_strict_json(tmp_path):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "loss_comparison.py"), "--datasets", "ring", "--seeds", "0",
           "--losses", "hinge", "wgan-gp", "--steps", "3", "--out", str(tmp_path / "runs"),
           "--png", str(tmp_path / "losses.png")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()

    def strict(text):  # no NaN / Infinity: other tools must read it
        return json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))

    runs, report = [strict(line) for line in lines[:-1]], strict(lines[-1])
    assert [(r["game"], r["steps"]) for r in runs] == [("hinge", 3), ("wgan-gp", 3)]
    assert [s["game"] for s in report["summary"]] == ["hinge", "wgan-gp"]
    assert all(0 <= r["modes_captured"] <= 8 and 0 <= r["high_quality"] <= 1 for r in runs)
    assert (tmp_path / "losses.png").stat().st_size > 5000


@pytest.mark.e2e
def test_toy_mixtures_quick_mode_reports_the_targets(tmp_path):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "toy_mixtures.py"), "--recipes", "ring", "--seeds", "0", "1",
           "--settings", "recipe", "fourier", "--steps", "3", "--out", str(tmp_path / "runs"),
           "--png", str(tmp_path / "toys.png")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    runs, report = [json.loads(line) for line in lines[:-1]], json.loads(lines[-1])
    assert [(r["game"], r["seed"]) for r in runs] == [("recipe", 0), ("fourier", 0), ("recipe", 1), ("fourier", 1)]
    summary = {s["setting"]: s for s in report["summary"]}
    assert summary["fourier"]["seeds"] == 2 and len(summary["fourier"]["modes_each"]) == 2
    assert summary["recipe"]["target"] == {"modes": 8, "high_quality_mean": 0.95}
    assert summary["recipe"]["target_met"] is False  # 3 steps find nothing
    assert (tmp_path / "toys.png").stat().st_size > 5000


def load_benchmark(name: str):
    """A benchmark script imported as a module (benchmarks/ is no package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_independent_frechet_distance_by_hand():
    import numpy as np

    mod = load_benchmark("independent_ranking")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert abs(mod.frechet(a, a)) < 1e-6
    # same covariance, means 2 apart on one axis: the distance is |mu_a - mu_b|^2 = 4
    assert mod.frechet(a, a + np.array([2.0, 0, 0])) == pytest.approx(4.0, abs=1e-6)
    # N(0, I) against N(0, 4 I) in 3-D: trace(I + 4I - 2 * 2I) = 3, up to sampling noise
    assert mod.frechet(a, 2 * rng.normal(size=(4000, 3))) == pytest.approx(3.0, abs=0.3)
    x = mod.as_input(np.full((2, 28, 28, 1), 255, np.uint8))
    assert tuple(x.shape) == (2, 1, 28, 28) and float(x.max()) == 1.0


def test_quality_per_minute_pairs_each_augmented_small_data_run_with_its_unaugmented_twin():
    mod = load_benchmark("quality_per_minute")
    every = mod.CONFIGS
    assert mod.unaugmented("small-diffaug-tc-full", every) == "small-noaug-full"  # same width and rates
    assert mod.unaugmented("small-ada", every) == "small-noaug"
    assert mod.unaugmented("small-sngan-tc", every) == "small-sngan-noaug"  # the ResNet pair, not the DCGAN's
    assert mod.unaugmented("small-noaug", every) is None  # a run without augmentation has no baseline
    assert mod.unaugmented("small-sngan-tc", ["small-noaug", "small-noaug-full"]) is None  # only among those run


@pytest.mark.e2e
def test_quality_per_minute_extend_spreads_its_checkpoints_over_the_minutes_to_go(tmp_path):
    """--extend reads the minutes trained from the checkpoint a resume starts from and spreads the
    new curve checkpoints over the rest (spread over the whole budget, a short extension of a long
    run got a single point); a total already reached is refused."""
    from conftest import write_fake_mnist
    from ganland.config import load_config
    from ganland.training.runs import resume, train

    mod = load_benchmark("quality_per_minute")
    assert mod.trained_minutes(tmp_path / "no-run") == 0.0
    tiny = {"data.name": "mnist", "data.root": str(write_fake_mnist(tmp_path / "mnist")), "model.z_dim": 8,
            "model.options": {"g_width": 4, "d_width": 4}, "train.batch_size": 16, "train.progress": False,
            "train.heldout_batches": 1, "train.sample_every": 0, "train.steps": 3}
    first = train(load_config(None, tiny), str(tmp_path / "run"))
    early = mod.trained_minutes(first.run_dir)
    assert 0 < early <= first.seconds / 60  # the clock at the checkpoint, before the run's last writes
    later = resume(first.run_dir, {"train.steps": 6})
    done = mod.trained_minutes(first.run_dir)
    assert early < done <= later.seconds / 60  # the newest checkpoint's

    kept = len(list((first.run_dir / "checkpoints").glob("step_*.pt")))
    settings = mod.extension(first.run_dir, done + 5.0, {"train.device": "cpu", "data.root": "elsewhere"})
    assert settings["train.checkpoint_minutes"] == pytest.approx(5.0 / mod.CURVE_POINTS)
    assert settings["train.minutes"] == done + 5.0 and settings["train.device"] == "cpu"
    assert settings["train.keep_checkpoints"] == kept + mod.CURVE_POINTS + 2
    assert "data.root" not in settings  # only train.* may change on resume
    with pytest.raises(SystemExit, match="larger --minutes"):
        mod.extension(first.run_dir, done, {})


def test_quality_per_minute_held_out_gap_is_given_at_the_last_epoch_and_averaged(tmp_path):
    mod = load_benchmark("quality_per_minute")
    rows = [{"kind": "train", "step": 1}]
    rows += [{"kind": "epoch", "epoch": e, "heldout_loss_D_real": 1.0 + (e % 2), "train_loss_D_real": 0.5}
             for e in range(1, 61)]  # gaps alternate 1.5, 0.5
    (tmp_path / "stats.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    gap = mod.last_gap(tmp_path)
    assert gap["epoch"] == 60 and gap["gap"] == pytest.approx(0.5)
    assert gap["gap_mean"] == pytest.approx(1.0) and gap["gap_mean_epochs"] == mod.GAP_EPOCHS
    (tmp_path / "stats.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert mod.last_gap(tmp_path) is None  # no epoch finished


def test_quality_per_minute_joins_a_pair_run_in_separate_processes(tmp_path):
    """A pair trained side by side prints one row per process; --summarise joins them and compares
    the augmented run with its twin at the end and over the curves' last fifth."""
    mod = load_benchmark("quality_per_minute")

    def row(config, fids):
        pts = [{"step": 100 * i, "minutes": 10.0 * i, "fid": f} for i, f in enumerate(fids, 1)]
        return {"config": config, "minutes": 10.0 * len(fids), "steps": 100 * len(fids), "fid": fids[-1],
                "recall": 0.5, "classes": 10, "curve": pts}

    # 10 points, minutes 10..100: the tail is minutes >= 80, so the last three points
    plain = row("small-noaug-wide-d", [50, 20, 15, 12, 11, 10, 10, 12, 10, 11])
    augmented = row("small-diffaug-tc-wide-d", [50, 20, 15, 12, 10, 9, 8, 7, 8, 6])
    assert mod.tail_fid(plain["curve"]) == {"fid": 11.0, "points": 3, "from_minutes": 80.0}
    assert mod.tail_fid([]) is None
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(plain) + "\n" + json.dumps({"benchmark": "quality_per_minute", "runs": []}) + "\n")
    b.write_text("not json\n" + json.dumps(augmented) + "\n")
    rows = mod.printed_rows([str(a), str(b)])
    assert [r["config"] for r in rows] == ["small-noaug-wide-d", "small-diffaug-tc-wide-d"]
    s = mod.summarise(rows, {}, "x.png", "test machine")
    assert s["small_data_fid_reduction_diffaug_tc_wide_d"] == round(1 - 6 / 11, 3)
    assert s["small_data_fid_reduction_diffaug_tc_wide_d_tail"] == round(1 - 7 / 11, 3)
    assert s["minutes"] == 100.0 and s["machine"] == "test machine"
    with pytest.raises(SystemExit, match="twice"):
        mod.printed_rows([str(a), str(a)])
    (tmp_path / "empty.json").write_text("{}\n")
    with pytest.raises(SystemExit, match="no runs"):
        mod.printed_rows([str(tmp_path / "empty.json")])
