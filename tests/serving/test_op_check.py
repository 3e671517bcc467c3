"""The op check: a SavedModel's op types, read from saved_model.pb, against a TensorFlow's registry.

The unit tests run under the runtime's TensorFlow. The last test runs the check under the
TensorFlow of the TF Serving image (scripts/serving-tf-env.sh), on a model the runtime exported.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

from components.serving_check import op_check
from tests.serving.side_env import side_env

MADE_UP_OP = "TfxpOpNoTensorFlowHas"


def _export(path: pathlib.Path) -> pathlib.Path:
    """A tf.Module whose serving function uses Cumsum, an op that only its function body holds."""
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.scale = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def serve(self, x):
            return {"y": tf.math.cumsum(x, axis=1) * self.scale}

    module = Tiny()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def _serve_graph(path: pathlib.Path):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    (meta_graph,) = [m for m in saved_model.meta_graphs if "serve" in m.meta_info_def.tags]
    return saved_model, meta_graph.graph_def


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("ops") / "tiny")


def test_op_types_covers_graph_and_function_library(tiny_model):
    _, graph_def = _serve_graph(tiny_model)
    graph_ops = {node.op for node in graph_def.node}
    function_names = {f.signature.name for f in graph_def.library.function}
    library_ops = {node.op for f in graph_def.library.function for node in f.node_def} - function_names
    assert "Cumsum" in library_ops and "Cumsum" not in graph_ops  # the model exercises the library
    graph_only = graph_ops - library_ops - function_names
    assert graph_only, "the serve graph has no op of its own to look for"

    found = op_check.op_types(str(tiny_model))

    assert "Cumsum" in found
    assert graph_only <= found
    assert found == (graph_ops | library_ops) - function_names
    assert not found & function_names  # calls of library functions are not registry ops
    assert op_check.unregistered(found) == []


def test_made_up_op_is_flagged_and_the_cli_fails_naming_it(tiny_model, tmp_path, capsys):
    import shutil

    edited = tmp_path / "edited"
    shutil.copytree(tiny_model, edited)
    saved_model, graph_def = _serve_graph(edited)
    cumsum = [node for f in graph_def.library.function for node in f.node_def if node.op == "Cumsum"]
    assert cumsum
    cumsum[0].op = MADE_UP_OP
    (edited / "saved_model.pb").write_bytes(saved_model.SerializeToString())

    found = op_check.op_types(str(edited))
    assert MADE_UP_OP in found
    assert op_check.unregistered(found) == [MADE_UP_OP]
    assert op_check.unregistered({MADE_UP_OP, "MatMul", "Cumsum"}) == [MADE_UP_OP]

    assert op_check.main([str(tiny_model), str(edited)]) == 1
    out = capsys.readouterr().out.splitlines()
    version = op_check.tensorflow_version()
    count = len(op_check.op_types(str(tiny_model)))
    assert out == [
        f"OK {tiny_model}: all {count} op types are registered in TensorFlow {version}",
        f"{edited}: op {MADE_UP_OP} is not registered in TensorFlow {version}",
    ]


def test_cli_refuses_a_directory_without_a_saved_model(tmp_path, capsys):
    assert op_check.main([str(tmp_path)]) == 2
    assert "no saved_model.pb" in capsys.readouterr().err


def test_runtime_export_passes_under_the_serving_image_tensorflow(tiny_model):
    import tensorflow as tf

    serving_tf = side_env("--print-version").stdout.strip()
    result = side_env("python", "-m", "components.serving_check.op_check", str(tiny_model))
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(op_check.op_types(str(tiny_model)))
    assert result.stdout.strip() == f"OK {tiny_model}: all {count} op types are registered in TensorFlow {serving_tf}"
    # The TensorFlow that answered is the side environment's own, not the runtime's.
    probe = side_env("python", "-c", "import sys, tensorflow as tf; print(tf.__version__, sys.prefix, tf.__file__)")
    version, prefix, tf_file = probe.stdout.split()
    assert version == serving_tf
    assert prefix != sys.prefix and tf_file.startswith(prefix), (prefix, tf_file, tf.__version__)
