"""Drift between spans, as plain functions over TFDV protos and a directory of accepted spans.

Each accepted span's train statistics are kept in `<history>/span-<N>/FeatureStats.pb`
(AnomaliesGate writes them when a span passes). A new span is compared with the newest
accepted span before it, feature by feature, with TFDV's drift comparators: L-infinity
distance for string features, approximate Jensen-Shannon divergence (on quantile histograms)
for numbers. TFX's
DistributionValidator is not used: it infers its own schema from the baseline statistics,
where integer-coded categories are plain integers, so it cannot apply L-infinity to them and
reports "comparison could not be done" instead.

Training-serving skew uses the same comparators on the statistics of logged requests
(`components/drift_check/request_log.py`) against the span's train statistics.
"""

from __future__ import annotations

import os
import re
import uuid

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

STATS_FILE = "FeatureStats.pb"
_SPAN_DIR = re.compile(r"^span-(\d+)$")
_DRIFT_TYPES = frozenset(
    [
        anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
        anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
    ]
)


def accepted_spans(history_dir: str) -> list[int]:
    """The spans whose statistics were accepted, oldest first."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(history_dir):
        return []
    spans = []
    for name in tf.io.gfile.listdir(history_dir):
        match = _SPAN_DIR.match(name.rstrip("/"))
        if match and tf.io.gfile.exists(os.path.join(history_dir, name.rstrip("/"), STATS_FILE)):
            spans.append(int(match[1]))
    return sorted(spans)


def baseline_span(history_dir: str, span: int) -> int | None:
    """The newest accepted span before `span`, or None (the first span has nothing to drift from)."""
    earlier = [s for s in accepted_spans(history_dir) if s < span]
    return earlier[-1] if earlier else None


def stats_path(history_dir: str, span: int) -> str:
    return os.path.join(history_dir, f"span-{span}", STATS_FILE)


def record(history_dir: str, span: int, statistics_file: str) -> str:
    """Keeps `statistics_file` as span `span`'s accepted statistics; the copy appears whole or not at all."""
    import tensorflow as tf

    target = stats_path(history_dir, span)
    tf.io.gfile.makedirs(os.path.dirname(target))
    partial = f"{target}.{uuid.uuid4().hex}.partial"
    tf.io.gfile.copy(statistics_file, partial, overwrite=True)
    tf.io.gfile.rename(partial, target, overwrite=True)
    return target


def with_comparators(
    schema: schema_pb2.Schema, features: list[str], categorical_threshold: float, numeric_threshold: float
) -> schema_pb2.Schema:
    """A copy of `schema` with a drift comparator on each of `features` that it knows."""
    checked = schema_pb2.Schema()
    checked.CopyFrom(schema)
    wanted = set(features)
    for feature in checked.feature:
        if feature.name not in wanted:
            continue
        if feature.type == schema_pb2.BYTES or feature.int_domain.is_categorical:
            feature.drift_comparator.infinity_norm.threshold = categorical_threshold
        else:
            divergence = feature.drift_comparator.jensen_shannon_divergence
            divergence.threshold = numeric_threshold
            # Quantile histograms: equal-mass buckets keep a few outliers from moving every
            # bucket, which makes the standard (equal-width) histograms of two samples of the
            # same data look far apart (JS ~0.7 for trip_miles on halves of the taxi sample).
            divergence.source.type = schema_pb2.HistogramSelection.QUANTILES
    return checked


def _comparisons_only(
    found: anomalies_pb2.Anomalies, schema: schema_pb2.Schema, short_description: str
) -> anomalies_pb2.Anomalies:
    """The comparator findings of a TFDV validation, each under `short_description`, with
    TFDV's distance for every compared feature (drift_skew_info), crossed or not."""
    kept_only = anomalies_pb2.Anomalies()
    kept_only.baseline.CopyFrom(schema)
    kept_only.drift_skew_info.extend(found.drift_skew_info)
    for name, info in found.anomaly_info.items():
        reasons = [r for r in info.reason if r.type in _DRIFT_TYPES]
        if reasons:
            kept = kept_only.anomaly_info[name]
            kept.short_description = short_description
            kept.severity = info.severity
            kept.reason.extend(reasons)
    return kept_only


def compare(
    current: statistics_pb2.DatasetFeatureStatisticsList,
    previous: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
) -> anomalies_pb2.Anomalies:
    """TFDV's validation of `current` against `previous`, keeping only the drift findings."""
    import tensorflow_data_validation as tfdv

    return _comparisons_only(
        tfdv.validate_statistics(current, schema, previous_statistics=previous), schema, "Drift from the previous span"
    )


def with_skew_comparators(
    schema: schema_pb2.Schema, features: list[str], categorical_threshold: float, numeric_threshold: float
) -> schema_pb2.Schema:
    """A copy of `schema` with a skew comparator on each of `features` that it knows."""
    checked = with_comparators(schema, features, categorical_threshold, numeric_threshold)
    for feature in checked.feature:
        if feature.HasField("drift_comparator"):
            feature.skew_comparator.CopyFrom(feature.drift_comparator)
            feature.ClearField("drift_comparator")
    return checked


def statistics_of_examples(examples: list[bytes]) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics of serialized tf.Examples, in memory (no Beam)."""
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.coders import example_coder

    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(examples)
    return stats_impl.generate_statistics_in_memory(batch)


def compare_skew(
    training: statistics_pb2.DatasetFeatureStatisticsList,
    serving: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
) -> anomalies_pb2.Anomalies:
    """TFDV's skew findings between training and serving statistics (nothing else)."""
    import tensorflow_data_validation as tfdv

    return _comparisons_only(
        tfdv.validate_statistics(training, schema, serving_statistics=serving),
        schema,
        "Skew between training and serving",
    )
