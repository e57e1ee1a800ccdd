"""The speed settings that depend on the machine, chosen by measuring rather than guessed.

`speed.threads: 0` and `speed.amp: auto` on a CPU leave two choices open: how many threads torch
uses (one thread is often faster for the small MLPs of the toy recipes, every core for the conv
nets), and whether bf16 autocast pays (about 1.3-1.5x faster on CPUs with AVX-512 BF16 or AMX
units, 5-25x slower on the others). `tune` times a few steps of the run's actual model under each
candidate, on copies of the models (the run's weights and random streams are untouched), and
keeps the fastest. bf16 is only a candidate where the CPU has bf16 units (read from
/proc/cpuinfo). The choice is cached per machine, torch version and model, so a second run of the
same recipe measures nothing; it is recorded in stats.jsonl and in every checkpoint, and a resumed
run on the same machine keeps it (same threads and precision: the same numbers, bit for bit).

On CUDA and MPS nothing is measured: bf16 autocast on CUDA (as `autocast_for` says), torch's threads.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from ..data.degrade import degrade_name

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # CPU flags of units that make bf16 matrix products fast
MEASURE_SECONDS = 0.3  # time spent on each candidate per round (after warm-up)
ROUNDS = 2  # candidates are timed in turn, this many times, and the best time of each kept
SLOWER_WARNING = 3.0  # warn when steps take this many times as long as measured
MARGIN = 0.08  # a candidate with more threads or bf16 must be this much faster (8 %) to be chosen


@dataclass
class SpeedChoice:
    """What `tune` chose and why."""

    threads: int  # torch threads (0: torch's own choice, left alone)
    amp: str  # "fp32" or "bf16"
    source: str  # "set" (the config fixed both), "measured", "cache", "checkpoint", "device" (CUDA/MPS)
    seconds_per_step: Optional[float] = None  # measured time of a training step with this choice
    measured: dict = field(default_factory=dict)  # "threads=2 amp=fp32" -> seconds per step, every candidate
    machine: str = ""  # the machine fingerprint the choice was made on

    def record(self) -> dict:
        """The stats.jsonl record of the choice."""
        return {"kind": "setup", "threads": self.threads, "amp": self.amp, "speed_source": self.source,
                "seconds_per_step": self.seconds_per_step, "measured": self.measured, "machine": self.machine}


# ---- the machine -----------------------------------------------------------------------------------


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def has_bf16_units(flags: set[str]) -> bool:
    return any(f in flags for f in BF16_FLAGS)


def machine_fingerprint(flags: set[str]) -> str:
    """CPU model, its bf16 units, cores and torch version: what the measured speeds depend on."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    units = ",".join(sorted(f for f in flags if f in BF16_FLAGS or f.startswith("avx512") or f == "avx2"))
    return f"{model} | {cores()} cores | {units or 'no avx2'} | torch {torch.__version__}"


# ---- the candidates and the decision ----------------------------------------------------------------


def candidates(threads: int, amp: str, cores: int, flags: set[str], is_image: bool = True) -> list[tuple[int, str]]:
    """The (threads, amp) pairs worth timing on a CPU for the settings `threads` (0 = auto) and
    `amp` ("auto", "fp32", "bf16"); one pair means there is nothing to measure. Vector data stays
    in fp32 under auto, however fast bf16 would be (its precision: `device.autocast_for`)."""
    thread_options = [threads] if threads else sorted({1, cores})
    amp_options = [amp] if amp != "auto" else (["fp32", "bf16"] if has_bf16_units(flags) and is_image else ["fp32"])
    return [(t, a) for t in thread_options for a in amp_options]


def key(pair: tuple[int, str]) -> str:
    return f"threads={pair[0]} amp={pair[1]}"


def fastest(times: dict[str, float], pairs: list[tuple[int, str]]) -> tuple[int, str]:
    """The first pair (fewest threads, fp32), unless a later one is clearly faster: by more than
    MARGIN. Fewer threads leave cores to other work and suffer least when it comes; fp32 keeps
    full precision; neither is worth giving up for a difference within the timing noise."""
    best = pairs[0]
    for pair in pairs[1:]:
        if times[key(pair)] < (1.0 - MARGIN) * times[key(best)]:
            best = pair
    return best


