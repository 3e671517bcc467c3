"""A SavedModel loaded the way TensorFlow Serving's C++ loader loads it, and run the same way.

TF Serving (tensorflow/cc/saved_model/loader.cc, LoadSavedModel) imports the MetaGraphDef
tagged `serve` into a TF1 Session, runs the SaverDef's restore op on `variables/variables`,
runs the init op (`__saved_model_init_op`, or the legacy main op), and then feeds and fetches
the tensors a SignatureDef names. It never rebuilds the Python object graph, so a model whose
signatures read variables that the checkpoint does not restore fails there, and only there.
`tf.compat.v1.saved_model.loader.load` takes the same steps (it is what `saved_model_cli run`
uses); `tf.saved_model.load` does not, which is why nothing here uses it.

Plain TensorFlow only (no TFX), so the same module runs under the TensorFlow version of a
TF Serving image in a side environment.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

from contracts.saved_model import SERVE_TAG


class LoadError(RuntimeError):
    """The SavedModel does not load on TF Serving's path (graph import, restore, init op)."""


class SessionModel:
    """One SavedModel in its own TF1 graph and session.

    `signature_defs` maps each signature key to its SignatureDef proto (internal ones such as
    `__saved_model_init_op` included, as TF Serving lists them). `run` feeds inputs by alias
    and answers outputs by alias, through the tensor names of the SignatureDef.
    """

    def __init__(self, path: str, tags: tuple[str, ...] = (SERVE_TAG,)):
        import tensorflow as tf

        self.path = path
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        self._lock = threading.Lock()
        try:
            with self._graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(self._session, list(tags), path)
        except Exception as err:  # noqa: BLE001 - any failure here is a load failure, as in TF Serving
            self._session.close()
            raise LoadError(f"{path}: {first_line(err)}") from err
        self.meta_graph = meta_graph
        self.signature_defs = dict(meta_graph.signature_def)

    def run(
        self, signature_key: str, feeds: Mapping[str, Any], output_aliases: list[str] | None = None
    ) -> dict[str, Any]:
        """Runs signature `signature_key`: {input alias: array} in, {output alias: ndarray} out.

        Raises KeyError for an unknown signature or alias (callers check those first, with TF
        Serving's messages) and tf.errors.OpError for what the session refuses.
        """
        signature = self.signature_defs[signature_key]
        feed_dict = {signature.inputs[alias].name: value for alias, value in feeds.items()}
        aliases = list(output_aliases) if output_aliases is not None else sorted(signature.outputs)
        fetches = [signature.outputs[alias].name for alias in aliases]
        with self._lock:
            values = self._session.run(fetches, feed_dict=feed_dict)
        return dict(zip(aliases, values))

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "SessionModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def first_line(err: BaseException) -> str:
    """The line of a TensorFlow error that says what is wrong (not "Graph execution error:")."""
    text = getattr(err, "message", None) or str(err) or err.__class__.__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    informative = [
        line
        for line in lines
        if not line.startswith(
            ("Graph execution error", "Detected at node", "<stack traces", "[[", "Traceback", "File ")
        )
    ]
    return (informative or lines or [err.__class__.__name__])[0]
