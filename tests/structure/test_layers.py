"""The package's layers hold: each module imports only the layers below it, and nothing imports in a circle.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are checked by import-linter
(https://import-linter.readthedocs.io/en/stable/contract_types.html), which counts imports inside
functions and under ``if TYPE_CHECKING:`` like any other. ``lint-imports`` runs the same check from a
shell. The layers are drawn in docs/architecture.md.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

import flask_difylogstore
from tests.structure.test_import_graph import _describe, find_cycles, import_graph

PACKAGE_DIR = Path(flask_difylogstore.__file__).parent
PYPROJECT = PACKAGE_DIR.parent / "pyproject.toml"


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _layer_names(entry: str) -> list[str]:
    return [name.strip().strip("()") for name in entry.replace(":", "|").split("|")]


def test_the_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    status = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert status == 0, report
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in report


def test_every_top_level_module_sits_in_exactly_one_layer() -> None:
    """A new module cannot slip past the layers contract by not being listed."""
    listed = [name for entry in _layers() for name in _layer_names(entry)]
    assert len(listed) == len(set(listed)), "a module is listed in two layers"
    present = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE_DIR.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    assert present - set(listed) == set(), "modules in no layer"
    assert set(listed) - present == set(), "layers naming no module"


def _layers() -> list[str]:
    layers = _contracts()["layers"]["layers"]
    assert isinstance(layers, list)
    return [str(entry) for entry in layers]


def test_no_module_imports_its_own_package_back() -> None:
    """Cycles through a package's ``__init__`` (which sibling contracts do not see) are circles too."""
    graph = import_graph(PACKAGE_DIR, flask_difylogstore.__name__)
    cycles = find_cycles(graph)
    assert not cycles, "\n".join(_describe(graph, group) for group in cycles)


@pytest.mark.parametrize(
    "low_module",
    [
        "def later():\n    from pkg import high\n",
        "import typing\nif typing.TYPE_CHECKING:\n    from pkg.high import THING\n",
        "from . import high\n",
    ],
    ids=["inside a function", "under TYPE_CHECKING", "relative"],
)
def test_an_upward_import_breaks_the_contract_however_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], low_module: str
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "high.py").write_text("from pkg import low\nTHING = 1\n")
    (package / "low.py").write_text(low_module)
    config = tmp_path / "pyproject.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "pkg"\n\n'
        '[[tool.importlinter.contracts]]\nname = "layers"\ntype = "layers"\n'
        'containers = ["pkg"]\nlayers = ["high", "low"]\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert lint_imports(config_filename=str(config), no_cache=True, no_logo=True) == 1
    assert "pkg.low -> pkg.high" in capsys.readouterr().out
