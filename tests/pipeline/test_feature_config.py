"""The config of timestamp features and crosses: what parses, and the one line a mistake gets."""

import pytest

from models.spec import TimestampFormat
from pipeline.config import ConfigError, FeatureType, parse_config

FEATURES = {
    "fare": "numeric",
    "area": {"type": "bucketized", "num_buckets": 4},
    "payment": "categorical",
    "start": {"type": "timestamp"},
    "day": {"type": "timestamp", "format": "iso"},
}


def _config(crosses=None, **features):
    raw = {
        "pipeline_name": "p",
        "model_name": "m",
        "data": {"path": "data.csv"},
        "label": {"column": "y"},
        "features": {**FEATURES, **features},
    }
    if crosses is not None:
        raw["crosses"] = crosses
    return parse_config(raw)


def _error(crosses=None, **features) -> str:
    with pytest.raises(ConfigError) as err:
        _config(crosses, **features)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_timestamp_feature_defaults_to_epoch_seconds():
    config = _config()
    assert config.features["start"].type is FeatureType.TIMESTAMP
    assert config.features["start"].format is None
    assert config.features["day"].format == "iso"
    assert config.features["day"].format is TimestampFormat.ISO  # an enum, read in any case
    assert _config(day={"type": "timestamp", "format": "ISO"}).features["day"].format is TimestampFormat.ISO
    assert config.model_code_config()["features"]["start"]["type"] == "timestamp"


def test_crosses_parse_in_both_forms_and_get_a_name():
    config = _config(
        [
            {"features": ["start.hour", "payment"], "hash_buckets": 50},
            "area x payment",
            {"features": ["day.month", "area"], "name": "season_area"},
        ]
    )
    first, second, third = config.crosses
    assert first.features == ("start.hour", "payment") and first.hash_buckets == 50
    assert first.name == "start_hour_x_payment"
    assert second.features == ("area", "payment") and second.hash_buckets == 100
    assert third.name == "season_area"
    with pytest.raises(ValueError, match="frozen"):
        first.hash_buckets = 3
    assert config.model_code_config()["crosses"][0] == {
        "features": ["start.hour", "payment"],
        "hash_buckets": 50,
        "name": "start_hour_x_payment",
    }


def test_the_drift_check_leaves_timestamps_out_by_default():
    config = _config()
    assert config.drift_features() == ["area", "fare", "payment"]


@pytest.mark.parametrize(
    "features, expected",
    [
        ({"start": {"type": "timestamp", "format": "unix"}}, "features.start.format: 'unix' is not one of: epoch, iso"),
        ({"start": {"type": "timestamp", "default": 0}}, "features.start.default: a timestamp takes no default"),
        (
            {"payment": {"type": "categorical", "format": "iso"}},
            "features.payment.format: is an option of type timestamp, not categorical; remove it",
        ),
    ],
)
def test_timestamp_options_are_checked(features, expected):
    assert expected in _error(**features)


@pytest.mark.parametrize(
    "crosses, expected",
    [
        (["payment"], "crosses[0] (payment): a cross needs at least two features; list two or more"),
        ([{"features": []}], "crosses[0] (no features): a cross needs at least two features"),
        (["payment x paymnt"], "crosses[0] (payment x paymnt): 'paymnt' is not a feature; did you mean 'payment'?"),
        (["payment x zzz"], "'zzz' is not a feature; features are: area, day, fare, payment, start"),
        (
            ["fare x payment"],
            "crosses[0] (fare x payment): 'fare' is a numeric feature, which has too many values "
            "to cross; make it type: bucketized",
        ),
        (
            ["start x payment"],
            "'start' is a timestamp; cross one of its parts: start.hour, start.day_of_week, start.month",
        ),
        (["start.minute x payment"], "'start.minute' is a timestamp; cross one of its parts"),
        (["payment.hour x area"], "'payment.hour': only timestamp features have parts; write 'payment'"),
        (["area x area"], "crosses[0] (area x area): 'area' is listed twice"),
        ([{"features": ["area", "payment"], "hash_buckets": 1}], "crosses[0].hash_buckets: must be at least 2, got 1"),
        ([{"features": ["area", "payment"], "name": "fare"}], "the name 'fare' is already taken"),
        ([{"features": ["area", "payment"], "name": "start_hour"}], "the name 'start_hour' is already taken"),
        (["area x payment", "area x payment"], "crosses[1] (area x payment): the name 'area_x_payment' is already"),
        ([{"features": ["area", "payment"], "buckets": 10}], "crosses[0]: unknown option 'buckets'"),
        ([{"hash_buckets": 10}], "crosses[0].features: missing required option"),
        ({"a": "b"}, "crosses: expected a list"),
    ],
)
def test_cross_mistakes_get_one_line_naming_the_cross_and_the_fix(crosses, expected):
    assert expected in _error(crosses)


def test_a_feature_named_like_a_timestamp_part_is_refused():
    assert (
        "'start_month' names both a feature (or the label) and the model input of timestamp part "
        "start.month; rename" in _error(start_month="categorical")
    )


def test_the_bundled_timestamp_config_loads():
    from pipeline.config import load_config

    config = load_config("package://pipeline/configs/taxi_timestamp.yaml")
    assert config.features["trip_start_timestamp"].type is FeatureType.TIMESTAMP
    assert config.crosses and all(len(cross.features) >= 2 for cross in config.crosses)
