"""How a run ends early. A clean stop on Ctrl-C (SIGINT) and SIGTERM: the first signal asks the
run to stop after the step it is in (the loop then saves a checkpoint and the statistics); a
second one stops at once (a KeyboardInterrupt: checkpoint writes are atomic, so nothing already
saved is damaged). And what to tell the user then, also after an operating-system error: the
command that continues the run, and what there is to continue from."""
from __future__ import annotations

import errno
import os
import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from ..errors import CheckpointError, Interrupted
from .checkpoint import list_checkpoints

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """While entered, SIGINT and SIGTERM are caught (in the main thread only: Python delivers
    signals there); `signum` is the first one received, None until then. The handlers in place
    before are restored on exit."""

    def __init__(self):
        self.signum: Optional[int] = None
        self._previous: dict = {}
        self._stopping_now = False  # the second signal came: later ones are ignored while the run unwinds

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)  # None: set outside Python
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        if self._stopping_now:
            return  # a third signal while the second one's exception unwinds: it would only cut the message short
        if self.signum is not None:
            self._stopping_now = True
            raise KeyboardInterrupt  # the second signal: stop now
        self.signum = signum
        _notice(f"\nganland: {signal.Signals(signum).name} received: finishing this step, then saving a checkpoint "
                "(press Ctrl-C again to stop at once)\n")


def _notice(text: str) -> None:
    """Write to stderr from a signal handler: os.write, not print (print is not reentrant, and the
    signal may arrive in the middle of another print)."""
    try:
        os.write(sys.stderr.fileno(), text.encode("utf-8", "replace"))
    except (OSError, ValueError, AttributeError):  # no real file behind stderr (captured output)
        pass


def resume_command(run_dir: Path, rules: dict, world=None) -> str:
    """The command that continues a run, with its stopping rule when it has one (`rules`:
    config.stop_rules), under torchrun when the run has several processes (`world`)."""
    flag = ""
    if len(rules) == 1:
        (key, value), = rules.items()
        shown = int(value) if float(value).is_integer() else repr(value)  # exact: the command must not move the stop
        flag = f" --{key.split('.')[-1]} {shown}"
    return f"{launcher(world)} train --resume {shlex.quote(str(run_dir))}{flag}"


def launcher(world=None) -> str:
    """How to start ganland the way this process was started: `ganland`, or torchrun with as many
    processes (`world`: the processes of a run, None or inactive for one)."""
    if world is None or not world.active:
        return "ganland"
    if world.size == world.local_size:
        return f"torchrun --standalone --nproc-per-node={world.size} -m ganland"
    return "torchrun <the same torchrun options as before> -m ganland"


def newest_checkpoint_text(run_dir: Path, command: str, advice: str = "") -> str:
    """What is left to continue from, in words; never claims a checkpoint that is not there."""
    newest = list_checkpoints(run_dir)
    if not newest:
        return "no checkpoint was written yet, so there is nothing to resume"
    return f"the newest checkpoint {newest[0]} is intact: {advice}continue with `{command}`"


@contextmanager
def explained(run_dir: Path, step: Callable[[], int], command: Callable[[], str], stop: StopRequest) -> Iterator[None]:
    """Turn the ways a run ends early into errors that say what is left and how to go on: a second
    signal (a KeyboardInterrupt) into Interrupted, an operating-system error on stats, pictures or
    metrics (a full disk, a read-only folder) into a CheckpointError naming the cause."""
    try:
        yield
    except KeyboardInterrupt:  # the second signal, or Ctrl-C where no handler could be installed
        kept = newest_checkpoint_text(run_dir, command())
        raise Interrupted(f"stopped at once by a second signal at step {step()}; {kept}",
                          stop.signum or signal.SIGINT) from None
    except OSError as e:  # checkpoint writes raise CheckpointError themselves
        code = f" [{errno.errorcode[e.errno]}]" if e.errno in errno.errorcode else ""
        where = f" ({e.filename})" if e.filename else ""
        raise CheckpointError(f"training stopped at step {step()}: {e.strerror or e}{code}{where}; "
                              f"{newest_checkpoint_text(run_dir, command(), 'fix the cause and ')}") from e
