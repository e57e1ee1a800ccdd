"""The `ganland` command: train, resume, sample, dry-run and the listings, in-process."""
import numpy as np
import pytest

from ganland.cli import main

TINY = ["--set", "model.z_dim=8", "--set", "model.options={g_width: 4, d_width: 4}", "--set", "train.batch_size=16",
        "--set", "train.log_every=2", "--set", "train.heldout_batches=1", "--no-progress"]


@pytest.mark.e2e
def test_train_resume_sample(fake_mnist, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "fashion-dcgan", "--set", f"data.root={fake_mnist}", *TINY, "--steps", "3", "--out", str(run)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"samples:     {run}/samples/latest.png" in out and (run / "samples" / "latest.png").is_file()

    assert main(["train", "--resume", str(run), "--steps", "5", "--no-progress"]) == 0
    assert "done: 5 steps" in capsys.readouterr().out

    # Stopping rules on resume are totals: one the run has reached is refused, nothing written.
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*"))
    assert main(["train", "--resume", str(run), "--steps", "4", "--no-progress"]) == 2
    assert "is already past 4 steps: it has trained 5 steps" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--steps", "9", "--out", str(tmp_path / "fork")]) == 2
    assert "give no recipe, --out or --dry-run" in capsys.readouterr().err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*")) == before
    assert main(["eval", str(run), "--dataset", "mnist"]) == 2
    assert "--dataset: only for --real / --samples" in capsys.readouterr().err
    assert main(["sample", str(run), "--out", str(tmp_path / "s.txt")]) == 2
    assert "write samples to a .npz file (arrays) or, for images, a .png grid" in capsys.readouterr().err

    npz = tmp_path / "s.npz"
    assert main(["sample", str(run), "--n", "10", "--out", str(npz), "--seed", "1"]) == 0
    images = np.load(npz)["images"]
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
    again = tmp_path / "t.npz"
    main(["sample", str(run), "--n", "10", "--out", str(again), "--seed", "1"])
    assert np.array_equal(np.load(again)["images"], images)


@pytest.mark.e2e
def test_conditional_sample_with_class(fake_mnist, tmp_path):
    run = tmp_path / "c"
    main(["train", "fashion-cgan", "--set", f"data.root={fake_mnist}", "--set", "data.name=mnist", "--set",
          "model.options={g_depth: 8, d_depth: 4}", "--set", "train.batch_size=16", "--steps", "2", "--out", str(run),
          "--no-progress"])
    npz = tmp_path / "c.npz"
    assert main(["sample", str(run), "--n", "6", "--class", "4", "--out", str(npz)]) == 0
    data = np.load(npz)
    assert data["images"].shape == (6, 28, 28, 1) and data["labels"].tolist() == [4] * 6


def test_dry_run_prints_the_resolved_config(fake_mnist, capsys):
    assert main(["train", "fashion-wgan-gp", "--set", f"data.root={fake_mnist}", "--steps", "7", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "gp_weight: 10.0" in out and "steps: 7" in out and "minutes: null" in out


def test_errors_are_one_clear_line(capsys, fake_mnist):
    assert main(["train", "fashion-dcgan", "--set", "train.bach_size=3", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganland: error: unknown key 'train.bach_size'") and 'Did you mean "batch_size"' in err
    assert main(["train", "fashion-dcgan", "--set", "data.download=false", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "data.root" in err and "dataset-fashion-mnist" in err  # says every way to get the data
    assert main(["sample", "no/such/run", "--out", "x.npz"]) == 2
    capsys.readouterr()
    # Caught by --dry-run, before any training: a pack the batch does not divide, no stopping rule.
    assert main(["train", "gaussian-1d", "--set", "train.batch_size=10", "--dry-run"]) == 2
    assert "must be a multiple of 4 (e.g. 8)" in capsys.readouterr().err
    assert main(["train", "gaussian-1d", "--set", "loss.gp_weight=1", "--dry-run"]) == 2
    assert "a packed D's input is a pack of samples" in capsys.readouterr().err
    assert main(["train", "gaussian-1d", "--set", "train.steps=null", "--dry-run"]) == 2
    assert "no stopping rule" in capsys.readouterr().err


@pytest.mark.parametrize("listing", ["recipes", "datasets", "models", "losses"])
def test_listings(listing, capsys):
    assert main([listing]) == 0
    out = capsys.readouterr().out
    expected = {"recipes": "fashion-dcgan", "datasets": "fashion-mnist", "models": "dcgan", "losses": "hinge"}
    assert expected[listing] in out


def test_python_dash_m_ganland_is_the_command():
    import subprocess
    import sys

    from ganland import __version__

    out = subprocess.run([sys.executable, "-m", "ganland", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"ganland {__version__}"


def test_dry_run_refuses_what_the_run_would_refuse(capsys):
    assert main(["train", "gaussian-1d", "--set", "train.device=gpu", "--dry-run"]) == 2
    assert "train.device 'gpu' is not a device" in capsys.readouterr().err
    assert main(["train", "gaussian-1d", "--set", "train.batch_size=20000", "--set", "data.name=mnist",
                 "--set", "data.download=false", "--dry-run"]) == 2  # no MNIST here: the data error comes first
    capsys.readouterr()


@pytest.mark.e2e
def test_a_run_says_where_everything_is_and_a_finished_one_is_not_retrained(tmp_path, capsys):
    run = tmp_path / "g"
    assert main(["train", "gaussian-1d", "--steps", "20", "--set", "train.sample_every=10", "--set", "train.log_every=5",
                 "--out", str(run),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ganland {__import__('ganland').__version__}: training gaussian-1d into {run} (cpu, 20 steps)")
    assert "epoch 1" not in out  # a toy sampler's "epochs" are not reported
    for line in (f"samples:     {run}/samples/latest.png", f"{run}/samples/training.png",
                 "2 pictures over time: step_000000010.png ... step_000000020.png",
                 f"ganland eval {run}", f"ganland sample {run} --out samples.npz",
                 f"ganland train --resume {run} --steps 40"):
        assert line in out, line
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*"))
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{run} is finished: it has trained 20 steps") and \
        f"ganland train --resume {run} --steps 40" in out
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*")) == before  # nothing touched
    assert main(["train", "--resume", str(run), "--steps", "25", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(f"ganland {__import__('ganland').__version__}: training gaussian-1d "
                                              f"into {run}, from step 20 (step_000000020.pt) (cpu, 25 steps)")


@pytest.mark.e2e
def test_sample_by_class_name_to_a_picture_and_export(fake_mnist, tmp_path, capsys):
    from PIL import Image

    run = tmp_path / "c"
    main(["train", "fashion-cgan", "--set", f"data.root={fake_mnist}", "--set", "data.name=mnist", "--set",
          "model.options={g_depth: 8, d_depth: 4}", "--set", "train.batch_size=16", "--steps", "2", "--out", str(run),
          "--no-progress"])
    capsys.readouterr()
    png = tmp_path / "walk.png"
    assert main(["sample", str(run), "--class", "7", "--interpolate", "6", "--n", "2", "--truncation", "0.8",
                 "--out", str(png)]) == 0
    assert "wrote" in capsys.readouterr().out and Image.open(png).size[0] > 6 * 28
    assert main(["sample", str(run), "--class", "seven", "--out", str(tmp_path / "x.npz")]) == 2
    assert "no class named 'seven'; this model's classes: 0 0, 1 1" in capsys.readouterr().err
    assert main(["sample", str(run), "--class", "12", "--out", str(tmp_path / "x.npz")]) == 2
    assert "class 12 is out of range; this model's classes: 0 0, 1 1" in capsys.readouterr().err
    grid = tmp_path / "grid.png"  # every class in turn: one labelled column per class, as the training grids
    assert main(["sample", str(run), "--n", "20", "--out", str(grid)]) == 0
    columns = Image.open(grid).size[0]
    assert main(["sample", str(run), "--n", "20", "--class", "3", "--out", str(grid)]) == 0
    assert Image.open(grid).size[0] < columns  # one class: the square grid of 5 columns
    exported = tmp_path / "g.safetensors"
    assert main(["export", str(run), "--out", str(exported)]) == 0
    assert f"ganland sample {exported} --out samples.png" in capsys.readouterr().out
    assert main(["sample", str(exported), "--n", "4", "--out", str(tmp_path / "e.npz")]) == 0
    assert np.load(tmp_path / "e.npz")["images"].shape == (4, 28, 28, 1)


def test_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    import builtins

    def closed(*args, **kwargs):
        raise BrokenPipeError

    monkeypatch.setattr(builtins, "print", closed)  # as under `ganland recipes | head -1`
    monkeypatch.setattr("os.dup2", lambda fd, fd2: None)  # never point the test run's own stdout elsewhere
    assert main(["recipes"]) == 141
