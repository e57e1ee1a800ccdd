"""TensorBoard events: every statistic, score and picture; on resume what the interrupted process
wrote after the checkpoint is dropped (as the JSON-lines files are trimmed); rebuilt after the fact
for runs trained without them; a clear message when the package is missing."""
from __future__ import annotations

import sys

import pytest

pytest.importorskip("tensorboard", reason="TensorBoard is an optional extra: pip install 'ganland[tensorboard]'")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from ganland.build import check_config  # noqa: E402
from ganland.cli import main  # noqa: E402
from ganland.errors import ConfigError  # noqa: E402
from ganland.training.checkpoint import list_checkpoints  # noqa: E402
from ganland.training.runs import resume, train  # noqa: E402

from .test_loop import read_stats, tiny  # noqa: E402

EVENTS = {"train.tensorboard": True, "train.log_every": 2, "train.checkpoint_every": 3, "train.sample_every": 4,
          "eval.every": 4, "eval.n_samples": 20}


def events(run) -> EventAccumulator:
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.mark.e2e
def test_a_run_writes_its_statistics_scores_and_pictures(fake_mnist, tmp_path):
    run = train(tiny(fake_mnist, **EVENTS, **{"train.steps": 8}), str(tmp_path / "run")).run_dir
    acc = events(run)
    tags = acc.Tags()
    assert {"train/loss_D", "train/loss_G", "train/D_real", "eval/fid"} <= set(tags["scalars"])
    stats = [r for r in read_stats(run) if r["kind"] == "train"]
    assert scalars(acc, "train/loss_D") == [(r["step"], pytest.approx(r["loss_D"])) for r in stats]
    assert [s for s, _ in scalars(acc, "eval/fid")] == [4, 8]
    assert [e.step for e in acc.Images("samples")] == [4, 8]
    assert "config" in tags["tensors"] or "config" in str(tags)  # the resolved config, as text


@pytest.mark.e2e
def test_on_resume_the_events_after_the_checkpoint_are_dropped(fake_mnist, tmp_path):
    ref = train(tiny(fake_mnist, **EVENTS, **{"train.steps": 12}), str(tmp_path / "ref")).run_dir
    run = train(tiny(fake_mnist, **EVENTS, **{"train.steps": 8}), str(tmp_path / "run")).run_dir
    list_checkpoints(run)[0].unlink()  # as if killed after step 8's events but before its checkpoint: back to 6
    resume(run, {"train.steps": 12})
    a, b = events(ref), events(run)
    for tag in ("train/loss_D", "eval/fid", "train/grad_norm_G"):
        assert scalars(b, tag) == scalars(a, tag), tag  # each step once, the resumed values
    assert [e.step for e in b.Images("samples")] == [4, 8, 12]


def test_rebuilt_events_and_a_missing_package(fake_mnist, tmp_path, monkeypatch, capsys):
    run = train(tiny(fake_mnist, **{"train.steps": 4, "train.log_every": 2, "train.sample_every": 2}),
                str(tmp_path / "run")).run_dir
    assert main(["tensorboard", str(run)]) == 0
    assert f"tensorboard --logdir {run}/tensorboard" in capsys.readouterr().out
    acc = events(run)
    assert [s for s, _ in scalars(acc, "train/loss_G")] == [2, 4] and len(acc.Images("samples")) == 2
    assert main(["tensorboard", str(run)]) == 2  # never mixed with events already there
    assert "already holds events" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"TensorBoard is not installed: pip install 'ganland\[tensorboard\]'"):
        check_config(tiny(fake_mnist, **{"train.steps": 1, "train.tensorboard": True}))


@pytest.mark.e2e
def test_a_rollback_to_the_first_checkpoint_drops_every_event_after_it(fake_mnist, tmp_path, monkeypatch):
    """With the default intervals the only checkpoint for a long while is the step-0 one: going back
    to it (a rollback here; a resume after a kill alike) must drop all the events written since."""
    from .test_guard import poison_after

    poison_after(monkeypatch, {3})
    extra = {**EVENTS, "train.checkpoint_every": 0, "train.checkpoint_minutes": 0, "eval.every": 0,
             "train.sample_every": 0}
    run = train(tiny(fake_mnist, **extra, **{"train.steps": 6}), str(tmp_path / "run")).run_dir
    assert [r["step"] for r in read_stats(run) if r["kind"] == "guard"] == [0]  # it did roll back to step 0
    acc = events(run)
    steps = [s for s, _ in scalars(acc, "train/loss_D")]
    assert steps == [2, 4, 6]  # each once: the diverged stretch's events are gone
    stats = {r["step"]: r["loss_D"] for r in read_stats(run) if r["kind"] == "train"}
    assert scalars(acc, "train/loss_D") == [(s, pytest.approx(stats[s])) for s in steps]
