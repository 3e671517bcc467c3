"""The arrows between packages point one way (README, Project layout).

contracts/ (the pushed model's and the serving directory's contracts) imports no other project
package; models/ imports none above it (components/, serving/, pipeline/, ops/); models/ and
components/ are the pipeline's code: they never import the CLI, serving/ or ops/.
The pipeline's factory and runners (pipeline/, the CLI aside) never import ops/, which reads
what they record. Read from the source, so a function-level import counts as much as one at the top.
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


def _offending(package: str, forbidden: tuple[str, ...], exempt: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in sorted((PROJECT / package).rglob("*.py")):
        if str(path.relative_to(PROJECT)) in exempt:
            continue
        for name in sorted(_imports(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(PROJECT)} imports {name}")
    return found


@pytest.mark.parametrize("package", ["models", "components"])
def test_the_pipelines_code_imports_neither_the_cli_nor_serving_nor_ops(package):
    assert _offending(package, ("pipeline.cli", "serving", "ops")) == []


def test_the_contracts_import_no_other_project_package():
    assert _offending("contracts", ("models", "components", "serving", "pipeline", "ops", "tfxp", "benchmarks")) == []


def test_the_model_code_imports_no_package_above_it():
    assert _offending("models", ("components", "serving", "pipeline", "ops", "tfxp", "benchmarks")) == []


def test_the_factory_and_runners_do_not_import_ops():
    assert _offending("pipeline", ("ops",), exempt=("pipeline/cli.py",)) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from serving.client import RestClient\n    import ops.runs\n")
    assert {"serving.client", "serving.client.RestClient", "ops.runs"} <= _imports(source)
