"""The divergence guard: its checks (non-finite values, a saturated discriminator) and what it
does about a problem (roll back to the newest checkpoint with both learning rates halved, or
stop with a DivergenceError once its retries are used up). docs/robustness.md.

Nothing here reads a tensor on the host during a step. Per step the guard only updates two
0-d counters on the device, and only when saturation checking is on (`observe`). The loop calls
`Guard.healthy` at logging and checkpoint steps; it reads everything it needs in one transfer.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch
from torch import Tensor, nn

from ..errors import DivergenceError
from .checkpoint import latest_checkpoint, list_checkpoints

SATURATED_PROB = 0.99  # probabilistic losses: a D step is saturated when D(x) > this and D(G(z)) < 1 - this
CRITIC_LIMIT = 1e4  # other losses (critic scores): saturated when |mean score| on real or fake exceeds this


def state_tensors(modules: Iterable[Optional[nn.Module]], optimizers: Iterable[torch.optim.Optimizer]) -> list[Tensor]:
    """Every floating-point parameter, buffer and optimizer-state tensor: what a checkpoint saves."""
    out = []
    for m in modules:
        if m is not None:
            out += [t for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    for opt in optimizers:
        for state in opt.state.values():
            out += [t for t in state.values() if isinstance(t, Tensor) and t.is_floating_point()]
    return out


class DivergenceGuard:
    """Device-side bookkeeping of saturated D steps, and the check that reads it.

    saturation_steps: consecutive saturated D steps that count as divergence; 0 = not checked.
    probabilistic: whether the loss reads D's logits as log-odds (then D(x), D(G(z)) are used).
    """

    def __init__(self, saturation_steps: int, probabilistic: bool, device: torch.device):
        self.saturation_steps = saturation_steps
        self.probabilistic = probabilistic
        self.run = torch.zeros((), dtype=torch.int64, device=device)  # saturated D steps in a row, up to now
        self.longest = torch.zeros((), dtype=torch.int64, device=device)  # longest such run since the last check

    def observe(self, out: dict[str, Tensor]) -> None:
        """Count one D step's saturation from its output dict (device ops only, no host read)."""
        if not self.saturation_steps:
            return
        if self.probabilistic:
            saturated = (out["D_real"] > SATURATED_PROB) & (out["D_fake"] < 1.0 - SATURATED_PROB)
        else:
            saturated = (out["real_logit"].abs() > CRITIC_LIMIT) | (out["fake_logit"].abs() > CRITIC_LIMIT)
        self.run = (self.run + 1) * saturated  # back to 0 on any unsaturated step
        self.longest = torch.maximum(self.longest, self.run)

    def check(self, sums: dict[str, Tensor], tensors: list[Tensor]) -> Optional[str]:
        """What is wrong, in words, or None. One host read.

        sums: running sums of the logged step outputs since the last log (a NaN or inf in any
        step's loss, logit mean or gradient norm makes its sum non-finite).
        tensors: model and optimizer state to check for NaN/inf (empty: not checked).
        """
        keys = list(sums)
        flags = [torch.isfinite(t).all() for t in tensors]
        parts = [sums[k].detach().float().reshape(()) for k in keys]
        parts.append(torch.stack(flags).all().float() if flags else torch.ones((), device=self.run.device))
        parts.append(self.longest.float())
        values = torch.stack([p.to(self.run.device) for p in parts]).tolist()
        self.longest.zero_()
        bad = [k for k, v in zip(keys, values) if not math.isfinite(v)]
        if bad:
            return f"non-finite {', '.join(bad)} (NaN or infinity in a step's losses or gradients)"
        if values[-2] < 1.0:
            return "non-finite weights or optimizer state (NaN or infinity)"
        if self.saturation_steps and values[-1] >= self.saturation_steps:
            what = (f"D(x) > {SATURATED_PROB} and D(G(z)) < {1 - SATURATED_PROB:.2g}" if self.probabilistic
                    else f"|critic score| > {CRITIC_LIMIT:g}")
            return f"the discriminator saturated ({what}) for {int(values[-1])} discriminator steps in a row"
        return None

    def state_dict(self) -> dict:
        return {"run": int(self.run)}  # read at checkpoint steps only, right after a check

    def load_state_dict(self, s: dict) -> None:
        self.run.fill_(int(s.get("run", 0)))
        self.longest.zero_()


