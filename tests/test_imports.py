"""No import cycles among ganland's modules, counting imports inside functions too (a cycle
api -> training.loop -> evaluation -> api once hid in one). Lower layers (config, data, models,
generator, device) never reach up to the loop, evaluation or the API."""
from __future__ import annotations

import ast
from pathlib import Path

import ganland

ROOT = Path(ganland.__file__).parent


def modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = ["ganland", *f.relative_to(ROOT).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (f, is_package)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the ganland modules it imports anywhere in its file (and their parent packages)."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, (path, is_package) in mods.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for t in targets:
                if t in mods:
                    parts = t.split(".")
                    graph[name] |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)} - {name}
    for name in graph:  # a module never depends on the packages it sits in (they are importing it)
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    cycles = sorted(m for m in graph if m in reachable(graph, m))
    assert cycles == [], f"modules on an import cycle: {cycles}"


def test_lower_layers_do_not_reach_up():
    graph = import_graph()
    upper = {"ganland", "ganland.api", "ganland.cli", "ganland.evaluation", "ganland.training.loop"}
    for low in ("ganland.config", "ganland.build", "ganland.data", "ganland.models", "ganland.losses",
                "ganland.generator", "ganland.device", "ganland.training.checkpoint", "ganland.metrics"):
        assert not reachable(graph, low) & upper, low
    assert "ganland.api" not in reachable(graph, "ganland.evaluation")
