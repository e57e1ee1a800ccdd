"""How a command ends (training/distributed.py, `exit_now`): a process that joined a process group
ends without Python's teardown, its output flushed and its exit status kept; any other returns."""
from __future__ import annotations

import subprocess
import sys

from ganland.cli import main
from ganland.training import distributed


def test_exit_now_flushes_the_output_and_keeps_the_status():
    code = ("import sys; from ganland.training.distributed import exit_now\n"
            "print('kept', end=''); sys.stderr.write('also kept'); exit_now(3); print('never')")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (3, "kept", "also kept")  # stdout is a pipe: block-buffered


def test_a_process_that_joined_no_group_returns_from_main(capsys):
    assert main(["losses"]) == 0  # no exit: tests and programs call main() in their own process
    assert not distributed.joined()
    assert "hinge" in capsys.readouterr().out
