"""The typed feature definitions: what the model code parses its custom_config into."""

import ast
import pathlib

import pytest

from models.model_inputs import from_custom_config
from models.spec import (
    CrossSpec,
    FeatureType,
    ModelSpec,
    OtherClasses,
    RegressionLoss,
    Task,
    TimestampFormat,
    TrainerConfig,
    TunerConfig,
    Vocabulary,
)

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_the_model_code_reads_what_the_pipeline_config_holds(taxi_config):
    spec = from_custom_config({**taxi_config.model_code_config(), "code_version": "x", "warm_start_dir": ""})
    assert spec.features == taxi_config.features and spec.label == taxi_config.label
    assert spec.trainer == taxi_config.trainer and spec.tuner == taxi_config.tuner


def test_without_trainer_and_tuner_the_model_code_gets_the_configs_defaults(taxi_config):
    # Transform's custom_config has only the label and the features.
    spec = from_custom_config({key: taxi_config.model_code_config()[key] for key in ("label", "features")})
    assert spec.trainer == TrainerConfig() and spec.tuner == TunerConfig()
    assert spec.trainer.hidden_units == (32, 16) and spec.trainer.batch_size is None  # None: from the row count


def test_choices_are_enums_read_in_any_case():
    spec = from_custom_config(
        {
            "label": {"column": "y", "task": "Regression"},
            "features": {"x": "NUMERIC", "c": {"type": "categorical", "vocabulary": "Exact"}},
            "trainer": {"loss": "HUBER"},
        }
    )
    assert spec.label.task is Task.REGRESSION and spec.trainer.loss is RegressionLoss.HUBER
    assert spec.features["x"].type is FeatureType.NUMERIC and spec.features["c"].vocabulary is Vocabulary.EXACT
    assert f"{spec.label.task}" == "regression"  # f-strings give the value, as YAML has it


@pytest.mark.parametrize(
    "custom_config, message",
    [
        (
            {"label": {"column": "y"}, "features": {"x": {"type": "numeric", "default": "zero"}}},
            "custom_config: features.x.default: must be a number for a numeric feature, got 'zero'",
        ),
        (
            {"label": {"column": "y"}, "features": {"x": {"type": "bucketized", "num_buckets": 1}}},
            "custom_config: features.x.num_buckets: must be at least 2 for a bucketized feature, got 1",
        ),
        (
            {"label": {"column": "y", "task": "binary"}, "trainer": {"loss": "huber"}},
            "custom_config: trainer.loss: is an option of label.task regression",
        ),
        (
            {"label": {"column": "x"}, "features": {"x": "numeric"}},
            "custom_config: label.column: 'x' is also listed under features",
        ),
        (
            {"label": {"column": "y"}, "trainer": {"hidden_units": [8, 0]}},
            "custom_config: trainer.hidden_units[1]: must be at least 1, got 0",
        ),
        (
            {"label": {"column": "y"}, "tuner": {"max_trial": 3}},
            "custom_config: tuner: unknown option 'max_trial' (did you mean 'max_trials'?)",
        ),
        (
            {"label": {"column": "y"}, "features": {"a": "categorical"}, "crosses": ["a x z"]},
            "custom_config: crosses[0] (a x z): 'z' is not a feature; features are: a",
        ),
        (
            {"label": {"column": "y"}, "features": {"t": {"type": "timestamp", "format": "unix"}}},
            "custom_config: features.t.format: 'unix' is not one of: epoch, iso",
        ),
        (
            {"label": {"column": "y", "other_classes": "drop"}},
            "custom_config: label.other_classes: applies to label.classes (multiclass)",
        ),
        (
            {"label": {"column": "y"}, "trainer": {"model": "xgboost"}},
            "custom_config: trainer.model: 'xgboost' is not one of: dnn, gbt, auto",
        ),
        (
            {"label": {"column": "y"}, "trainer": {"gbt": {"num_leaves": 1}}},
            "custom_config: trainer.gbt.num_leaves: must be at least 2, got 1",
        ),
        (
            {"label": {"column": "y"}, "trainer": {"gbt": {"num_tree": 100}}},
            "custom_config: trainer.gbt: unknown option 'num_tree' (did you mean 'num_trees'?)",
        ),
    ],
)
def test_the_model_code_meets_the_same_rules(custom_config, message):
    with pytest.raises(ValueError) as err:
        from_custom_config(custom_config)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_timestamps_crosses_and_other_classes_are_typed():
    spec = from_custom_config(
        {
            "label": {"column": "y", "task": "multiclass", "classes": ["a", "b"], "other_classes": "DROP"},
            "features": {"t": {"type": "timestamp", "format": "ISO"}, "c": "categorical", "n": "bucketized"},
            "crosses": ["t.hour x c", {"features": ["c", "n"], "hash_buckets": 7, "name": "c_n"}],
        }
    )
    assert spec.features["t"].type is FeatureType.TIMESTAMP and spec.features["t"].format is TimestampFormat.ISO
    assert spec.label.other_classes is OtherClasses.DROP
    assert spec.crosses == (
        CrossSpec(features=("t.hour", "c"), name="t_hour_x_c"),
        CrossSpec(features=("c", "n"), hash_buckets=7, name="c_n"),
    )
    assert spec.crosses[0].hash_buckets == 100  # the default
    # What the pipeline passes along parses back to the same crosses.
    assert from_custom_config(spec.model_dump(mode="json")).crosses == spec.crosses


def test_sections_are_immutable():
    spec = ModelSpec(label={"column": "y"})
    with pytest.raises(ValueError, match="frozen"):
        spec.label.column = "z"


def test_models_import_nothing_of_the_pipeline_package():
    for path in (REPO / "models").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not [n for n in names if n.split(".")[0] in ("pipeline", "serving")], path.name