def tune(threads: int, amp: str, signature: str, measure: Callable[[int, str], float], cache: Optional[Path],
         flags: Optional[set[str]] = None, n_cores: Optional[int] = None, is_image: bool = True) -> SpeedChoice:
    """Choose threads and amp for a CPU run (see the module docstring).

    signature: what the step time depends on besides the machine (model, batch, loss, ...).
    measure(threads, amp) -> seconds per training step under that setting.
    cache: the JSON file of earlier choices (None: no cache)."""
    flags = cpu_flags() if flags is None else flags
    machine = machine_fingerprint(flags)
    pairs = candidates(threads, amp, n_cores or cores(), flags, is_image)
    if len(pairs) == 1:
        return SpeedChoice(pairs[0][0], pairs[0][1], "set", machine=machine)
    entry = hashlib.sha256(f"{machine}\n{signature}\n{[key(p) for p in pairs]}".encode()).hexdigest()[:24]
    known = _read_cache(cache).get(entry)
    if known is not None:
        return SpeedChoice(known["threads"], known["amp"], "cache", known.get("seconds_per_step"),
                           known.get("measured", {}), machine)
    times: dict[str, float] = {}
    for _ in range(ROUNDS):  # in turn, so a passing load on the machine spreads over all candidates
        for pair in pairs:
            t = measure(*pair)
            times[key(pair)] = min(t, times.get(key(pair), float("inf")))
    best = fastest(times, pairs)
    choice = SpeedChoice(best[0], best[1], "measured", times[key(best)], {k: round(v, 6) for k, v in times.items()},
                         machine)
    _write_cache(cache, entry, choice)
    return choice


def _read_cache(path: Optional[Path]) -> dict:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # a damaged cache is measured again
    return data if isinstance(data, dict) else {}


