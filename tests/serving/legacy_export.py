"""The export the project used before Keras' ExportArchive, kept to prove the checks catch it.

`tf.saved_model.save` on a Keras 3 model checkpoints copies of its variables while the
signatures read the originals (keras-team/keras#20095): `tf.saved_model.load` runs it, TF
Serving's session loader fails every signature that reads a Keras variable.
`run_fn` is the project's Trainer entry point with this export, for `trainer.run_fn` (with
`trainer.model: dnn`: the failure is the Keras model's).
"""

from __future__ import annotations

from unittest import mock


def legacy_export(model, spec, tf_transform_output, export_dir: str, warm_started_from=None, choice=None) -> None:
    import tensorflow as tf

    from models import model as model_lib

    model.tft_layer = tf_transform_output.transform_features_layer()
    functions = model_lib._serving_functions(model, spec, tf_transform_output, model.tft_layer)
    tf.saved_model.save(
        model, export_dir, signatures={name: function.get_concrete_function() for name, function in functions.items()}
    )
    model_lib.mark_classification_signature(export_dir)


def run_fn(fn_args) -> None:
    from models import model as model_lib

    with mock.patch.object(model_lib, "export", legacy_export):
        model_lib.run_fn(fn_args)
