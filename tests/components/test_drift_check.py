"""DriftCheck's logic: which span is the baseline, and TFDV's drift findings between spans."""

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from components.drift_check import drift


def _stats(frame):
    return tfdv.generate_statistics_from_dataframe(frame)


def _frame(seed, fare_scale=1.0, cash_share=0.3, rows=2000):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "fare": rng.gamma(2.0, 6.0 * fare_scale, rows),
            "payment_type": rng.choice(["Cash", "Credit Card"], rows, p=[cash_share, 1 - cash_share]),
            "trip_start_hour": rng.integers(0, 24, rows),
        }
    )


@pytest.fixture(scope="module")
def schema():
    return tfdv.infer_schema(_stats(_frame(0)))


def _checked(schema):
    return drift.with_comparators(schema, ["fare", "payment_type", "trip_start_hour"], 0.1, 0.1)


def test_comparators_by_feature_type(schema):
    features = {f.name: f for f in _checked(schema).feature}
    assert features["payment_type"].drift_comparator.infinity_norm.threshold == 0.1
    assert features["fare"].drift_comparator.jensen_shannon_divergence.threshold == 0.1
    assert features["trip_start_hour"].drift_comparator.jensen_shannon_divergence.threshold == 0.1
    assert not schema.feature[0].HasField("drift_comparator")  # the schema given is left alone


def test_similar_spans_do_not_drift(schema):
    assert not drift.compare(_stats(_frame(2)), _stats(_frame(1)), _checked(schema)).anomaly_info


def test_a_shifted_numeric_and_a_shifted_category_drift(schema):
    found = drift.compare(_stats(_frame(2, fare_scale=3.0, cash_share=0.8)), _stats(_frame(1)), _checked(schema))
    assert set(found.anomaly_info) == {"fare", "payment_type"}
    fare = found.anomaly_info["fare"].reason[0].description
    assert "Jensen-Shannon divergence" in fare and "above the threshold 0.1" in fare
    assert "Linfty distance" in found.anomaly_info["payment_type"].reason[0].description


def test_only_checked_features_are_compared(schema):
    only_hour = drift.with_comparators(schema, ["trip_start_hour"], 0.1, 0.1)
    assert not drift.compare(_stats(_frame(2, fare_scale=3.0)), _stats(_frame(1)), only_hour).anomaly_info


def test_baseline_is_the_newest_accepted_earlier_span(tmp_path):
    history = str(tmp_path / "history")
    assert drift.baseline_span(history, 5) is None
    source = tmp_path / "stats.pb"
    source.write_bytes(_stats(_frame(1)).SerializeToString())
    for span in (1, 3, 7):
        drift.record(history, span, str(source))
    (tmp_path / "history" / "span-4").mkdir()  # no statistics in it: not an accepted span
    assert drift.accepted_spans(history) == [1, 3, 7]
    assert drift.baseline_span(history, 5) == 3
    assert drift.baseline_span(history, 7) == 3  # a re-run of span 7 compares with span 3
    assert drift.baseline_span(history, 1) is None
    assert tfdv.load_stats_binary(drift.stats_path(history, 3)) == _stats(_frame(1))
    assert not list((tmp_path / "history" / "span-3").glob("*.partial"))


def _examples(frame):
    import tensorflow as tf

    examples = []
    for row in frame.itertuples(index=False):
        example = tf.train.Example()
        example.features.feature["fare"].float_list.value.append(row.fare)
        example.features.feature["payment_type"].bytes_list.value.append(row.payment_type.encode())
        example.features.feature["trip_start_hour"].int64_list.value.append(int(row.trip_start_hour))
        examples.append(example.SerializeToString())
    return examples


def test_skew_between_training_and_logged_requests(schema):
    checked = drift.with_skew_comparators(schema, ["fare", "payment_type", "trip_start_hour"], 0.1, 0.1)
    features = {f.name: f for f in checked.feature}
    assert features["payment_type"].skew_comparator.infinity_norm.threshold == 0.1
    assert not features["payment_type"].HasField("drift_comparator")
    training = _stats(_frame(1))
    similar = drift.statistics_of_examples(_examples(_frame(2, rows=500)))
    assert similar.datasets[0].num_examples == 500
    assert not drift.compare_skew(training, similar, checked).anomaly_info
    skewed = drift.statistics_of_examples(_examples(_frame(2, fare_scale=3.0, cash_share=0.9, rows=500)))
    found = drift.compare_skew(training, skewed, checked)
    assert set(found.anomaly_info) == {"fare", "payment_type"}
    assert "Jensen-Shannon divergence between training and serving" in found.anomaly_info["fare"].reason[0].description
    assert found.anomaly_info["payment_type"].short_description == "Skew between training and serving"
