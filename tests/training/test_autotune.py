"""The speed choice alone, with a faked machine: candidates from the CPU's units, the fastest kept,
the cache, a resumed run keeping its choice, short runs decided without timing, the slowdown warning."""
from __future__ import annotations

import types

import pytest
import torch

from ganland.device import autocast_for
from ganland.training import autotune
from ganland.training.autotune import SlowdownWatch, candidates, choose, cpu_flags, has_bf16_units, tune

AVX2 = {"fpu", "sse2", "avx", "avx2"}
BF16 = AVX2 | {"avx512f", "avx512_bf16"}


def test_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "none")) == set()
    assert has_bf16_units({"amx_bf16"}) and has_bf16_units(BF16) and not has_bf16_units(AVX2)


def test_bf16_is_a_candidate_only_where_the_cpu_has_bf16_units():
    assert candidates(0, "auto", 2, AVX2) == [(1, "fp32"), (2, "fp32")]
    assert candidates(0, "auto", 2, BF16) == [(1, "fp32"), (1, "bf16"), (2, "fp32"), (2, "bf16")]
    assert candidates(4, "auto", 8, BF16) == [(4, "fp32"), (4, "bf16")]  # threads set by the user
    assert candidates(0, "fp32", 1, BF16) == [(1, "fp32")]  # one core, precision set: nothing to choose
    assert candidates(0, "bf16", 2, AVX2) == [(1, "bf16"), (2, "bf16")]  # asked for: the user's call


def test_vector_data_stays_in_fp32_unless_bf16_is_asked_for():
    assert candidates(0, "auto", 2, BF16, is_image=False) == [(1, "fp32"), (2, "fp32")]
    assert candidates(0, "bf16", 2, BF16, is_image=False) == [(1, "bf16"), (2, "bf16")]
    cuda = torch.device("cuda")
    assert autocast_for("auto", cuda, is_image=True) == ("cuda", torch.bfloat16)
    assert autocast_for("auto", cuda, is_image=False) is None  # the toys' modes are finer than bf16's steps
    assert autocast_for("bf16", torch.device("cpu"), is_image=False) == ("cpu", torch.bfloat16)


class FakeTimes:
    def __init__(self, times: dict):
        self.times, self.calls = times, []

    def __call__(self, threads: int, amp: str) -> float:
        self.calls.append((threads, amp))
        return self.times[(threads, amp)]


def test_the_fastest_candidate_wins_and_is_cached(tmp_path):
    cache = tmp_path / "speed.json"
    fake = FakeTimes({(1, "fp32"): 0.10, (1, "bf16"): 0.07, (2, "fp32"): 0.06, (2, "bf16"): 0.04})
    choice = tune(0, "auto", "dcgan", fake, cache, BF16, n_cores=2)
    assert (choice.threads, choice.amp, choice.source) == (2, "bf16", "measured")
    assert choice.seconds_per_step == 0.04 and choice.measured["threads=1 amp=fp32"] == 0.10
    assert len(fake.calls) == 4 * autotune.ROUNDS
    again = FakeTimes({})
    cached = tune(0, "auto", "dcgan", again, cache, BF16, n_cores=2)
    assert again.calls == [] and (cached.threads, cached.amp, cached.source) == (2, "bf16", "cache")
    other = FakeTimes({(1, "fp32"): 0.001, (2, "fp32"): 0.002})  # another model: measured on its own
    assert tune(0, "auto", "mlp", other, cache, AVX2, n_cores=2).threads == 1 and other.calls
    cache.write_text("{not json")  # a damaged cache is measured again
    assert tune(0, "auto", "dcgan", fake, cache, BF16, n_cores=2).source == "measured"


def test_fewer_threads_and_fp32_win_unless_another_is_clearly_faster(tmp_path):
    tie = FakeTimes({(1, "fp32"): 0.05, (1, "bf16"): 0.05, (2, "fp32"): 0.05, (2, "bf16"): 0.05})
    assert (lambda c: (c.threads, c.amp))(tune(0, "auto", "x", tie, None, BF16, n_cores=2)) == (1, "fp32")
    noise = FakeTimes({(1, "fp32"): 1.346, (2, "fp32"): 1.319})  # 2 % apart: within the timing noise
    assert tune(0, "auto", "y", noise, None, AVX2, n_cores=2).threads == 1
    clear = FakeTimes({(1, "fp32"): 1.0, (2, "fp32"): 0.85})
    assert tune(0, "auto", "z", clear, None, AVX2, n_cores=2).threads == 2
    fixed = FakeTimes({})
    choice = tune(2, "fp32", "x", fixed, None, BF16, n_cores=2)
    assert fixed.calls == [] and (choice.threads, choice.amp, choice.source) == (2, "fp32", "set")


