"""Timestamp columns before any component runs: a value the transform could not read stops the
run with one line (file, line, column, value and the fix) instead of becoming a missing value."""

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.preflight import check_data, is_iso_instant
from tests.conftest import INVALID_ISO_TEXTS
from tests.pipeline.csv_rows import with_change, write_rows

TIMESTAMP_CONFIG = "package://pipeline/configs/taxi_timestamp.yaml"


def _config(path, *overrides):
    return load_config(TIMESTAMP_CONFIG, [f"data.path={path}", *overrides])


def test_epoch_seconds_and_missing_markers_pass(tmp_path):
    path = write_rows(tmp_path, with_change("trip_start_timestamp", lambda n, v: "NA" if n % 4 == 0 else v))
    assert check_data(_config(path))


@pytest.mark.parametrize("value", ["soon", "1400269500.5", "1.4e9"])
def test_an_epoch_value_that_is_not_whole_seconds_names_line_value_and_fix(tmp_path, value):
    path = write_rows(tmp_path, with_change("trip_start_timestamp", lambda n, v: value if n == 5 else v))
    with pytest.raises(
        ConfigError,
        match=rf"data.csv, line 6, column 'trip_start_timestamp': '{value}' is not a "
        r"whole number of seconds since 1970 .* set features.trip_start_timestamp"
        r".format: iso",
    ) as err:
        check_data(_config(path))
    assert "\n" not in str(err.value)


def test_iso_dates_pass_and_a_bad_one_names_line_value_and_fix(tmp_path):
    dates = ["2019-03-01", "2020-02-29T23:30:00-02:00", "2019-03-01 14:05", "2019-03-01T14:05:00Z", "2019/03/01"]
    rows = with_change("trip_start_timestamp", lambda n, v: dates[n % len(dates)])
    assert check_data(_config(write_rows(tmp_path, rows), "features.trip_start_timestamp.format=iso"))
    rows = with_change("trip_start_timestamp", lambda n, v: "03/01/2019" if n == 2 else v, rows)
    with pytest.raises(
        ConfigError,
        match=r"line 3, column 'trip_start_timestamp': '03/01/2019' is not an ISO-8601 "
        r"date .*set features.trip_start_timestamp.format: epoch",
    ):
        check_data(_config(write_rows(tmp_path, rows), "features.trip_start_timestamp.format=iso"))


def test_the_preflight_reads_iso_text_as_the_transform_does():
    """The same cases as tests/models/test_derived_features.py: valid there, valid here."""
    for text in (
        "2019-03-01T14:05:00",
        "2019-03-01 14:05",
        "2020-02-29T12:00:00",
        "2019-01-01T00:00:00.250+01",
        "  2024-12-31T23:59:60Z ",
        "2019-03-01T01:30:00+0530",
        "2020-02-29",
    ):
        assert is_iso_instant(text), text
    for text in (*INVALID_ISO_TEXTS, "２０１９-03-01"):
        assert not is_iso_instant(text), text
