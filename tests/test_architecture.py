"""The architecture, checked: imports flow one way between the subpackages, and no module cycles.

Every import counts, wherever it is written: at the top of a module, inside a
function, or under ``TYPE_CHECKING``.  A subpackage may import its own
modules and the subpackages of the layers below it, never one above it nor
one beside it; and no module reaches itself through a chain of imports.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import reportgen

PACKAGE = Path(reportgen.__file__).parent
# Highest first: a subpackage may import only from its own and from later layers.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli"}),
    frozenset({"sweep"}),
    frozenset({"run"}),
    frozenset({"report", "figures", "export"}),
    frozenset({"evaluate"}),
    frozenset({"train"}),
    frozenset({"data"}),
    frozenset({"artifacts"}),
    frozenset({"config"}),
    frozenset({"core"}),
)
HEAVY = ("torch", "matplotlib", "weasyprint")  # what the quick commands must not load


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """Return the dotted name of a module file of the package at ``root``."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """Return every module of ``modules`` a module's source imports, at any depth of its code.

    ``from pkg import module`` depends on that module, ``from pkg import name``
    on ``pkg`` itself (its ``__init__``).
    """
    found = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                module = f"{base}.{alias.name}"
                found.add(module if module in modules else base)
    return found & modules


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Return module → the package's modules it imports."""
    sources = {module_name(path, root): path for path in root.rglob("*.py")}
    graph = {}
    for name, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = imported(tree, name, path.name == "__init__.py", set(sources))
        graph[name] = targets - {name}
    return graph


def layer_of(module: str) -> int | None:
    """Return the index of a module's subpackage in :data:`LAYERS` (None: the package root)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in ("__main__", "templates"):
        return None
    return next(i for i, layer in enumerate(LAYERS) if parts[1] in layer)


def layer_violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Return ``a -> b`` for every import that goes up a layer or sideways within one."""
    problems = []
    for module, targets in sorted(graph.items()):
        here = layer_of(module)
        if here is None:
            continue
        for target in sorted(targets):
            there = layer_of(target)
            same_package = target.split(".")[:2] == module.split(".")[:2]
            if there is None or (not same_package and there <= here):
                problems.append(f"{module} -> {target}")
    return problems


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return one import cycle as ``[a, b, …, a]``, or None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


# --------------------------------------------------------------------------- the checks


def test_every_subpackage_has_a_layer_and_says_its_role() -> None:
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")} - {"templates"}
    assert subpackages == set().union(*LAYERS)
    for name in subpackages:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc and "\n" not in doc.strip(), f"reportgen.{name}: one line saying its role"


def test_imports_flow_down_the_layers() -> None:
    assert layer_violations(import_graph()) == []


def test_no_module_imports_itself_through_others() -> None:
    assert find_cycle(import_graph()) is None


def test_no_module_is_over_about_600_lines() -> None:
    long = {module_name(p): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 620}  # fmt: skip
    assert long == {}


def test_the_checks_catch_a_planted_cycle_and_an_upward_import(tmp_path: Path) -> None:
    package = tmp_path / "reportgen"
    for sub in ("core", "config"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text('"""x."""\n')
    (package / "__init__.py").write_text("")
    (package / "core" / "a.py").write_text("from reportgen.config import b\n")
    (package / "config" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from reportgen.core.a import x\n"
    )
    graph = import_graph(package)
    assert graph["reportgen.core.a"] == {"reportgen.config.b"}
    assert find_cycle(graph) == ["reportgen.config.b", "reportgen.core.a", "reportgen.config.b"]
    assert layer_violations(graph) == ["reportgen.core.a -> reportgen.config.b"]


def test_a_function_level_import_counts(tmp_path: Path) -> None:
    package = tmp_path / "reportgen"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "m.py").write_text("def f():\n    from reportgen.run import pipeline\n")
    (package / "run").mkdir()
    (package / "run" / "__init__.py").write_text("")
    (package / "run" / "pipeline.py").write_text("")
    assert layer_violations(import_graph(package)) == ["reportgen.data.m -> reportgen.run.pipeline"]


@pytest.mark.parametrize(
    "argv",
    [
        ["config"],
        ["--help"],
        ["config", "--set", "data.dataset=fashion-mnist"],
        ["sweep", "--help"],
    ],
)
def test_quick_commands_import_no_heavy_library(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "reportgen", *argv],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    modules = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
               if line.startswith("import time:")}  # fmt: skip
    assert "reportgen.cli.main" in modules  # the check sees what was imported
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == []


def test_loading_a_sweep_file_imports_no_heavy_library(tmp_path: Path) -> None:
    (tmp_path / "sweep.toml").write_text('seeds = [0, 1]\n[grid]\n"train.lr" = [0.001, 0.01]\n')
    code = (
        "import sys; from reportgen.config.sweepspec import load_sweep; "
        f"load_sweep({str(tmp_path / 'sweep.toml')!r}); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"
