"""Statistics and progress alone: running means, stats.jsonl records, epoch lines, the warning on
NaN, trimming the JSON-lines files on resume, and the clock."""
from __future__ import annotations

import json
import math

import pytest
import torch

from ganland.training import stats
from ganland.training.stats import Clock, Means, RunLog, filter_jsonl


def t(v: float) -> torch.Tensor:
    return torch.tensor(v)


def test_means_average_and_start_over():
    m = Means()
    m.add({"a": t(1.0), "b": t(4.0)})
    m.add({"a": t(3.0)})
    state = m.state_dict()
    assert m.read() == {"a": 2.0, "b": 4.0}
    assert m.read() == {}
    again = Means()
    again.load_state_dict(state, "cpu")
    assert again.read() == {"a": 2.0, "b": 4.0}


def make_log(tmp_path, counters: dict, warn: bool = False) -> RunLog:
    return RunLog(tmp_path, lambda: dict(counters), warn_non_finite=warn)


def rows(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]


def test_train_and_epoch_records(tmp_path, capsys):
    where = {"step": 4, "epoch": 1.25, "images": 64, "seconds": 2.345}
    log = make_log(tmp_path, where)
    log.add({"loss_D": t(1.0), "loss_G": t(0.5)}, ("loss_D",))
    log.add({"loss_D": t(3.0)}, ("loss_D",))
    record = log.log()
    assert record == {"kind": "train", "step": 4, "epoch": 1.25, "images": 64, "seconds": 2.35, "loss_D": 2.0,
                      "loss_G": 0.5}
    assert log.last == record and rows(tmp_path) == [record]
    log.end_epoch(1, {"heldout_loss_D_real": 0.7})
    assert rows(tmp_path)[-1] == {"kind": "epoch", "epoch": 1, "step": 4, "images": 64, "seconds": 2.35,
                                  "epoch_loss_D": 2.0, "heldout_loss_D_real": 0.7}
    assert capsys.readouterr().out == "epoch 1  step 4  loss_D 2.0000  heldout_loss_D_real 0.7000\n"
    log.add({"loss_D": t(1.0)}, ())
    assert log.log(partial=True)["partial"] is True


def test_non_finite_losses_are_reported_once_when_no_guard_watches(tmp_path, capsys):
    log = make_log(tmp_path, {"step": 2, "epoch": 0.0, "images": 0, "seconds": 0.0}, warn=True)
    for _ in range(3):
        log.add({"loss_D": t(math.nan)}, ())
        log.log()
    err = capsys.readouterr().err
    assert err.count("non-finite losses or gradients by step 2 and train.guard is off") == 1


def test_trim_drops_what_came_after_the_checkpoint(tmp_path):
    records = [{"kind": "train", "step": 2, "epoch": 0.5}, {"kind": "epoch", "epoch": 1, "step": 4},
               {"kind": "train", "step": 4, "epoch": 1.0}, {"kind": "train", "step": 5, "epoch": 1.2, "partial": True},
               {"kind": "epoch", "epoch": 2, "step": 4}, {"kind": "train", "step": 6, "epoch": 1.5}]
    (tmp_path / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"kind": "tra')
    scores = [{"source": "in-training, step 4", "step": 4}, {"source": "in-training, step 6", "step": 6},
              {"source": "run x step 9", "step": 9}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scores))
    make_log(tmp_path, {}).trim(step=4, epoch=1)
    assert rows(tmp_path) == records[:3]  # the partial line, the later epoch and steps, the broken line: gone
    kept = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert kept == [scores[0], scores[2]]  # offline scores are never trimmed


def test_filter_jsonl_on_a_missing_file_does_nothing(tmp_path):
    filter_jsonl(tmp_path / "nope.jsonl", lambda r: True)
    assert not (tmp_path / "nope.jsonl").exists()


def test_rows_skip_a_line_cut_short(tmp_path):
    (tmp_path / "stats.jsonl").write_text('{"kind": "train", "step": 1}\n{"kind": "tr')
    assert make_log(tmp_path, {}).rows() == [{"kind": "train", "step": 1}]


def test_progress_off_prints_lines(capsys):
    p = stats.Progress(False, 10, None, 0, 0.0)
    p.update(1.0)
    p.postfix({"loss_D": 1.0})
    p.write("hello")
    p.write("warn", err=True)
    out = capsys.readouterr()
    assert out.out == "hello\n" and out.err == "warn\n"


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock_time(monkeypatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(stats, "time", fake)
    return fake


def test_clock_adds_earlier_processes_and_measures_steps_after_the_first(clock_time):
    c = Clock()
    c.reset(30.0)  # a checkpoint's seconds
    assert c.total() == 30.0
    c.start()
    clock_time.now += 5.0  # the first step: slow (warm-up)
    c.stepped(1)
    for step in range(2, 5):
        clock_time.now += 1.0
        c.stepped(step)  # only the first is remembered
    assert c.total() == 38.0 and c.elapsed() == 8.0
    assert c.per_step(4) == 1.0  # (8 - 5) / (4 - 1): the warm-up left out
    assert c.stop() == 38.0
    clock_time.now += 50.0
    assert c.total() == 38.0  # stopped
    c.start()
    clock_time.now += 2.0
    c.reset(10.0)  # a rollback to a checkpoint of 10 s: the window starts again now
    clock_time.now += 1.0
    assert c.total() == 11.0


def test_without_a_terminal_no_bar_is_drawn_but_a_line_now_and_then(clock_time, capsys, tmp_path):
    p = stats.Progress(True, 2000, None, 0, 0.0, terminal=False)
    assert p.bar is None and p.plain
    for step in range(1, 201):
        clock_time.now += 1.0  # a second per logging window
        p.update(float(step))
        p.line({"step": step, "seconds": float(step)}, {"loss_D": 1.25, "loss_G": 0.5, "other": 3.0})
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 200 // stats.Progress.PLAIN_EVERY and "\r" not in err  # one line per 30 s, no redraws
    assert lines[0] == "step 30/2000, 30 s  loss_D 1.25  loss_G 0.5"
    bar = stats.Progress(True, 10, None, 0, 0.0, terminal=True)
    assert bar.bar is not None and not bar.plain
    bar.close()
    capsys.readouterr()
    timed = stats.Progress(True, None, 600.0, 0, 0.0, terminal=False)
    clock_time.now += 100.0
    timed.line({"step": 7, "seconds": 90.0}, {})
    assert capsys.readouterr().err == "step 7, 90 s of 10.0 min\n"


def test_epoch_lines_can_stay_off_the_console(tmp_path, capsys):
    log = make_log(tmp_path, {"step": 4, "epoch": 1.0, "images": 64, "seconds": 1.0})
    log.end_epoch(1, {}, say=False)  # a toy sampler's "epoch": recorded, not printed
    assert capsys.readouterr().out == "" and rows(tmp_path)[-1]["kind"] == "epoch"