class Guard:
    """The divergence guard of one run: checks, and the rollback when a check fails. With
    `checks` None (train.guard false) nothing is checked, but the rollbacks of earlier parts of
    the run still scale the learning rates.

    restore(checkpoint dict): puts the run back into a checkpoint's state (weights, optimizers,
    counters, random streams, statistics), the guard's own state included.
    log(record), say(text): a stats.jsonl record and a line on stderr.
    base_lrs: {"optim.G.lr": ..., "optim.D.lr": ...} as configured; the rates in force are these
    times `lr_scale`.
    """

    def __init__(self, checks: Optional[DivergenceGuard], retries: int, run_dir: Path, restore: Callable[[dict], None],
                 log: Callable[[dict], None], say: Callable[[str], None], base_lrs: dict[str, float], world=None,
                 newest: Optional[Callable[[], dict]] = None):
        from .distributed import World

        self.checks, self.retries, self.run_dir = checks, retries, Path(run_dir)
        self.restore, self.log, self.say, self.base_lrs = restore, log, say, base_lrs
        self.world = world or World.single()  # several processes decide together: one problem is everyone's
        self.newest = newest or (lambda: latest_checkpoint(self.run_dir))  # the checkpoint to go back to
        self.used = 0  # rollbacks so far (kept in the checkpoint: the budget spans resumes)
        self.in_config = 0  # of those, the ones an older ganland wrote into the config's rates

    @property
    def lr_scale(self) -> float:
        """Each rollback halves both learning rates."""
        return 0.5 ** (self.used - self.in_config)

    def lrs(self, scale: float) -> str:
        return ", ".join(f"{k}={v * scale:g}" for k, v in self.base_lrs.items())

    def check_start(self, sums: dict[str, Tensor], tensors: list[Tensor], resumed_from: Optional[str]) -> None:
        """The state training starts from is what a rollback returns to: it must be good. (A
        resumed checkpoint can hold NaN/inf only if it was saved while train.guard was off.)"""
        problem = self.checks.check(sums, tensors) if self.checks is not None else None
        if self.checks is not None:
            problem = self.world.first_of(problem)
        if problem is not None and resumed_from is None:
            raise DivergenceError(f"the initial state is already broken: {problem}")
        if problem is not None:
            raise DivergenceError(
                f"the checkpoint {resumed_from} this run resumes from is already broken: {problem}. It was saved "
                "while train.guard was off, so the guard has no good state to roll back to; resume with "
                "train.guard=false (and train.guard_saturation_steps=0) or start a new run")

    def healthy(self, sums: dict[str, Tensor], tensors: list[Tensor], step: int, epoch: int) -> bool:
        """Check the step outputs since the last check (`sums`) and `tensors`; on a problem roll
        back (and return False) or raise DivergenceError when the retries are used up."""
        if self.checks is None:
            return True
        problem = self.world.first_of(self.checks.check(sums, tensors))  # any process's problem, on every one
        if problem is None:
            return True
        self.roll_back(problem, step, epoch)
        return False

    def roll_back(self, problem: str, step: int, epoch: int) -> None:
        """Return to the newest checkpoint (every one passed the guard) with both learning rates
        halved, or stop with a DivergenceError when the retries are used up."""
        used, now = self.used, self.lrs(self.lr_scale)
        if used >= self.retries:
            self.log({"kind": "guard", "step": step, "epoch": epoch, "problem": problem, "action": "stopped"})
            good = list_checkpoints(self.run_dir)
            tried = (f"The guard rolled back {used} time(s) to the last good checkpoint, halving both learning "
                     f"rates each time (now {now}), and train.guard_retries={self.retries} are used up."
                     if used else f"train.guard_retries is 0, so the guard stops without retrying ({now}).")
            raise DivergenceError(
                f"training diverged at step {step}: {problem}. {tried} "
                + (f"The newest checkpoint {good[0]} holds the last good state; nothing non-finite was saved. "
                   if good else "")
                + "Start a new run with lower learning rates, a gradient penalty (loss.gp_weight), R1 "
                  "(loss.r1_weight) or model.spectral_norm=true.")
        ck = self.newest()
        self.restore(ck)  # restores the guard's state of then too; the retries spent since stay spent
        self.used = used + 1
        back_to = int(ck["counters"]["step"])
        action = (f"rolled back to step {back_to} ({Path(ck['path']).name}), retry {self.used} of {self.retries} "
                  f"with both learning rates halved ({now} -> {self.lrs(self.lr_scale)})")
        self.log({"kind": "guard", "step": back_to, "epoch": int(ck["counters"]["epoch"]), "detected_at": step,
                  "problem": problem, "action": action})
        self.say(f"ganland: guard: step {step}: {problem}; {action}")

    def observe(self, out: dict[str, Tensor]) -> None:
        if self.checks is not None:
            self.checks.observe(out)

    def state_dict(self) -> dict:
        return {"retries": self.used, "in_config": self.in_config,
                **(self.checks.state_dict() if self.checks is not None else {})}

    def load_state_dict(self, s: dict, rates_halved_in_config: bool = False) -> None:
        """rates_halved_in_config: the checkpoint comes from a ganland that halved the rates in the
        config itself, so its rollbacks so far are already in the configured rates."""
        self.used = int(s.get("retries", 0))
        self.in_config = int(s.get("in_config", self.used if rates_halved_in_config else 0))
        if self.checks is not None:
            self.checks.load_state_dict(s)
