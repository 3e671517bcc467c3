"""The arrows between packages point one way (README, Project layout).

models/ and components/ are the pipeline's code: they never import the CLI, serving/ or ops/.
The pipeline's factory and runners (pipeline/) never import ops/, which reads what they record.
Nothing below the CLI (tfxp/) imports it. Read from the source, so a function-level import
counts as much as one at the top.
"""

import ast
import pathlib

import pytest

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


@pytest.mark.parametrize("package", ["models", "components"])
def test_the_pipelines_code_imports_neither_the_cli_nor_serving_nor_ops(package):
    assert _offending(package, ("tfxp", "serving", "ops")) == []


def test_the_factory_and_runners_do_not_import_ops():
    assert _offending("pipeline", ("ops",)) == []


@pytest.mark.parametrize("package", ["contracts", "models", "components", "serving", "pipeline", "ops"])
def test_nothing_below_the_cli_imports_it(package):
    assert _offending(package, ("tfxp",)) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from serving.client import RestClient\n    import ops.runs\n")
    assert {"serving.client", "serving.client.RestClient", "ops.runs"} <= _imports(source)
