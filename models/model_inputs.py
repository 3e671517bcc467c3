"""The model's inputs: what the model code reads from the pipeline's custom_config, the names of
the transformed features, and the raw columns a request carries.

The pipeline passes `PipelineConfig.model_code_config()` (plain JSON) to Transform, Tuner and
Trainer; `from_custom_config` parses it back through the same typed models the pipeline's
config is built of (models/spec.py), so it meets the same rules and defaults.
"""

from __future__ import annotations

from typing import Any, Mapping

import pydantic

from models.sections import error_line
from models.spec import TIMESTAMP_PARTS, FeatureType, ModelSpec

# The label's classes for multiclass without label.classes: tf.Transform's vocabulary file.
LABEL_VOCABULARY = "label_classes"
# The values of each timestamp part (UTC): hour 0-23, day of week 0 (Monday) to 6 (Sunday),
# month 0 (January) to 11. One more id, the part's size, means missing: the value is absent,
# cannot be read, or (hour) is a date without a time.
TIMESTAMP_PART_SIZES = dict(zip(TIMESTAMP_PARTS, (24, 7, 12)))
# Besides its parts, a timestamp is a number: its days since 1970 (z-scored; 0, the mean, where
# missing). The parts repeat every day, week or year; this one carries the years.
TIMESTAMP_ELAPSED = "days"
# ISO-8601 as people write it (and its date with slashes, 2012/01/31, year first, as the
# ISO-8601 date): a date, optionally a time (after T or a space) with optional
# seconds and fraction, and Z or an offset (+02:00, +0200 or +02). Groups: 1 year, 2 month,
# 3 day, 4 hour, 5 minute, 6 second, 7 offset sign, 8 offset hours, 9 offset minutes. RE2 in
# the transform graph; pipeline/preflight.py checks the data with the same pattern in Python.
ISO_PATTERN = (
    r"(\d{4})[-/](\d{2})[-/](\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(?:[Zz]|([+-])(\d{2})(?::?(\d{2}))?)?)?"
)
# Epoch seconds written as text (a column that is not all numbers is read as text).
EPOCH_PATTERN = r"[+-]?\d+(?:\.\d*)?"


def from_custom_config(custom_config: Mapping[str, Any]) -> ModelSpec:
    """The typed label, features, trainer and tuner settings of the JSON the pipeline passed along
    (the other keys of custom_config are the pipeline's)."""
    sections = {key: custom_config[key] for key in ModelSpec.model_fields if key in custom_config}
    try:
        return ModelSpec.model_validate(sections)
    except pydantic.ValidationError as err:
        raise ValueError(f"custom_config: {error_line(err, ModelSpec, top='custom_config')}") from None


def transformed_name(name: str) -> str:
    """The name of a feature after Transform."""
    return f"{name}_xf"


def timestamp_part_name(name: str, part: str) -> str:
    """The model input of one part of timestamp feature `name` (before transformed_name)."""
    return f"{name}_{part}"


def categorical_inputs(spec: ModelSpec) -> dict[str, int]:
    """{transformed name: number of ids} of the derived categorical inputs: timestamp parts
    (their values and a missing id) and crosses (their hash buckets)."""
    inputs: dict[str, int] = {}
    for name, feature in spec.features.items():
        if feature.type is FeatureType.TIMESTAMP:
            for part, size in TIMESTAMP_PART_SIZES.items():
                inputs[transformed_name(timestamp_part_name(name, part))] = size + 1
    for cross in spec.crosses:
        inputs[transformed_name(cross.name)] = cross.hash_buckets
    return inputs


def numeric_inputs(spec: ModelSpec) -> list[str]:
    """The transformed names of the derived numeric inputs: each timestamp's days since 1970."""
    return [
        transformed_name(timestamp_part_name(name, TIMESTAMP_ELAPSED))
        for name, feature in spec.features.items()
        if feature.type is FeatureType.TIMESTAMP
    ]


def raw_input_columns(spec: ModelSpec) -> list[str]:
    """The raw columns a request must carry: every feature, without the label's own columns."""
    return list(spec.features)


def label_columns(spec) -> list[str]:
    """The raw columns only the label needs (left out of requests and warm-up records).

    `spec` is a ModelSpec or a PipelineConfig: both have `label` and `features`.
    """
    extra = [spec.label.greater_than_fraction_of] if spec.label.greater_than_fraction_of else []
    return [c for c in [spec.label.column, *extra] if c not in spec.features]
