"""The Transform step's preprocessing_fn, driven entirely by the feature definitions.

The label follows label.task: binary gives 0/1; multiclass gives the class's index among
label.classes, or in a vocabulary of the train split's classes (-1: none of them);
regression gives the z-scored target (of log(1 + y) with label.log_transform).
"""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from models import derived, model_inputs
from models.spec import VOCABULARY_CAP, FeatureType, Task, Vocabulary

# Missing values of a categorical integer column get a value of their own in the vocabulary.
_TYPE_DEFAULTS = {
    FeatureType.NUMERIC: 0,
    FeatureType.BUCKETIZED: 0,
    FeatureType.CATEGORICAL: -1,
    FeatureType.TIMESTAMP: 0,
}  # (a timestamp's missing values get missing ids instead)


def _fill_value(feature, dtype: tf.DType) -> Any:
    """What replaces a missing value: the configured default, else the type's, in the column's dtype."""
    default = feature.default if feature.default is not None else _TYPE_DEFAULTS[feature.type]
    if dtype == tf.string:
        return "" if feature.default is None else str(feature.default)
    if not isinstance(default, (int, float)):
        default = _TYPE_DEFAULTS[feature.type]
    return int(default) if dtype.is_integer else float(default)


def dense(x: tf.Tensor | tf.SparseTensor | tf.RaggedTensor, default: Any) -> tf.Tensor:
    """A rank-1 tensor with one value per example; missing values become `default`.

    Columns that are absent from some rows arrive as SparseTensor (or RaggedTensor) with
    dense shape [batch, 1]; complete columns as dense [batch, 1] or [batch].
    """
    if isinstance(x, tf.RaggedTensor):
        x = x.to_sparse()
    if isinstance(x, tf.SparseTensor):
        default = tf.constant(default, dtype=x.dtype)
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default)
    return tf.reshape(x, [-1])


def as_float(x: tf.Tensor) -> tf.Tensor:
    if x.dtype == tf.string:
        return tf.strings.to_number(x, tf.float32)
    return tf.cast(x, tf.float32)


def z_score(x: tf.Tensor) -> tf.Tensor:
    """tf.Transform's z-score, fitted in float64 and given back as float32."""
    return _z_score_known(x, None)


def log1p(x: tf.Tensor) -> tf.Tensor:
    """log(1 + x) in float64. TensorFlow's float32 log1p gives some values a last bit that depends
    on where they sit in the batch (vectorised and scalar paths differ), and Beam's batches change
    from run to run; float64's last bits differ too, far below what z_score's float32 keeps."""
    return tf.math.log1p(tf.cast(x, tf.float64))


def _fitted(value: tf.Tensor) -> tf.Tensor:
    """An analyzer's float64 result rounded to float32's precision. The mean and the variance
    are sums over batches that Beam and TensorFlow add up in an order that changes from run to
    run (random fan-out keys in Beam's combine, threads), so their last float64 bits differ
    between two runs on the same examples (more in the variance, a difference of sums), and
    those bits flipped the float32 rounding of some scaled values; rounded, the two runs' constants
    are the same bits, barring a sum that lands within those bits of a rounding boundary."""
    return tf.cast(tf.cast(value, tf.float32), tf.float64)


def _z_score_known(x: tf.Tensor, known: tf.Tensor | None) -> tf.Tensor:
    """(x - mean) / standard deviation, fitted in float64 on the `known` values (all when None)
    with the constants rounded (_fitted), given back as float32; 0 (the mean) where not known;
    x - mean for a constant column, as tft.scale_to_z_score."""
    x = tf.cast(x, tf.float64)
    values = x if known is None else tf.boolean_mask(x, known)
    mean, variance = _fitted(tft.mean(values)), _fitted(tft.var(values))
    std = tf.where(variance > 0, tf.sqrt(variance), tf.ones_like(variance))
    scaled = (x - mean) / std
    return tf.cast(scaled if known is None else tf.where(known, scaled, tf.zeros_like(x)), tf.float32)


def _as_string(x: tf.Tensor) -> tf.Tensor:
    return x if x.dtype == tf.string else tf.strings.as_string(x)


