"""Which op types a SavedModel uses, and which of them the running TensorFlow does not know.

TF Serving imports the `serve` MetaGraphDef with its own TensorFlow, and an op type that
TensorFlow has no registration for fails the load ("Op type not registered"). A training stack
newer than the server can export such ops. This module reads saved_model.pb with the protos
only (nothing is loaded or traced), lists the op types of the graph and of every function in
its library, and asks the op registry of the TensorFlow it runs under. Run it under the
TensorFlow of the serving image (scripts/serving-tf-env.sh) to check a model against that
server:

    python -m components.serving_check.op_check SAVED_MODEL_DIR [SAVED_MODEL_DIR ...]

Plain TensorFlow only (no TFX), and nothing newer than what older TensorFlow releases offer.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, Sequence

from contracts.saved_model import SAVED_MODEL_PB, SAVED_MODEL_PBTXT, SERVE_TAG


class SavedModelError(ValueError):
    """The directory holds no readable SavedModel with a `serve` MetaGraphDef."""


def _read_saved_model(saved_model_dir: str):
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    binary = os.path.join(saved_model_dir, SAVED_MODEL_PB)
    text = os.path.join(saved_model_dir, SAVED_MODEL_PBTXT)
    if os.path.exists(binary):
        with open(binary, "rb") as f:
            saved_model.ParseFromString(f.read())
    elif os.path.exists(text):
        with open(text) as f:
            text_format.Parse(f.read(), saved_model)
    else:
        raise SavedModelError(f"{saved_model_dir}: no saved_model.pb or saved_model.pbtxt")
    return saved_model


def _serve_meta_graph(saved_model_dir: str):
    saved_model = _read_saved_model(saved_model_dir)
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph
    tags = [list(m.meta_info_def.tags) for m in saved_model.meta_graphs]
    raise SavedModelError(f"{saved_model_dir}: no MetaGraphDef tagged {SERVE_TAG!r} (tag sets: {tags})")


def op_types(saved_model_dir: str) -> set[str]:
    """Every op type in the `serve` graph and in the functions of its library.

    A node whose op names a function of the library is a call of that function, resolved from
    the library rather than the op registry, so function names are left out.
    """
    graph_def = _serve_meta_graph(saved_model_dir).graph_def
    functions = {function.signature.name for function in graph_def.library.function}
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return ops - functions


def unregistered(op_types: Iterable[str]) -> list[str]:
    """The op types, sorted, that the running TensorFlow has no registration for."""
    # TensorFlow has no public API for the op registry: tf.raw_ops lists only the ops that
    # have generated Python wrappers (hidden and library-loaded ops are missing), so the
    # registry lookup that graph import itself uses is the one that answers exactly.
    from tensorflow.python.framework import op_def_registry

    return sorted(op for op in set(op_types) if op_def_registry.get(op) is None)


def tensorflow_version() -> str:
    import tensorflow as tf

    return tf.__version__


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or any(arg in ("-h", "--help") for arg in args):
        print(__doc__.strip(), file=sys.stderr if not args else sys.stdout)
        return 2 if not args else 0
    version = tensorflow_version()
    missing_any = False
    for saved_model_dir in args:
        try:
            ops = op_types(saved_model_dir)
        except (SavedModelError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        missing = unregistered(ops)
        for op in missing:
            print(f"{saved_model_dir}: op {op} is not registered in TensorFlow {version}")
        if missing:
            missing_any = True
        else:
            print(f"OK {saved_model_dir}: all {len(ops)} op types are registered in TensorFlow {version}")
    return 1 if missing_any else 0


if __name__ == "__main__":
    sys.exit(main())
