"""Imports flow one way: no module of the local servers imports, even lazily, a module that imports it back.

The graph is read from the source with :mod:`ast`, so imports inside functions and under
``if TYPE_CHECKING:`` count too (https://docs.python.org/3/library/ast.html#ast.ImportFrom; how a
relative ``from . import x`` resolves: https://docs.python.org/3/reference/import.html#package-relative-imports).
``from package import submodule`` is an edge to the submodule, not to the package's ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import flask_difylogstore

PACKAGE_DIR = Path(flask_difylogstore.__file__).parent
PACKAGE = "flask_difylogstore"
TESTING = f"{PACKAGE}.testing"
# Runtime modules allowed to use the local servers: the demo starts them on purpose.
ALLOWED_OUTSIDE = ("flask_difylogstore.demo",)


def _modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``) for every ``.py`` under ``root``."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(name: str, path: Path, is_package: bool) -> list[tuple[str, list[str], int]]:
    """Every import in the file, anywhere: (absolute module, names taken from it, line)."""
    here = name if is_package else name.rpartition(".")[0]
    out: list[tuple[str, list[str], int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([module] if module else [])])
            out.append((module, [alias.name for alias in node.names], node.lineno))
    return out


def import_graph(root: Path, package: str) -> dict[str, dict[str, int]]:
    """Module -> {module of the same tree it imports: first line}.

    ``from pkg import sub`` is an edge to ``pkg.sub``; it is an edge to ``pkg`` itself only when one
    of the names taken is not a submodule (a name ``pkg/__init__.py`` defines).
    """
    modules = _modules(root, package)
    graph: dict[str, dict[str, int]] = {}
    for name, (path, is_package) in modules.items():
        edges: dict[str, int] = {}
        for module, names, line in _imports(name, path, is_package):
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            targets = submodules + ([module] if len(submodules) < len(names) or not names else [])
            for target in targets:
                if target in modules and target != name:
                    edges.setdefault(target, line)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted by name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def _describe(graph: dict[str, dict[str, int]], group: list[str]) -> str:
    members = set(group)
    edges = [f"{a} -> {b} (line {line})" for a in group for b, line in sorted(graph[a].items()) if b in members]
    return "import cycle between " + ", ".join(group) + ":\n  " + "\n  ".join(edges)


def test_local_servers_have_no_import_cycles() -> None:
    graph = import_graph(PACKAGE_DIR / "testing", TESTING)
    assert "flask_difylogstore.testing.es.server" in graph and "flask_difylogstore.testing.sls.server" in graph
    cycles = find_cycles(graph)
    assert not cycles, "\n".join(_describe(graph, group) for group in cycles)


def test_the_checker_sees_cycles_through_function_level_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub.low import VALUE\n")
    (package / "sub" / "low.py").write_text("VALUE = 1\n")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def late():\n    from . import a\n")
    (package / "c.py").write_text("from pkg.sub import low\n")
    (package / "d.py").write_text("import typing\nif typing.TYPE_CHECKING:\n    from pkg.sub import VALUE\n")
    graph = import_graph(package, "pkg")
    assert graph["pkg.a"] == {"pkg.b": 1}
    assert graph["pkg.b"] == {"pkg.a": 2}
    assert graph["pkg.c"] == {"pkg.sub.low": 1}  # a submodule, not the package's __init__
    assert graph["pkg.d"] == {"pkg.sub": 3}  # a name the package defines
    assert find_cycles(graph) == [["pkg.a", "pkg.b"]]
    assert "pkg.a -> pkg.b (line 1)" in _describe(graph, ["pkg.a", "pkg.b"])


def test_only_the_demo_imports_the_local_servers() -> None:
    users: dict[str, list[int]] = {}
    for name, (path, is_package) in _modules(PACKAGE_DIR, PACKAGE).items():
        if name == TESTING or name.startswith(TESTING + "."):
            continue
        imports = _imports(name, path, is_package)
        lines = [
            line
            for module, names, line in imports
            if module == TESTING or module.startswith(TESTING + ".") or (module == PACKAGE and "testing" in names)
        ]
        if lines:
            users[name] = sorted(set(lines))
    outside = {name: lines for name, lines in users.items() if not name.startswith(ALLOWED_OUTSIDE)}
    assert not outside, f"runtime modules import {TESTING}: {outside}"
    assert "flask_difylogstore.demo" in users  # the demo does start the local servers


def test_the_cli_group_registers_the_migration_commands_which_never_import_it() -> None:
    # Click's explicit registration (https://click.palletsprojects.com/en/stable/commands/, Group.add_command).
    graph = import_graph(PACKAGE_DIR, PACKAGE)
    cli_layer = {name for name in graph if name == f"{PACKAGE}.cli" or name.startswith(f"{PACKAGE}.cli_")}
    assert {f"{PACKAGE}.cli_migration", f"{PACKAGE}.cli_support"} <= cli_layer
    assert f"{PACKAGE}.cli_migration" in graph[f"{PACKAGE}.cli"]
    assert f"{PACKAGE}.migration.commands" not in graph

    migration = {
        name: found
        for name, found in _modules(PACKAGE_DIR, PACKAGE).items()
        if name == f"{PACKAGE}.migration" or name.startswith(f"{PACKAGE}.migration.")
    }
    assert f"{PACKAGE}.migration.run" in migration
    upward = {name: sorted(set(graph[name]) & cli_layer) for name in migration if set(graph[name]) & cli_layer}
    assert not upward, f"migration modules import the CLI layer: {upward}"
    click_users = {
        name: lines
        for name, (path, is_package) in migration.items()
        if (
            lines := [
                line
                for module, _names, line in _imports(name, path, is_package)
                if module in ("click", "flask.cli") or module.startswith("click.")
            ]
        )
    }
    assert not click_users, f"migration modules import click: {click_users}"

    from flask_difylogstore import cli_migration
    from flask_difylogstore.cli import logstore_group

    assert [command.name for command in cli_migration.COMMANDS] == ["migrate", "verify", "cleanup-pg"]
    for command in cli_migration.COMMANDS:
        assert logstore_group.commands[command.name or ""] is command
