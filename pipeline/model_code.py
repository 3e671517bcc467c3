"""The model code's hash: the model package's source and the project modules it imports, which
the factory passes to Transform, Tuner and Trainer so that a change to them is a cache miss."""

from __future__ import annotations

import hashlib
import os

# The packages of this project: the model code's imports inside them are part of its hash.
PROJECT_PACKAGES = ("contracts", "models", "pipeline", "components", "serving")


def _imported_modules(path: str, package: str) -> set[str]:
    """The modules a source file imports (absolute names), read with ast, not by importing it."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(open(path, "rb").read(), path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            found.add(f"{base}.{node.module}" if node.module else base)
    return found


def _source_file(module: str) -> str | None:
    """The .py file of a dotted module name, found without importing anything: the import
    system's find_spec imports a submodule's parents, and a project module that imports
    TensorFlow at its top would then cost seconds in `tfxp run`'s check that nothing changed.
    Each part is looked up by the path finder in its parent's directories instead. None for a
    name inside a module (`from package.module import name`) or outside Python."""
    import importlib.machinery
    import importlib.util

    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level name is looked up, not imported
    name = top
    for part in rest:
        if spec is None or spec.submodule_search_locations is None:
            return None  # not a package: `part` is a name inside a module
        name = f"{name}.{part}"
        spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
    return spec.origin if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def model_code_sources(package: str = "models", modules: tuple[str, ...] = ()) -> list[str]:
    """The source files of `package` and `modules`, and of every module of this project (or of
    `package`) that they import, directly or not. Nothing is imported to find them."""
    roots = {*PROJECT_PACKAGES, package.split(".")[0]}
    directory = os.path.dirname(_source_file(package) or "")
    pending = [os.path.join(directory, name) for name in sorted(os.listdir(directory)) if name.endswith(".py")]
    pending += [path for path in map(_source_file, modules) if path]
    seen: set[str] = set()
    while pending:
        path = os.path.realpath(pending.pop())
        if path in seen:
            continue
        seen.add(path)
        name = os.path.splitext(os.path.basename(path))[0]
        package_of = os.path.basename(os.path.dirname(path)) if name != "__init__" else name
        for module in _imported_modules(path, package_of):
            if module.split(".")[0] in roots:
                found = _source_file(module)
                if found:
                    pending.append(found)
    return sorted(seen)


def model_code_version(package: str = "models", modules: tuple[str, ...] = ()) -> str:
    """A hash of the model code: the model package's source and the project modules it imports
    (the feature specs in models/spec.py, contracts/serving_dir.py, ...).

    The Transform, Tuner and Trainer functions are referenced by dotted path, which TFX does
    not fingerprint (it does for a `module_file`). Passing this hash in their custom_config
    makes a change to the model code, or to what it imports, a cache miss instead of a stale model.
    """
    digest = hashlib.sha256()
    sources = model_code_sources(package, modules)
    common = os.path.commonpath([*sources, os.path.dirname(__file__)])
    for source in sources:
        with open(source, "rb") as f:
            digest.update(os.path.relpath(source, common).encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()[:16]
