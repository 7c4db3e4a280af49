"""The house rules: layers import downwards only, no import cycle, rooms of a readable size."""
from __future__ import annotations

import ast
import collections
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "voiceprint"
#: a module may import from its own layer and the layers after it
LAYERS = [("api", "web", "cli", "bulk", "wsgi", "serving", "__main__"), ("services",), ("runtime",),
          ("encoders", "stores", "audio", "diarization"), ("scoring",),
          ("config", "errors", "timing")]
MAX_LINES = 400
#: longer modules and why
LONG_OK: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("voiceprint"):
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                           else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("voiceprint")]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    for i, names in enumerate(LAYERS):
        if parts[1] in names:
            return i
    return None


def test_no_import_cycle():
    graph = _imports(_modules())
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in list(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_layers_import_downwards_only():
    wrong = []
    for module, targets in _imports(_modules()).items():
        mine = _layer(module)
        for target in targets:
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs < mine:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_modules_stay_readable():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert {k: v for k, v in long.items() if k not in LONG_OK} == {}
