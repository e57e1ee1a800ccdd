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
