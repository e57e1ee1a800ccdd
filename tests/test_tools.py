"""The helper scripts in tools/ that the docs tell people to run."""
import importlib.util
from pathlib import Path

import torch

from conftest import write_fake_mnist

ROOT = Path(__file__).resolve().parents[1]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_device_carry_cuts_the_training_split_to_the_same_small_data(tmp_path):
    """A run with data.options.per_class trains on the very same images from the cut files."""
    from ganland.data.idx import build_mnist

    full = write_fake_mnist(tmp_path / "full", n_train=256, n_test=64)
    cut = tmp_path / "cut"
    cut.mkdir()
    n = load_tool("device_carry").cut_training_split(full, cut, per_class=5)
    assert n == 50  # the fake labels cycle 0..9: the 5th of class 9 is image 49
    a, b = (build_mnist("train", root=str(d), download=False, per_class=5) for d in (full, cut))
    assert len(a) == len(b) == 50 and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    whole_test, cut_test = (build_mnist("test", root=str(d), download=False) for d in (full, cut))
    assert torch.equal(whole_test.x, cut_test.x)  # the test split travels whole: scores keep their reference
    assert len(build_mnist("train", root=str(cut), download=False)) == 50  # the rest is left behind


def test_device_carry_packs_the_newest_checkpoint_and_refuses_to_pack_a_copy_onto_itself(tmp_path):
    import pytest

    run = tmp_path / "runs-here" / "small-x-seed1"
    (run / "checkpoints").mkdir(parents=True)
    for step in (100, 2000, 300):
        (run / "checkpoints" / f"step_{step:09d}.pt").write_bytes(b"x" * step)
    (run / "config.yaml").write_text("recipe: x\n")
    (run / "stats.jsonl").write_text("{}\n")
    tool = load_tool("device_carry")
    packed = tool.newest_only(run, tmp_path / "carry" / "runs")
    assert packed.name == "step_000002000.pt" and packed.stat().st_size == 2000
    assert sorted(p.name for p in packed.parent.parent.iterdir()) == ["checkpoints", "config.yaml", "stats.jsonl"]
    assert [p.name for p in packed.parent.iterdir()] == [packed.name]
    with pytest.raises(SystemExit, match="already in"):  # packing the packed copy would delete it first
        tool.newest_only(packed.parent.parent, tmp_path / "carry" / "runs")
    assert packed.is_file()
