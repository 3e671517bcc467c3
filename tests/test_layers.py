"""The arrows between packages point one way: docs/layers.md's table, checked against the source.

Each package imports only the floors below it. The order is read from docs/layers.md (FLOORS in
tests/conftest.py), so the table people read and the rule the tests hold are one. Imports are
read from the source with `ast`, so a function-level import counts as much as one at the top.
"""

import ast
import pathlib
import sys

import pytest

from tests.conftest import FLOORS

PROJECT = pathlib.Path(__file__).resolve().parents[1]


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((PROJECT / package).rglob("*.py")):
        for name in sorted(_imports(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(PROJECT)} imports {name}")
    return found


def test_the_table_names_every_package_of_the_project_once():
    packages = sorted(p.parent.name for p in PROJECT.glob("*/__init__.py") if p.parent.name != "tests")
    assert sorted(FLOORS) == packages and len(set(FLOORS)) == len(FLOORS)


@pytest.mark.parametrize("package", FLOORS)
def test_no_package_imports_a_floor_above_it(package):
    above = tuple(FLOORS[FLOORS.index(package) + 1 :])
    assert _offending(package, above) == []


def test_the_contracts_import_nothing_of_the_project_and_no_tensorflow_at_import():
    assert _offending("contracts", tuple(f for f in FLOORS if f != "contracts")) == []
    for path in sorted((PROJECT / "contracts").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        top = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        top |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
        assert not {name for name in top if name.split(".")[0] == "tensorflow"}, path


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from serving.client import RestClient\n    import ops.runs\n")
    assert {"serving.client", "serving.client.RestClient", "ops.runs"} <= _imports(source)


def test_an_upward_import_is_found(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.py").write_text("from components.serving_check import check\n")
    monkeypatch.setattr(sys.modules[__name__], "PROJECT", tmp_path)
    assert _offending("models", ("components",)) == [
        "models/m.py imports components.serving_check",
        "models/m.py imports components.serving_check.check",
    ]
