"""The package layout is the architecture: layers import downwards only, no cycles, no private names across modules,
no torch or exporter code at run time, and modules and functions stay small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "edgefx"
# The layers, bottom up. A module may import its own package and any lower layer; `evaluation` sits beside the
# product (it measures it) and only the CLI may import it; the CLI may import everything.
# `gallery` (enrolment, templates, 1:N search, audit) needs faces and runtime only; the Engine drives it.
LAYERS = {"runtime": 0, "faces": 1, "gallery": 2, "explain": 3, "qa": 4, "engine": 5, "service": 6, "evaluation": 6,
          "cli": 7}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import in the file, at any depth (lazy imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
    return found


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "edgefx" and len(parts) > 1 else None


def edges() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        for target, names, _ in imports(path):
            if not target.startswith("edgefx"):
                continue
            # `from edgefx.cli import bench` imports the submodule edgefx.cli.bench
            targets = [f"{target}.{n}" if f"{target}.{n}" in known else target for n in names] or [target]
            graph[module] |= {t for t in targets if t in known and t != module}
    return graph


def test_every_import_points_down_the_layers() -> None:
    wrong = []
    for module, path in modules().items():
        own = layer(module)
        if own is None:
            continue  # edgefx/__init__.py re-exports Engine and Settings lazily
        for target, _, line in imports(path):
            other = layer(target)
            if other is None or other == own:
                continue
            down = LAYERS[other] < LAYERS[own] or (own == "cli")
            if other == "evaluation" and own != "cli":
                down = False
            if other == "cli":
                down = False
            if not down:
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line} ({own}) imports {target} ({other})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = edges()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # A package's __init__ importing its own submodules (the CLI registry) is the package, not a cycle.
    cycles = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c)]
    assert not cycles, cycles


def test_no_private_names_across_modules() -> None:
    wrong = [f"{path.relative_to(ROOT.parent)}:{line} imports {n} from {target}"
             for module, path in modules().items() for target, names, line in imports(path)
             if target.startswith("edgefx") for n in names if n.startswith("_") and n != "__version__"]
    assert not wrong, "\n".join(wrong)


def test_runtime_never_imports_torch_or_the_exporter() -> None:
    wrong = [f"{path.relative_to(ROOT.parent)}:{line} imports {target}" for path in modules().values()
             for target, _, line in imports(path) if target.split(".")[0] in {"torch", "export", "transformers",
                                                                              "optimum"}]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{path.name}: {source.count(chr(10))} lines"
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines" for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long


def test_every_module_says_what_it_is() -> None:
    missing = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, missing


def test_the_public_names_still_import() -> None:
    from edgefx import Engine, Settings  # noqa: F401  (the documented entry points)
