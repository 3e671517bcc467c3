"""Timestamp parts and feature crosses: the TensorFlow ops on known values, the transform of the
tiny sample under the bundled timestamp config, and a model exported with both that TF Serving's
loading path (a TF1 session, `saved_model_cli run`) answers."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest
import tensorflow as tf

from models import derived, model_inputs
from models import model as model_lib
from models.model_inputs import TIMESTAMP_PART_SIZES, timestamp_part_name, transformed_name
from tests.conftest import INVALID_ISO_TEXTS, to_example

TIMESTAMP_CONFIG = "package://pipeline/configs/taxi_timestamp.yaml"
MISSING = TIMESTAMP_PART_SIZES  # each part's missing id is its size


def _parts(values, fmt=None, raw=None):
    value = tf.constant(values)
    parts = derived.timestamp_parts(value if raw is None else raw, value, fmt, "t")
    return {part: ids.numpy().tolist() for part, ids in parts.items()}


def _expected(moment: dt.datetime) -> tuple[int, int, int]:
    utc = moment.astimezone(dt.timezone.utc)
    return utc.hour, utc.weekday(), utc.month - 1


# ---------------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "text, hour, day_of_week, month",
    [
        ("2019-03-01T14:05:00", 14, 4, 2),  # a Friday in March, no offset: taken as UTC
        ("2019-03-01T14:05:00Z", 14, 4, 2),
        ("2019-03-01 14:05", 14, 4, 2),  # a space, no seconds
        ("2020-02-29T12:00:00", 12, 5, 1),  # a leap day (a Saturday)
        ("2020-02-29T23:30:00-02:00", 1, 6, 2),  # a leap day's evening west of UTC: 1 March UTC
        ("2019-03-01T01:30:00+02:00", 23, 3, 1),  # east of UTC: the previous day, February, in UTC
        ("2019-03-01T01:30:00+0530", 20, 3, 1),
        ("2019-01-01T00:00:00.250+01", 23, 0, 11),  # a fraction, an hours-only offset: 2018-12-31
        ("1969-12-31T23:59:59Z", 23, 2, 11),  # before 1970
        ("  2024-12-31T23:59:60Z ", 0, 2, 0),  # a leap second rolls into the next day
    ],
)
def test_iso_text_gives_utc_hour_day_of_week_and_month(text, hour, day_of_week, month):
    assert _parts([text], "iso") == {"hour": [hour], "day_of_week": [day_of_week], "month": [month]}


def test_a_date_without_a_time_has_day_and_month_but_a_missing_hour():
    assert _parts(["2020-02-29", "2019-12-30", "2012/01/01", "2012/01/31 08:15"], "iso") == {
        "hour": [MISSING["hour"]] * 3 + [8],
        "day_of_week": [5, 0, 6, 1],  # slashes, year first, read as the ISO date (a Sunday, a Tuesday)
        "month": [1, 11, 0, 0],
    }


def test_elapsed_days_are_days_since_1970_with_the_time_as_a_fraction():
    seconds, valid, _ = derived.timestamp_instant(
        *[tf.constant(["1970-01-02T12:00:00Z", "1969-12-31", "x"])] * 2, "iso", "t"
    )
    assert derived.elapsed_days(seconds).numpy().tolist()[:2] == [1.5, -1.0]
    assert valid.numpy().tolist() == [True, True, False]


@pytest.mark.parametrize("text", INVALID_ISO_TEXTS)
def test_text_that_is_not_an_iso_date_gets_every_parts_missing_id(text):
    assert _parts([text], "iso") == {part: [MISSING[part]] for part in MISSING}


def test_epoch_seconds_give_the_utc_parts_python_gives():
    rng = random.Random(7)
    seconds = [0, -1, 951782400, 1582934399, 1400269500, *(rng.randrange(-(2**33), 2**34) for _ in range(500))]
    parts = _parts(tf.constant(seconds, tf.int64))
    for i, second in enumerate(seconds):
        expected = _expected(dt.datetime.fromtimestamp(second, dt.timezone.utc))
        assert (parts["hour"][i], parts["day_of_week"][i], parts["month"][i]) == expected, second


def test_iso_text_of_random_instants_gives_the_parts_python_gives():
    rng = random.Random(11)
    texts, expected = [], []
    for _ in range(300):
        moment = dt.datetime.fromtimestamp(rng.randrange(-(2**32), 2**33), dt.timezone.utc)
        offset = dt.timezone(dt.timedelta(minutes=rng.choice([-600, -330, 0, 60, 345, 840])))
        texts.append(moment.astimezone(offset).isoformat())
        expected.append(_expected(moment))
    parts = _parts(texts, "iso")
    assert list(zip(parts["hour"], parts["day_of_week"], parts["month"])) == expected


def test_epoch_seconds_as_text_or_floats_are_read_and_others_are_missing():
    assert _parts(["1400269500", " 1400269500.9 ", "", "soon", "1e3", "99999999999999"]) == {
        "hour": [19, 19, 24, 24, 24, 24],
        "day_of_week": [4, 4, 7, 7, 7, 7],
        "month": [4, 4, 12, 12, 12, 12],
    }
    assert _parts(tf.constant([0.0, np.nan, np.inf], tf.float64)) == {
        "hour": [0, 24, 24],
        "day_of_week": [3, 7, 7],
        "month": [0, 12, 12],
    }


def test_an_absent_value_is_missing_not_midnight_1970():
    raw = tf.SparseTensor(indices=[[1, 0]], values=tf.constant([1400269500], tf.int64), dense_shape=[3, 1])
    from models.preprocessing import dense

    parts = derived.timestamp_parts(raw, dense(raw, 0), None, "t")
    assert {part: ids.numpy().tolist() for part, ids in parts.items()} == {
        "hour": [24, 19, 24],
        "day_of_week": [7, 4, 7],
        "month": [12, 4, 12],
    }


def test_iso_on_a_numeric_column_is_refused_with_one_line():
    with pytest.raises(
        ValueError, match="^features.t: format iso needs a text column, but the schema gives int64; set format: epoch"
    ):
        _parts(tf.constant([1], tf.int64), "iso")


# ------------------------------------------------------------------------------------- crosses


def test_a_cross_is_the_same_for_the_same_values_and_stays_in_range():
    hours = tf.constant([3, 3, 17], tf.int64)
    payment = tf.constant(["Cash", "Cash", "Cash"])
    ids = derived.cross([hours, payment], 10).numpy()
    assert ids[0] == ids[1]
    again = derived.cross([tf.constant([3], tf.int64), tf.constant(["Cash"])], 10).numpy()
    assert again[0] == ids[0]
    assert ids.dtype == np.int64 and ((0 <= ids) & (ids < 10)).all()


def test_different_combinations_mostly_get_different_buckets():
    hours = [h for h in range(24) for _ in range(40)]
    areas = [a for _ in range(24) for a in range(40)]
    ids = derived.cross([tf.constant(hours, tf.int64), tf.constant(areas, tf.int64)], 100_000).numpy()
    assert len(set(ids.tolist())) >= 0.99 * len(ids)  # 960 combinations in 100,000 buckets
    small = derived.cross([tf.constant(hours, tf.int64), tf.constant(areas, tf.int64)], 7).numpy()
    assert set(small.tolist()) == set(range(7))
    # The parts are kept apart: ("1", "23") and ("12", "3") are different combinations.
    a = derived.cross([tf.constant(["1"]), tf.constant(["23"])], 2**40).numpy()
    b = derived.cross([tf.constant(["12"]), tf.constant(["3"])], 2**40).numpy()
    assert a[0] != b[0]


# -------------------------------------------------------------- the transform of the tiny sample


@pytest.fixture(scope="module")
def timestamp_transform(tmp_path_factory):
    """The tiny sample analyzed under the bundled timestamp config, traced as a TF1 graph."""
    from pipeline.config import load_config
    from tests.conftest import _analyze_tiny

    config = load_config(TIMESTAMP_CONFIG)
    out = _analyze_tiny(
        tmp_path_factory.mktemp("transform-timestamp"), "--tf-compat-v1", f"--config={TIMESTAMP_CONFIG}"
    )
    return config, out


@pytest.fixture(scope="module")
def transformed(timestamp_transform, serialized_examples, raw_feature_spec):
    import tensorflow_transform as tft

    config, out = timestamp_transform
    output = tft.TFTransformOutput(str(out))
    # Through TFT's Keras layer, which runs a TF1-traced transform eagerly (as test_tasks.py does).
    raw = tf.io.parse_example(tf.constant(serialized_examples), raw_feature_spec)
    features = output.transform_features_layer()(raw)
    return config, output, features


def test_the_parts_of_the_samples_timestamps_equal_its_own_hour_day_and_month_columns(transformed, tiny_rows):
    _, _, features = transformed

    def part(p):
        return features[transformed_name(timestamp_part_name("trip_start_timestamp", p))].numpy().tolist()

    assert part("hour") == [int(r["trip_start_hour"]) for r in tiny_rows]
    # The sample's trip_start_day counts from Sunday = 1; day_of_week from Monday = 0.
    assert part("day_of_week") == [(int(r["trip_start_day"]) + 5) % 7 for r in tiny_rows]
    assert part("month") == [int(r["trip_start_month"]) - 1 for r in tiny_rows]


def test_the_crosses_are_the_hashes_of_their_parts(transformed, tiny_rows):
    config, _, features = transformed
    hour_payment = next(c for c in config.crosses if c.features == ("trip_start_timestamp.hour", "payment_type"))
    expected = tf.strings.to_hash_bucket_fast(
        [f"{r['trip_start_hour']}{derived.CROSS_SEPARATOR}{r['payment_type']}" for r in tiny_rows],
        hour_payment.hash_buckets,
    ).numpy()
    ids = features[transformed_name(hour_payment.name)].numpy()
    np.testing.assert_array_equal(ids, expected)
    for cross in config.crosses:
        ids = features[transformed_name(cross.name)].numpy()
        assert ((0 <= ids) & (ids < cross.hash_buckets)).all() and len(set(ids.tolist())) > 1, cross.name


def test_a_row_without_its_timestamp_gets_the_missing_ids(transformed, tiny_rows, raw_feature_spec):
    _, output, _ = transformed
    example = to_example(tiny_rows[0], drop=("trip_start_timestamp",)).SerializeToString()
    features = output.transform_features_layer()(tf.io.parse_example(tf.constant([example]), raw_feature_spec))
    for part, size in TIMESTAMP_PART_SIZES.items():
        assert features[transformed_name(timestamp_part_name("trip_start_timestamp", part))].numpy().tolist() == [size]
    days = transformed_name(timestamp_part_name("trip_start_timestamp", model_inputs.TIMESTAMP_ELAPSED))
    assert features[days].numpy().tolist() == [0.0]  # the mean


def test_the_days_since_1970_are_z_scored_over_the_sample(transformed, tiny_rows):
    _, _, features = transformed
    days = np.array([int(r["trip_start_timestamp"]) / 86400 for r in tiny_rows])
    key = transformed_name(timestamp_part_name("trip_start_timestamp", model_inputs.TIMESTAMP_ELAPSED))
    assert days.std() > 0
    np.testing.assert_allclose(features[key].numpy(), (days - days.mean()) / days.std(), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------- the model TF Serving loads


@pytest.fixture(scope="module")
def export_dir(transformed, tmp_path_factory):
    import keras

    config, output, features = transformed
    spec = model_inputs.from_custom_config(config.model_code_config())
    features = dict(features)
    labels = features.pop(spec.label.name)
    keras.utils.set_random_seed(1)
    model = model_lib._build_model(model_lib._hyperparameters(spec), spec, output)
    for key, size in model_inputs.categorical_inputs(spec).items():
        assert model.get_layer(key).output.dtype == "int64" and size > 1
    model.fit({k: tf.reshape(v, [-1, 1]) for k, v in features.items()}, labels, epochs=5, batch_size=16, verbose=0)
    path = tmp_path_factory.mktemp("timestamp-model") / "model"
    model_lib.export(model, spec, output, str(path))
    return spec, path


def test_the_export_with_timestamp_and_crosses_passes_tf_servings_loading_path(export_dir, serialized_examples):
    from components.serving_check import check, op_check
    from components.serving_warmup import warmup

    spec, path = export_dir
    assert op_check.unregistered(op_check.op_types(str(path))) == []
    assert {"StaticRegexFullMatch", "StringToHashBucketFast"} <= op_check.op_types(str(path))
    examples = warmup.drop_features(serialized_examples[:8], model_inputs.label_columns(spec))
    warmup.write_warmup(str(path), warmup.prediction_logs(examples, "m", warmup.signature_defs(str(path))))
    result = check.check(str(path))
    assert {"classify", "serving_default", "serve_raw"} <= set(result.signatures)


def test_a_tf1_session_answers_from_the_raw_timestamp_column(export_dir, tiny_rows):
    from components.serving_check import loader

    spec, path = export_dir
    rows = tiny_rows[:4]
    examples = [to_example(r, drop=("tips",)).SerializeToString() for r in rows]
    without = [to_example(r, drop=("tips", "trip_start_timestamp")).SerializeToString() for r in rows]
    with loader.SessionModel(str(path)) as model:
        answer = model.run("serving_default", {"examples": np.array(examples + without, dtype=object)})
        transformed = model.run("transform_features", {"examples": np.array(examples + without, dtype=object)})
    probabilities = answer["probabilities"]
    assert probabilities.shape == (8,) and ((0 <= probabilities) & (probabilities <= 1)).all()
    hours = transformed[transformed_name(timestamp_part_name("trip_start_timestamp", "hour"))].tolist()
    assert hours == [int(r["trip_start_hour"]) for r in rows] + [MISSING["hour"]] * 4


def test_saved_model_cli_runs_the_model_on_a_timestamp(export_dir):
    import json

    from tests.serving.saved_model_cli import saved_model_cli

    _, path = export_dir
    row = {"fare": [6.5], "trip_miles": [1.2], "payment_type": ["Cash"], "trip_start_timestamp": [1400269500]}
    result = saved_model_cli(path, "classify", f"--input_examples inputs={json.dumps([row])}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key scores" in result.stdout


def test_iso_parsing_runs_in_a_tf1_session_as_tf_serving_loads_it(tmp_path):
    """ISO text is not in the sample: a SavedModel of the parsing and a cross alone, loaded the
    way TF Serving loads one, answers what eager TensorFlow answers."""
    from components.serving_check import loader, op_check

    class Parts(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="when")])
        def serve(self, when):
            parts = derived.timestamp_parts(when, when, "iso", "when")
            return {**parts, "cross": derived.cross([parts["hour"], parts["day_of_week"]], 50)}

    module = Parts()
    tf.saved_model.save(module, str(tmp_path / "iso"), signatures={"serving_default": module.serve})
    assert op_check.unregistered(op_check.op_types(str(tmp_path / "iso"))) == []
    texts = ["2020-02-29T23:30:00-02:00", "2019-03-01", "not a date", ""]
    with loader.SessionModel(str(tmp_path / "iso")) as model:
        answer = model.run("serving_default", {"when": np.array(texts, dtype=object)})
    eager = module.serve(tf.constant(texts))
    for key in ("hour", "day_of_week", "month", "cross"):
        assert answer[key].tolist() == eager[key].numpy().tolist(), key
    assert answer["hour"].tolist() == [1, 24, 24, 24] and answer["month"].tolist() == [2, 2, 12, 12]