def _write_cache(path: Optional[Path], entry: str, choice: SpeedChoice) -> None:
    if path is None:
        return
    data = _read_cache(path)
    data[entry] = {k: v for k, v in asdict(choice).items() if k != "source"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # no cache: the next run measures again


# ---- timing a run's own step ------------------------------------------------------------------------


def step_timer(trainer) -> Callable[[int, str], float]:
    """measure(threads, amp) for `tune`: seconds per training step of the trainer's own models and
    batch size, on deep copies with their own optimizers, data and noise. The run's weights,
    optimizer states and every random stream are left exactly as they were."""
    from ..build import build_optimizer
    from ..generator import sample_z
    from .step import StepSettings, d_step, g_step

    cfg, t = trainer.cfg, trainer.cfg.train
    G, D = copy.deepcopy(trainer.G), copy.deepcopy(trainer.D)
    opt_G, opt_D = build_optimizer(G, cfg.optim.G), build_optimizer(D, cfg.optim.D)
    gen = torch.Generator(trainer.device).manual_seed(12345)
    data = trainer.train_set
    x = (data.x[:t.batch_size] if data.finite else data.draw(t.batch_size, torch.Generator().manual_seed(0)))
    x = (x.float().mul(2.0 / 255.0).sub(1.0) if x.dtype == torch.uint8 else x.float()).to(trainer.device)
    if trainer.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    if trainer.paired:  # image-to-image: the inputs of these images
        c = data.inputs(torch.arange(t.batch_size), 0).to(trainer.device)
    else:
        c = trainer.batches.fake_labels(t.batch_size, trainer.n_classes, gen)

    def one_step(settings: StepSettings) -> None:
        for _ in range(t.n_critic):
            z = sample_z(t.batch_size, cfg.model.z_dim, cfg.model.z_prior, gen, trainer.device)
            if settings.adv_weight > 0:
                d_step(G, D, opt_D, settings, x, c, z, c, gen)
        z = sample_z(t.batch_size, cfg.model.z_dim, cfg.model.z_prior, gen, trainer.device)
        g_step(G, D, opt_G, settings, z, c, generator=gen, x_real=x, c_real=c)

    def measure(threads: int, amp: str) -> float:
        rng = torch.get_rng_state()  # dropout and friends draw from the global stream
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(threads)
            s = trainer.settings
            settings = dataclasses.replace(s, autocast=None if amp == "fp32" else (trainer.device.type, torch.bfloat16),
                                           augment=s.augment.for_timing() if s.augment is not None else None)
            for _ in range(2):  # warm-up: first-call allocations, oneDNN kernel selection
                one_step(settings)
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < MEASURE_SECONDS or steps < 3:
                one_step(settings)
                steps += 1
            return (time.perf_counter() - start) / steps
        finally:
            torch.set_num_threads(before)
            torch.set_rng_state(rng)

    return measure


def signature(cfg, shape: tuple, channels_last: bool) -> str:
    """What a step's time depends on, besides the machine: model, data shape, batch, loss, penalties."""
    m, t, sp = cfg.model, cfg.train, cfg.speed
    key = {"model": m.name, "options": m.options, "z_dim": m.z_dim, "conditional": m.conditional,
           "spectral_norm": m.spectral_norm, "shape": list(shape), "batch_size": t.batch_size,
           "n_critic": t.n_critic, "loss": cfg.loss.name, "gp": cfg.loss.gp_weight > 0,
           "r1": cfg.loss.r1_weight > 0, "channels_last": channels_last, "reuse_fake": sp.reuse_fake,
           "compile": sp.compile}
    if degrade_name(cfg) != "none":  # image-to-image: the inputs, and whether a D is trained at all
        key.update(degrade=degrade_name(cfg), degrade_options=cfg.data.degrade_options, d=cfg.loss.adv_weight > 0)
    return json.dumps(key, sort_keys=True)


# ---- the trainer's choice ---------------------------------------------------------------------------

WORTH_MEASURING_STEPS = 500  # a run this many generator steps long (or limited by time) is timed


def choose(trainer, saved: Optional[dict]) -> SpeedChoice:
    """The speed choice of a run: fixed by the config, kept from the checkpoint when the run resumes
    on the same machine, measured (or read from the cache) for runs long enough to pay for it, or
    else decided from the kind of model alone: one thread for MLPs (their steps are too small to
    share between cores: 1.2-2x faster on one, measured on the toy recipes), every core for conv
    nets, and fp32."""
    sp, device = trainer.cfg.speed, trainer.device
    if device.type != "cpu":
        amp = "bf16" if trainer.settings.autocast is not None else "fp32"
        return SpeedChoice(sp.threads, amp, "device")
    flags = cpu_flags()
    machine = machine_fingerprint(flags)
    is_image = trainer.train_set.is_image
    pairs = candidates(sp.threads, sp.amp, cores(), flags, is_image)
    if saved and saved.get("machine") == machine and (int(saved["threads"]), saved["amp"]) in pairs:
        return SpeedChoice(int(saved["threads"]), saved["amp"], "checkpoint", saved.get("seconds_per_step"),
                           machine=machine)
    world = getattr(trainer, "world", None)
    if world is not None and world.active:  # the processes of one machine share its cores; no timing
        return SpeedChoice(sp.threads or max(1, cores() // world.local_size), "fp32" if sp.amp == "auto" else sp.amp,
                           "processes", machine=machine)
    if len(pairs) > 1 and not worth_measuring(trainer.budget, trainer.cfg.train.minutes):
        convs = any(isinstance(m, torch.nn.modules.conv._ConvNd) for net in (trainer.G, trainer.D)
                    for m in net.modules())
        threads = sp.threads or (cores() if convs else 1)
        return SpeedChoice(threads, "fp32" if sp.amp == "auto" else sp.amp, "short run", machine=machine)
    from ..data.sources import cache_root

    return tune(sp.threads, sp.amp, signature(trainer.cfg, trainer.train_set.shape, trainer.channels_last),
                step_timer(trainer), cache_root() / "speed-choices.json", flags, is_image=is_image)


def start_speed(trainer) -> tuple[SpeedChoice, "SlowdownWatch"]:
    """Choose (`choose`), apply, say it, and, when the choice is new, record it in stats.jsonl."""
    choice = choose(trainer, trainer._saved_speed)
    apply(choice, trainer.settings, trainer.device)
    if choice.source != "checkpoint":
        trainer.log.write({**choice.record(), "step": trainer.step})
    threads = choice.threads or torch.get_num_threads()
    source = "kept from the checkpoint" if choice.source == "checkpoint" else choice.source
    trainer.log.say(f"speed: {threads} thread{'s' if threads > 1 else ''}, {choice.amp} ({source})")
    return choice, SlowdownWatch(choice.seconds_per_step)


def cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or a job scheduler)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worth_measuring(budget: Optional[int], minutes: Optional[float]) -> bool:
    """A few seconds of timing pay off over a long run, not over a short test run."""
    return (budget is not None and budget >= WORTH_MEASURING_STEPS) or (budget is None and minutes is not None
                                                                        and minutes >= 1.0)


def apply(choice: SpeedChoice, settings, device: torch.device) -> None:
    """Set torch's threads and the steps' precision to the choice."""
    if choice.threads:
        torch.set_num_threads(choice.threads)
    settings.autocast = None if choice.amp == "fp32" else (device.type, torch.bfloat16)


class SlowdownWatch:
    """Says once when training steps take far longer than the choice measured (another process on
    the same cores is the usual cause). `add` the time of each step; `check` at each log."""

    def __init__(self, expected: Optional[float]):
        self.expected = expected  # seconds per step measured at the start; None: nothing to compare
        self.warned = False
        self.seconds = self.steps = 0  # inside training steps since the last check (pictures etc. left out)

    def add(self, seconds: float) -> None:
        self.seconds, self.steps = self.seconds + seconds, self.steps + 1

    def check_window(self) -> Optional[str]:
        """The warning for the steps since the last check, if they were far too slow."""
        message = self.check(self.seconds / self.steps) if self.steps else None
        self.seconds = self.steps = 0
        return message

    def check(self, seconds_per_step: float) -> Optional[str]:
        if self.warned or not self.expected or seconds_per_step < SLOWER_WARNING * self.expected:
            return None
        self.warned = True
        return (f"ganland: warning: training steps take {seconds_per_step / self.expected:.1f}x as long as measured "
                f"at the start ({1000 * seconds_per_step:.1f} ms against {1000 * self.expected:.1f} ms): another "
                "process is probably using the same cores. Two trainings on one machine each want --set "
                "speed.threads=1 (or half the cores).")
