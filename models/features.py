"""What the model code reads from the pipeline's custom_config, and the names of the transformed
features.

The pipeline passes `PipelineConfig.model_code_config()` (plain JSON) to Transform, Tuner and
Trainer; `from_custom_config` parses it back through the same typed models the pipeline's
config is built of (models/spec.py), so it meets the same rules and defaults.
"""

from __future__ import annotations

from typing import Any, Mapping

import pydantic

from models.spec import ModelSpec, error_line

# The label's classes for multiclass without label.classes: tf.Transform's vocabulary file.
LABEL_VOCABULARY = "label_classes"
# A classifier's class names, one a line in output order, in its SavedModel's assets.extra/
# (which TF Serving ignores): the Evaluator's per-class metrics and clients read them there.
CLASSES_FILE = "classes.txt"


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


def raw_input_columns(spec: ModelSpec) -> list[str]:
    """The raw columns a request must carry: every feature, without the label's own columns."""
    return list(spec.features)


def label_columns(spec) -> list[str]:
    """The raw columns only the label needs (left out of requests and warm-up records).

    `spec` is a ModelSpec or a PipelineConfig: both have `label` and `features`.
    """
    extra = [spec.label.greater_than_fraction_of] if spec.label.greater_than_fraction_of else []
    return [c for c in [spec.label.column, *extra] if c not in spec.features]