def fake_trainer(budget=None, minutes=None, conv=False, threads=0, amp="auto", device="cpu", image=True):
    model = torch.nn.Conv2d(1, 1, 3) if conv else torch.nn.Linear(10, 1, bias=False)
    cfg = types.SimpleNamespace(speed=types.SimpleNamespace(threads=threads, amp=amp),
                                train=types.SimpleNamespace(minutes=minutes))
    settings = types.SimpleNamespace(autocast=("cuda", torch.bfloat16) if device == "cuda" else None)
    data = types.SimpleNamespace(shape=(1, 28, 28) if image else (2,), is_image=image)
    return types.SimpleNamespace(cfg=cfg, device=torch.device(device), settings=settings, budget=budget,
                                 G=model, D=model, train_set=data, channels_last=image)


@pytest.fixture
def bf16_machine(monkeypatch):
    monkeypatch.setattr(autotune, "cpu_flags", lambda path="/proc/cpuinfo": set(BF16))
    monkeypatch.setattr(autotune, "cores", lambda: 2)


def test_short_runs_decide_from_the_kind_of_model_without_timing(bf16_machine):
    mlp = choose(fake_trainer(budget=50), None)
    assert (mlp.threads, mlp.amp, mlp.source) == (1, "fp32", "short run")
    conv = choose(fake_trainer(budget=50, conv=True), None)
    assert (conv.threads, conv.amp) == (2, "fp32")
    assert choose(fake_trainer(budget=50, amp="bf16"), None).amp == "bf16"  # asked for


def test_long_runs_are_timed(bf16_machine, monkeypatch):
    fake = FakeTimes({(1, "fp32"): 0.3, (1, "bf16"): 0.2, (2, "fp32"): 0.1, (2, "bf16"): 0.05})
    monkeypatch.setattr(autotune, "step_timer", lambda trainer: fake)
    monkeypatch.setattr(autotune, "signature", lambda *a: "sig")
    tr = fake_trainer(budget=10_000)
    choice = choose(tr, None)
    assert (choice.threads, choice.amp, choice.source) == (2, "bf16", "measured") and fake.calls
    tr.budget, tr.cfg.train.minutes = None, 10.0  # time-limited runs too
    assert choose(tr, None).source == "cache"
    fake.calls.clear()
    toy = choose(fake_trainer(budget=10_000, image=False), None)  # vector data: fp32 whatever the timing
    assert (toy.threads, toy.amp, toy.source) == (2, "fp32", "measured")
    assert fake.calls and all(amp == "fp32" for _, amp in fake.calls)


def test_a_resumed_run_keeps_its_choice_on_the_same_machine_only(bf16_machine):
    machine = autotune.machine_fingerprint(BF16)
    saved = {"threads": 2, "amp": "bf16", "machine": machine, "seconds_per_step": 0.05}
    kept = choose(fake_trainer(budget=50), saved)
    assert (kept.threads, kept.amp, kept.source) == (2, "bf16", "checkpoint")
    moved = choose(fake_trainer(budget=50), {**saved, "machine": "another CPU"})
    assert moved.source == "short run"  # chosen again for this machine
    assert choose(fake_trainer(budget=50, amp="fp32"), saved).amp == "fp32"  # the user changed speed.amp


def test_cuda_and_mps_measure_nothing():
    choice = choose(fake_trainer(device="cuda"), None)
    assert (choice.amp, choice.source) == ("bf16", "device")


def test_a_slowdown_is_reported_once():
    watch = SlowdownWatch(0.01)
    assert watch.check(0.02) is None
    message = watch.check(0.05)
    assert "take 5.0x as long as measured at the start (50.0 ms against 10.0 ms)" in message
    assert "--set speed.threads=1" in message and watch.check(0.09) is None
    assert SlowdownWatch(None).check(10.0) is None


def test_cores_follow_the_process_affinity(monkeypatch):
    monkeypatch.setattr(autotune.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert autotune.cores() == 1  # as under `taskset -c 0`: one core, though the machine has more
