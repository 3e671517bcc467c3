"""Features derived inside the transform graph: the parts of a timestamp and its days since
1970, and feature crosses.

Both are built in the preprocessing_fn, so they live in tf.Transform's graph and every
serving signature applies them to a request's raw columns as Transform did in training. They
use only core TensorFlow kernels (string strip, regex match and replace, string to number,
integer arithmetic, Fingerprint64 hashing) that TF Serving's C++ loader runs; no Python.

Timestamps are read as UTC: epoch seconds are UTC by definition; ISO text with Z or an offset
is converted to UTC; ISO text without one is taken as UTC (local time stays local time). A
value that is absent, or cannot be read, gets each part's missing id (features.
TIMESTAMP_PART_SIZES), never a made-up instant such as midnight 1970; so does the hour of a
date without a time.
"""

from __future__ import annotations

from typing import Any, Sequence

import tensorflow as tf

from models.model_inputs import EPOCH_PATTERN, ISO_PATTERN, TIMESTAMP_PART_SIZES

_SECONDS_PER_DAY = 86400
# Seconds further from 1970 than this (about year 33,000) are taken for a unit mistake.
_MAX_EPOCH = 1e12
# Joins a cross's values before hashing: a character that does not occur in CSV values.
CROSS_SEPARATOR = "\x1f"


def present(x: tf.Tensor | tf.SparseTensor | tf.RaggedTensor) -> tf.Tensor:
    """A bool per example: whether the column has a value (see preprocessing.dense)."""
    if isinstance(x, tf.RaggedTensor):
        x = x.to_sparse()
    if isinstance(x, tf.SparseTensor):
        flags = tf.SparseTensor(x.indices, tf.fill(tf.shape(x.values), True), [x.dense_shape[0], 1])
        return tf.reshape(tf.sparse.to_dense(flags, default_value=False), [-1])
    return tf.fill(tf.shape(tf.reshape(x, [-1])), True)


def days_from_civil(year: tf.Tensor, month: tf.Tensor, day: tf.Tensor) -> tf.Tensor:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    year = year - tf.cast(month <= 2, tf.int64)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * tf.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def civil_from_days(days: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(year, month 1-12, day 1-31) of days since 1970-01-01 (H. Hinnant's civil_from_days)."""
    z = days + 719468
    era = z // 146097
    day_of_era = z - era * 146097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = tf.where(shifted_month < 10, shifted_month + 3, shifted_month - 9)
    return year_of_era + era * 400 + tf.cast(month <= 2, tf.int64), month, day


def epoch_seconds(value: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(whole seconds since 1970 UTC as int64, whether the value could be read)."""
    if value.dtype == tf.string:
        text = tf.strings.strip(value)
        valid = tf.strings.regex_full_match(text, EPOCH_PATTERN)
        number = tf.strings.to_number(tf.where(valid, text, "0"), tf.float64)
    elif value.dtype.is_integer:
        return tf.cast(value, tf.int64), tf.fill(tf.shape(value), True)
    else:
        number = tf.cast(value, tf.float64)
        valid = tf.math.is_finite(number)
    valid = valid & (tf.abs(tf.where(valid, number, 0.0)) < _MAX_EPOCH)
    return tf.cast(tf.floor(tf.where(valid, number, 0.0)), tf.int64), valid


def iso_seconds(value: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(seconds since 1970 UTC as int64, whether the text is a valid ISO-8601 date or date and
    time, whether it has a time) of ISO-8601 text."""
    text = tf.strings.strip(value)
    matched = tf.strings.regex_full_match(text, ISO_PATTERN)

    def group(index: int) -> tf.Tensor:
        return tf.strings.regex_replace(text, f"^{ISO_PATTERN}$", f"\\{index}")

    def number(index: int) -> tf.Tensor:
        digits = group(index)
        return tf.strings.to_number(tf.where(matched & tf.not_equal(digits, ""), digits, "0"), tf.int64)

    year, month, day, hour, minute, second, offset_hours, offset_minutes = (number(i) for i in (1, 2, 3, 4, 5, 6, 8, 9))
    has_time = matched & tf.not_equal(group(4), "")
    sign = tf.where(tf.equal(group(7), "-"), tf.constant(-1, tf.int64), tf.constant(1, tf.int64))
    days = days_from_civil(year, month, day)
    # A day that does not exist (2019-02-29, 2019-04-31) does not survive the round trip.
    same_year, same_month, same_day = civil_from_days(days)
    valid = (
        matched
        & (month >= 1)
        & (month <= 12)
        & tf.equal(same_year, year)
        & tf.equal(same_month, month)
        & tf.equal(same_day, day)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 60)
        & (offset_hours <= 23)
        & (offset_minutes <= 59)
    )
    offset = sign * (offset_hours * 3600 + offset_minutes * 60)
    seconds = days * _SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset
    return tf.where(valid, seconds, tf.zeros_like(seconds)), valid, valid & has_time


def timestamp_instant(raw: Any, value: tf.Tensor, fmt: str | None, name: str) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(seconds since 1970 UTC, whether the value is present and readable, whether it has a time
    of day) of a timestamp column. `raw` is the column as parsed (to tell absent values apart),
    `value` the dense column."""
    if fmt == "iso":
        if value.dtype != tf.string:
            raise ValueError(
                f"features.{name}: format iso needs a text column, but the schema gives "
                f"{value.dtype.name}; set format: epoch for numbers of seconds"
            )
        seconds, valid, has_time = iso_seconds(value)
    else:
        seconds, valid = epoch_seconds(value)
        has_time = valid
    valid &= present(raw)
    return seconds, valid, has_time & valid


def parts_of(seconds: tf.Tensor, valid: tf.Tensor, has_time: tf.Tensor) -> dict[str, tf.Tensor]:
    """{part: int64 id per example} of instants, the part's missing id where not `valid` (the
    hour also where there is no time of day)."""
    days = seconds // _SECONDS_PER_DAY
    _, month, _ = civil_from_days(days)
    values = {
        "hour": (seconds % _SECONDS_PER_DAY) // 3600,
        "day_of_week": (days + 3) % 7,  # 1970-01-01 was a Thursday (3, Monday being 0)
        "month": month - 1,
    }
    known = {"hour": has_time, "day_of_week": valid, "month": valid}
    return {
        part: tf.where(known[part], values[part], tf.constant(size, tf.int64))
        for part, size in TIMESTAMP_PART_SIZES.items()
    }


def timestamp_parts(raw: Any, value: tf.Tensor, fmt: str | None, name: str) -> dict[str, tf.Tensor]:
    """{part: int64 id per example} of a timestamp column, missing ids where it has no valid value."""
    return parts_of(*timestamp_instant(raw, value, fmt, name))


def elapsed_days(seconds: tf.Tensor) -> tf.Tensor:
    """Days since 1970-01-01 UTC in float64, the time of day as the fraction: where an instant
    lies on the time line (a trend over the years, a car's model year), which its parts drop."""
    return tf.cast(seconds, tf.float64) / _SECONDS_PER_DAY


def cross(values: Sequence[tf.Tensor], hash_buckets: int) -> tf.Tensor:
    """Each example's combination of `values` (one tensor per crossed feature) as an id in
    [0, hash_buckets): Fingerprint64 of the values joined, the same in every process."""
    texts = [v if v.dtype == tf.string else tf.strings.as_string(v) for v in values]
    return tf.strings.to_hash_bucket_fast(tf.strings.join(texts, separator=CROSS_SEPARATOR), hash_buckets)
