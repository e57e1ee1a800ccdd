"""The divergence guard's checks: non-finite values and a saturated discriminator.

Nothing here reads a tensor on the host during a step. Per step the guard only updates two
0-d counters on the device, and only when saturation checking is on (`observe`). The loop calls
`check` at logging and checkpoint steps; it reads everything it needs in one transfer. What to do
about a problem (roll back, retry, stop) is the loop's business (`Trainer._roll_back`).
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
from torch import Tensor, nn

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