def _label(inputs: Mapping[str, Any], spec: model_inputs.ModelSpec) -> tf.Tensor:
    label = spec.label
    column = dense(inputs[label.column], "" if inputs[label.column].dtype == tf.string else 0)
    if label.task is Task.MULTICLASS:
        return _class_index(inputs[label.column], column, label)
    if label.task is Task.REGRESSION:
        target = as_float(column)
        return z_score(log1p(target) if label.log_transform else target)
    if label.greater_than_fraction_of:
        reference = as_float(dense(inputs[label.greater_than_fraction_of], 0))
        positive = as_float(column) > label.fraction * reference
    elif label.positive_values:
        positive = tf.reduce_any(
            tf.equal(_as_string(column)[:, None], tf.constant(label.positive_values)[None, :]), axis=1
        )
    else:
        positive = as_float(column) > 0.5
    return tf.cast(positive, tf.int64)


def _class_index(raw: Any, column: tf.Tensor, label) -> tf.Tensor:
    """Each row's class index; -1 for a class the model does not know (or a missing label).

    Without label.classes the classes are tf.Transform's vocabulary of the values present in
    the train split (most frequent first), so a missing label is no class of its own.
    """
    values = _as_string(column)
    if label.classes:
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(label.classes)), tf.range(len(label.classes), dtype=tf.int64)
            ),
            default_value=-1,
        )
        return table.lookup(values)
    if isinstance(raw, tf.RaggedTensor):
        present = raw.flat_values
    elif isinstance(raw, tf.SparseTensor):
        present = raw.values
    else:
        present = tf.reshape(raw, [-1])
    vocabulary = tft.vocabulary(_as_string(present), vocab_filename=model_inputs.LABEL_VOCABULARY)
    return tft.apply_vocabulary(values, vocabulary, default_value=-1)


def _vocabulary(value: tf.Tensor, name: str, feature) -> tf.Tensor:
    """Maps values to vocabulary ids, with OOV buckets.

    The approximate analyzer (Misra-Gries, one combiner packed with the other analyzers) gives
    the exact vocabulary whenever the column has at most `top_k` distinct values, and costs a
    fraction of the exact one, which adds a Beam sub-pipeline of its own per feature.
    """
    if feature.vocabulary is Vocabulary.EXACT:
        return tft.compute_and_apply_vocabulary(
            value, top_k=feature.top_k, num_oov_buckets=feature.num_oov_buckets, vocab_filename=name
        )
    return tft.experimental.compute_and_apply_approximate_vocabulary(
        value, top_k=feature.top_k or VOCABULARY_CAP, num_oov_buckets=feature.num_oov_buckets, vocab_filename=name
    )


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any]) -> dict:
    """Scales numbers, bucketizes, applies vocabularies, splits timestamps into their parts,
    hashes crosses and derives the label.

    `custom_config` is `PipelineConfig.model_code_config()`; it says which column gets which
    treatment, so a new dataset needs a new config, not new code.
    """
    spec = model_inputs.from_custom_config(custom_config)
    outputs = {}
    # What a cross combines, by the name the cross uses: a categorical feature's raw value, a
    # bucketized feature's bucket, a timestamp part's id (NAME.PART).
    crossable = {}
    for name, feature in spec.features.items():
        value = dense(inputs[name], _fill_value(feature, inputs[name].dtype))
        out = model_inputs.transformed_name(name)
        if feature.type is FeatureType.NUMERIC:
            number = as_float(value)
            outputs[out] = z_score(log1p(tf.maximum(number, 0.0)) if feature.log_transform else number)
        elif feature.type is FeatureType.BUCKETIZED:
            outputs[out] = crossable[name] = tft.bucketize(as_float(value), feature.num_buckets)
        elif feature.type is FeatureType.TIMESTAMP:
            seconds, valid, has_time = derived.timestamp_instant(inputs[name], value, feature.format, name)
            for part, ids in derived.parts_of(seconds, valid, has_time).items():
                outputs[model_inputs.transformed_name(model_inputs.timestamp_part_name(name, part))] = ids
                crossable[f"{name}.{part}"] = ids
            days = model_inputs.timestamp_part_name(name, model_inputs.TIMESTAMP_ELAPSED)
            outputs[model_inputs.transformed_name(days)] = _z_score_known(derived.elapsed_days(seconds), valid)
        else:
            crossable[name] = _as_string(value)
            outputs[out] = _vocabulary(crossable[name], name, feature)
    for cross in spec.crosses:
        outputs[model_inputs.transformed_name(cross.name)] = derived.cross(
            [crossable[part] for part in cross.features], cross.hash_buckets
        )
    outputs[spec.label.name] = _label(inputs, spec)
    return outputs
